"""The trusted score step, in-process for each bad input and end to end as a subprocess (files and s3://)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from sklearn import metrics as skm

from podium import storage
from podium.data import write_table
from podium.errors import InvalidConfig, InvalidHoldout, InvalidPredictions, PodiumError
from podium.evaluation.score import TERMINATION_LIMIT, ScoreResult, Summary, run_score, write_summary
from podium.evaluation.wire import PrivateResult, PublicResult
from podium.predictions import Predictions, save_predictions
from podium.split import compute_split

ROOT = Path(__file__).resolve().parents[2]
CLASSES = np.array(["cat", "dog", "eel"])
N = 300


@pytest.fixture
def holdout(tmp_path: Path) -> dict[str, Path]:
    """A 3-class holdout with labels, a 40% private split and an honest model's predictions."""
    rng = np.random.default_rng(0)
    truth = CLASSES[rng.integers(0, 3, N)]
    proba = rng.dirichlet(np.ones(3), size=N)
    proba[np.arange(N), np.searchsorted(CLASSES, truth)] += 1.0
    proba /= proba.sum(axis=1, keepdims=True)
    return {
        "labels": write_table(truth, tmp_path / "labels.csv"),
        "split": compute_split(truth, private_fraction=0.4, seed=11).save(tmp_path / "split.json"),
        "predictions": save_predictions(
            Predictions(CLASSES[proba.argmax(axis=1)], proba, CLASSES), tmp_path / "predictions.npz"
        ),
        "truth": truth,
        "proba": proba,  # type: ignore[dict-item]
    }


def score(holdout: dict, tmp_path: Path, **overrides: object) -> ScoreResult:
    args = {
        "predictions": holdout["predictions"],
        "labels": holdout["labels"],
        "task": "classification",
        "class_labels": list(CLASSES),
        "split": holdout["split"],
        "out_dir": tmp_path / "out",
        "termination_log": tmp_path / "termination-log",
    } | overrides
    return run_score(args.pop("predictions"), args.pop("labels"), **args)  # type: ignore[arg-type]


def test_scores_public_private_and_all(holdout: dict, tmp_path: Path) -> None:
    result = score(holdout, tmp_path)
    split = json.loads(holdout["split"].read_text())
    truth, proba = holdout["truth"], holdout["proba"]
    pred = CLASSES[proba.argmax(axis=1)]
    for part, rows in (("public", split["public"]), ("private", split["private"]), ("all", np.arange(N))):
        metrics = getattr(result, part)
        assert metrics["accuracy"] == pytest.approx(skm.accuracy_score(truth[rows], pred[rows]), abs=1e-12)
        assert metrics["roc_auc"] == pytest.approx(
            skm.roc_auc_score(truth[rows], proba[rows], multi_class="ovr"), abs=1e-12
        )
    assert (result.rows.all, result.rows.public, result.rows.private) == (N, len(split["public"]), 120)
    on_disk = json.loads((tmp_path / "out" / "scores.json").read_text())
    assert on_disk["private"] == result.private and on_disk["task"] == "classification"
    summary = json.loads((tmp_path / "termination-log").read_text())
    assert summary["status"] == "succeeded" and summary["public"] == result.public
    assert "private" not in json.dumps(summary["public"]) and set(summary) >= {"rows", "public"}


def test_without_split_every_row_is_public(holdout: dict, tmp_path: Path) -> None:
    result = score(holdout, tmp_path, split=None)
    assert result.public == result.all and result.private == {} and result.rows.private == 0


def test_predictions_only_regression(tmp_path: Path) -> None:
    truth = np.linspace(1, 10, 50)
    labels = write_table(truth, tmp_path / "y.npy")
    preds = save_predictions(Predictions(truth + 0.5), tmp_path / "p.npz")
    result = run_score(preds, labels, task="regression", class_labels=None, split=None, out_dir=tmp_path)
    assert result.all["mae"] == pytest.approx(0.5) and result.all["r2"] < 1


def _predictions(tmp_path: Path, labels, proba=None, classes=None) -> Path:
    labels = np.asarray(labels)
    if proba is not None:
        proba, classes = np.asarray(proba, dtype=float), np.asarray(classes)
    return save_predictions(Predictions(labels, proba, classes), tmp_path / "bad.npz")


def _uniform(n: int, k: int = 3) -> np.ndarray:
    return np.full((n, k), 1 / k)


