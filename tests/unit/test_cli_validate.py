"""`podium validate` on what people really pass it: broken YAML, missing files, directories, lists,
other kinds, unknown fields; and ``podium.api.schema.unknown_fields``, which it shares with the emulator."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from podium.api import PLAYGROUND
from podium.api.crdgen import crd_manifest
from podium.api.schema import unknown_fields
from podium.cli import main

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
PLAYGROUND_YAML = (EXAMPLES / "playground.yaml").read_text()
SCHEMA = crd_manifest(PLAYGROUND)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def validate(*args: str | Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exited:
        main(["validate", *map(str, args)])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return int(exited.value.code or 0), out, err


def playground(**spec: Any) -> dict[str, Any]:
    manifest = yaml.safe_load(PLAYGROUND_YAML)
    manifest["spec"].update(spec)
    return manifest


def test_a_valid_file_is_valid(capsys):
    code, out, _ = validate(EXAMPLES / "playground.yaml", capsys=capsys)
    assert code == 0 and "Playground iris is valid" in out


def test_yaml_syntax_error_is_one_line_naming_the_place(tmp_path, capsys):
    broken = tmp_path / "broken.yaml"
    broken.write_text("apiVersion: podium.dev/v1alpha1\nkind: Playground\nmetadata: {name: x\nspec: [\n")
    code, _, err = validate(broken, capsys=capsys)
    assert code == 1
    (line,) = err.strip().splitlines()
    assert line.startswith(f"{broken}: ") and "not valid YAML" in line and "line " in line


def test_missing_file_is_reported_and_the_others_still_checked(tmp_path, capsys):
    code, out, err = validate(tmp_path / "nope.yaml", EXAMPLES / "playground.yaml", capsys=capsys)
    assert code == 1
    assert f"{tmp_path / 'nope.yaml'}: no such file or directory" in err
    assert "Playground iris is valid" in out


def test_a_directory_validates_its_yaml_files(tmp_path, capsys):
    (tmp_path / "pg.yaml").write_text(PLAYGROUND_YAML)
    (tmp_path / "sub.yml").write_text((EXAMPLES / "submission-model.yaml").read_text())
    (tmp_path / "notes.txt").write_text("not a manifest: ignored")
    (tmp_path / "nested").mkdir()
    (tmp_path / "nested" / "bad.yaml").write_text("kind: [")
    code, out, err = validate(tmp_path, capsys=capsys)
    assert code == 0, err
    assert f"{tmp_path / 'pg.yaml'}: Playground iris is valid" in out
    assert str(tmp_path / "sub.yml") in out and "notes.txt" not in out + err
    code, _, err = validate("--recursive", tmp_path, capsys=capsys)  # as kubectl -R
    assert code == 1 and "bad.yaml" in err


def test_an_empty_directory_is_an_error(tmp_path, capsys):
    code, _, err = validate(tmp_path, capsys=capsys)
    assert code == 1 and "no YAML files" in err


def test_list_documents_and_multi_document_files(tmp_path, capsys):
    bad = playground(task="clustering")
    bad["metadata"]["name"] = "bad"
    listed = {"apiVersion": "v1", "kind": "List", "items": [playground(), bad]}
    path = tmp_path / "list.yaml"
    path.write_text(yaml.safe_dump(listed) + "---\n" + yaml.safe_dump(playground()) + "---\n")
    code, out, err = validate(path, capsys=capsys)
    assert code == 1
    assert out.count("Playground iris is valid") == 2
    assert "Playground bad is invalid" in err and "spec.task" in err


def test_other_kinds_are_skipped_saying_so(tmp_path, capsys):
    path = tmp_path / "mixed.yaml"
    config_map = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"}, "data": {"a": "1"}}
    path.write_text(yaml.safe_dump(config_map) + "---\n" + PLAYGROUND_YAML)
    code, out, _ = validate(path, capsys=capsys)
    assert code == 0
    assert "skipped v1 ConfigMap settings (not a Podium kind)" in out and "Playground iris is valid" in out


@pytest.mark.parametrize(("text", "problem"), [
    ("- just\n- a list\n", "not a manifest"),
    ("42\n", "not a manifest"),
    ("apiVersion: podium.dev/v1alpha1\nkind: Playground\nmetadata: [1]\nspec: {}\n", "metadata"),
    ("apiVersion: podium.dev/v1alpha1\nkind: Leaderboard\nmetadata: {name: x}\n", "Leaderboard"),
    ("apiVersion: v1\nkind: List\nitems: 3\n", "items"),
])
def test_malformed_documents_are_one_line_problems(tmp_path, capsys, text, problem):
    path = tmp_path / "odd.yaml"
    path.write_text(text)
    code, _, err = validate(path, capsys=capsys)
    assert code == 1 and problem in err


def test_unknown_fields_are_rejected_as_the_api_server_does(tmp_path, capsys):
    manifest = playground(primaryMetrik="accuracy")
    manifest["spec"]["competition"]["quota"] = 3
    manifest["metadata"]["lables"] = {"a": "b"}
    path = tmp_path / "typo.yaml"
    path.write_text(yaml.safe_dump(manifest))
    code, _, err = validate(path, capsys=capsys)
    assert code == 1
    for field in ("spec.primaryMetrik", "spec.competition.quota", "metadata.lables"):
        assert f"{field}: unknown field" in err


def test_the_cli_never_traces_back_on_bad_input():
    """As a process: one line on stderr and a non-zero exit, not a Python traceback."""
    result = subprocess.run([sys.executable, "-m", "podium.cli", "validate", "/nonexistent/x.yaml"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip() == "/nonexistent/x.yaml: no such file or directory"


# --- unknown_fields ----------------------------------------------------------------------------------

def test_unknown_fields_names_dotted_paths():
    manifest = playground(foo=1, holdout={"features": "a", "labels": "b", "extra": True})
    manifest["bogus"] = {}
    manifest["metadata"]["labels"] = {"any": "label"}  # a map: any key
    assert sorted(unknown_fields(manifest, SCHEMA)) == ["bogus", "spec.foo", "spec.holdout.extra"]
    assert unknown_fields(yaml.safe_load(PLAYGROUND_YAML), SCHEMA) == []


def test_unknown_fields_in_list_items_and_preserved_subtrees():
    schema = {"type": "object", "properties": {
        "items": {"type": "array", "items": {"type": "object", "properties": {"a": {"type": "string"}}}},
        "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True,
                 "properties": {"known": {"type": "object", "properties": {}}}},
    }}
    value = {"items": [{"a": "x"}, {"a": "y", "b": 1}], "free": {"anything": {"deep": 1}, "known": {"z": 1}}}
    # Under preserve-unknown-fields only the declared subtree is strict (as the API server prunes it).
    assert unknown_fields(value, schema) == ["items[1].b", "free.known.z"]


FIELD = st.text("abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=8)


@given(extras=st.dictionaries(st.sampled_from(["<root>", "spec", "spec.holdout", "spec.competition",
                                               "spec.evaluation", "metadata"]), FIELD, max_size=6))
def test_unknown_fields_finds_exactly_what_was_added(extras):
    manifest = yaml.safe_load(PLAYGROUND_YAML)
    expected = []
    for parent, key in extras.items():
        node = manifest
        for part in [] if parent == "<root>" else parent.split("."):
            node = node[part]
        declared = _declared(parent)
        if key in node or key in declared:
            continue
        node[key] = "added"
        expected.append(key if parent == "<root>" else f"{parent}.{key}")
    assert sorted(unknown_fields(copy.deepcopy(manifest), SCHEMA)) == sorted(expected)


def _declared(parent: str) -> set[str]:
    from podium.api.schema import OBJECT_META_FIELDS

    if parent == "metadata":
        return set(OBJECT_META_FIELDS)
    node: Any = SCHEMA
    for part in [] if parent == "<root>" else parent.split("."):
        node = node["properties"][part]
    return set(node.get("properties", {})) | ({"apiVersion", "kind", "metadata"} if parent == "<root>" else set())