BAD_INPUTS = {
    "wrong length": (
        lambda t: {"predictions": _predictions(t, ["cat"] * (N - 1))},
        InvalidPredictions,
        "rows",
    ),
    "nan": (lambda t: {"predictions": _predictions(t, [np.nan] * N)}, InvalidPredictions, "NaN"),
    "inf proba": (
        lambda t: {"predictions": _predictions(t, ["cat"] * N, np.full((N, 3), np.inf), CLASSES)},
        InvalidPredictions,
        "NaN or infinite",
    ),
    "unknown label": (lambda t: {"predictions": _predictions(t, ["cow"] * N)}, InvalidPredictions, "cow"),
    "regression output": (
        lambda t: {"predictions": _predictions(t, np.linspace(0.1, 2.9, N))},
        InvalidPredictions,
        "look like regression",
    ),
    "proba not summing to 1": (
        lambda t: {"predictions": _predictions(t, ["cat"] * N, _uniform(N) * 1.1, CLASSES)},
        InvalidPredictions,
        "do not sum to 1",
    ),
    "negative proba": (
        lambda t: {"predictions": _predictions(t, ["cat"] * N, np.tile([1.5, -0.5, 0.0], (N, 1)), CLASSES)},
        InvalidPredictions,
        "negative",
    ),
    "proba columns": (
        lambda t: {"predictions": _predictions(t, ["cat"] * N, _uniform(N), ["cat", "dog", "fox"])},
        InvalidPredictions,
        "fox",
    ),
    "empty holdout": (
        lambda t: {"labels": write_table(np.array([], dtype=str), t / "empty.npy")},
        InvalidHoldout,
        "no rows",
    ),
    "labels missing": (lambda t: {"labels": t / "absent.csv"}, InvalidHoldout, "does not exist"),
    "predictions missing": (
        lambda t: {"predictions": t / "absent.npz"},
        InvalidPredictions,
        "does not exist",
    ),
    "predictions unreadable": (lambda t: {"predictions": _garbage(t)}, InvalidPredictions, "unreadable"),
    "split for another holdout": (
        lambda t: {"split": compute_split(np.zeros(7), private_fraction=0.5, seed=1).save(t / "other.json")},
        InvalidHoldout,
        "covers 7 rows",
    ),
    "no class labels": (lambda t: {"class_labels": None}, InvalidConfig, "class labels"),
    "classification predictions to regression": (
        lambda t: {"task": "regression", "class_labels": None},
        InvalidPredictions,
        "regression playground",
    ),
    "class labels to regression": (lambda t: {"task": "regression"}, InvalidConfig, "regression playground"),
}


def _garbage(tmp_path: Path) -> Path:
    (tmp_path / "garbage.npz").write_bytes(b"not a zip")
    return tmp_path / "garbage.npz"


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_fails_with_a_fix_and_writes_the_termination_log(
    holdout: dict, tmp_path: Path, case: str
) -> None:
    make, error, message = BAD_INPUTS[case]
    with pytest.raises(error, match=message) as raised:
        score(holdout, tmp_path, **make(tmp_path))
    assert "Fix:" in str(raised.value)
    summary = json.loads((tmp_path / "termination-log").read_text())
    assert summary["status"] == "failed" and summary["error"] == str(raised.value)
    assert not (tmp_path / "out" / "scores.json").exists()


def test_termination_message_stays_under_the_kubernetes_limit(tmp_path: Path) -> None:
    error = PodiumError("x" * 10_000, field="predictions", hint="é" * 100)
    write_summary(tmp_path / "log", Summary(status="failed", error=str(error), field="predictions"))
    text = (tmp_path / "log").read_bytes()
    assert len(text) <= TERMINATION_LIMIT and json.loads(text)["error"].endswith("...")


# --- end to end: the CLI as the score pod runs it ---------------------------------------------------


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "PYTHONPATH": str(ROOT / "sdk"), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "podium.evaluation.score", *args],
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
        check=False,
    )


def test_cli_with_files(holdout: dict, tmp_path: Path) -> None:
    done = _cli(
        "--predictions",
        str(holdout["predictions"]),
        "--labels",
        f"file://{holdout['labels']}",
        "--task",
        "classification",
        "--class-labels",
        '["eel", "dog", "cat"]',
        "--split",
        str(holdout["split"]),
        "--results",
        str(tmp_path / "out" / "result.json"),
        "--private",
        str(tmp_path / "private" / "scores.json"),
        "--termination-log",
        str(tmp_path / "log"),
    )
    assert done.returncode == 0, done.stderr
    result = PublicResult.model_validate_json((tmp_path / "out" / "result.json").read_text())
    assert result.rows is not None and result.rows.model_dump() == {"all": N, "public": 180, "private": 120}
    assert json.loads((tmp_path / "log").read_text())["public"] == result.public
    private = PrivateResult.model_validate_json((tmp_path / "private" / "scores.json").read_text())
    assert set(private.private) == set(result.public) and private.all["accuracy"] > 0.5


def test_cli_bad_input_exits_non_zero_with_the_message_in_the_log(holdout: dict, tmp_path: Path) -> None:
    done = _cli(
        "--predictions",
        str(holdout["predictions"]),
        "--labels",
        str(tmp_path / "absent.csv"),
        "--task",
        "classification",
        "--class-labels",
        '["cat", "dog", "eel"]',
        "--results",
        str(tmp_path / "out" / "result.json"),
        "--private",
        str(tmp_path / "out" / "scores.json"),
        "--termination-log",
        str(tmp_path / "log"),
    )
    assert done.returncode == 1
    summary = json.loads((tmp_path / "log").read_text())
    assert summary["status"] == "failed" and summary["field"] == "labels"
    assert summary["error"].startswith("labels: ") and "absent.csv does not exist" in summary["error"]
    assert "Fix:" in summary["error"] and "Fix:" in done.stderr
    assert not (tmp_path / "out").exists()


@pytest.fixture
def s3_env(s3_server: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    env = {
        "PODIUM_S3_ENDPOINT": s3_server,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    client = storage._client(*storage._settings())
    if not client.bucket_exists("podium"):
        client.make_bucket("podium")
    yield env


def test_cli_with_s3_uris(holdout: dict, tmp_path: Path, s3_env: dict[str, str]) -> None:
    uris = {
        name: storage.upload(holdout[name], f"s3://podium/p1/{name}/")
        for name in ("predictions", "labels", "split")
    }
    done = _cli(
        "--predictions",
        uris["predictions"],
        "--labels",
        uris["labels"],
        "--task",
        "classification",
        "--class-labels",
        '["cat", "dog", "eel"]',
        "--split",
        uris["split"],
        "--results",
        "s3://podium/p1/results/v1.json",
        "--private",
        "s3://podium/p1/private/v1.json",
        "--termination-log",
        str(tmp_path / "log"),
        env=s3_env,
    )
    assert done.returncode == 0, done.stderr
    result = PublicResult.model_validate_json(storage.read_bytes("s3://podium/p1/results/v1.json"))
    private = PrivateResult.model_validate_json(storage.read_bytes("s3://podium/p1/private/v1.json"))
    assert result.rows is not None and result.rows.private == 120 and private.private["accuracy"] > 0.5
    assert json.loads((tmp_path / "log").read_text())["status"] == "succeeded"

    missing = _cli(
        "--predictions",
        "s3://podium/p1/nothing.npz",
        "--labels",
        uris["labels"],
        "--task",
        "classification",
        "--class-labels",
        '["cat", "dog", "eel"]',
        "--results",
        str(tmp_path / "o" / "result.json"),
        "--private",
        str(tmp_path / "o" / "scores.json"),
        "--termination-log",
        str(tmp_path / "log2"),
        env=s3_env,
    )
    assert missing.returncode == 1
    assert "does not exist" in json.loads((tmp_path / "log2").read_text())["error"]


@pytest.mark.parametrize("extra", [{}, {"loss": float("nan"), "best": float("inf")}], ids=["plain", "non-finite"])
def test_predict_then_score_passes_the_metadata_on(sklearn_clf, tmp_path: Path, extra: dict) -> None:
    """The predict step's own output is what the strict score step accepts, even from a hand-edited manifest."""
    import shutil

    from podium.evaluation.predict import run_predict
    from podium.evaluation.score import main

    artifact = shutil.copytree(sklearn_clf.artifact, tmp_path / "artifact")
    manifest = json.loads((artifact / "manifest.json").read_text())
    manifest["metadata"] = {**manifest.get("metadata", {}), **extra}
    (artifact / "manifest.json").write_text(json.dumps(manifest))  # NaN/Infinity tokens, as json.dumps writes them
    features = write_table(sklearn_clf.features, tmp_path / "features.csv")
    predicted = run_predict(artifact, features, tmp_path / "data" / "out")
    labels = write_table(sklearn_clf.labels, tmp_path / "labels.csv")
    code = main(["--predictions", str(predicted.predictions), "--labels", str(labels), "--task", "classification",
                 "--class-labels", json.dumps(sklearn_clf.class_labels), "--results", str(tmp_path / "r.json"),
                 "--private", str(tmp_path / "p.json"), "--metadata", str(predicted.metadata),
                 "--termination-log", str(tmp_path / "log")])
    assert code == 0, (tmp_path / "log").read_text()
    result = PublicResult.model_validate_json((tmp_path / "r.json").read_bytes())
    assert result.metadata["framework"] == "sklearn" and result.public["accuracy"] > 0.9
    assert {key: result.metadata[key] for key in extra} == {key: str(value) for key, value in extra.items()}
