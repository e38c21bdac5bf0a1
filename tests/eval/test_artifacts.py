"""The submission artifact: manifest, content hash, archives (and their safety), preprocessors."""

from __future__ import annotations

import io
import json
import shutil
import tarfile
from datetime import UTC
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from podium.artifacts import (
    CorruptArchive,
    InputSchema,
    ManifestError,
    PreprocessorError,
    UnsafeArchive,
    content_hash,
    load_preprocessor,
    load_submission,
    pack,
    read_manifest,
    save_preprocessor,
    save_submission,
    unpack,
)
from podium.errors import ArtifactError, PodiumError
from podium.frameworks import ModelInputError, UnknownFramework


class TestManifest:
    def test_fields(self, sklearn_clf) -> None:
        manifest = read_manifest(sklearn_clf.artifact)
        assert manifest.schema_version == 1
        assert (manifest.framework.value, manifest.task) == ("sklearn", "classification")
        assert manifest.class_labels == ["setosa", "versicolor", "virginica"]
        assert manifest.input_schema == InputSchema(
            columns=list(sklearn_clf.features.columns), dtypes=["float64"] * 4, shape=[None, 4]
        )
        assert manifest.versions.framework_library == "scikit-learn" and manifest.versions.framework
        assert manifest.versions.python.count(".") == 2 and manifest.versions.numpy == np.__version__
        assert manifest.content_hash == content_hash(sklearn_clf.artifact)
        assert manifest.created.tzinfo == UTC
        assert manifest.metadata["model_type"] == "Pipeline"

    def test_every_file_is_under_model_or_preprocessor(self, keras_clf) -> None:
        top = {path.name for path in keras_clf.artifact.iterdir()}
        assert top == {"manifest.json", "model"}

    def test_json_is_the_pydantic_schema(self, torch_clf) -> None:
        raw = json.loads((torch_clf.artifact / "manifest.json").read_text())
        assert raw["schema_version"] == 1 and raw["framework"] == "pytorch"
        assert raw["onnx"] == {"available": True, "path": "model/model.onnx", "opset": 18, "error": None,
                               "checked": True}

    def test_sklearn_labels_come_from_the_model(self, sklearn_clf, tmp_path: Path) -> None:
        with pytest.raises(ArtifactError, match="differ from the classes the model was fitted on"):
            save_submission(sklearn_clf.model, tmp_path / "a", class_labels=["x", "y", "z"])

    def test_refuses_to_overwrite(self, sklearn_clf, tmp_path: Path) -> None:
        (tmp_path / "a").mkdir()
        (tmp_path / "a" / "keep.txt").write_text("mine")
        with pytest.raises(ArtifactError, match="not an empty directory"):
            save_submission(sklearn_clf.model, tmp_path / "a")

    @pytest.mark.parametrize(
        ("change", "error", "message"),
        [
            ({"schema_version": 2}, ManifestError, "schema_version 2"),
            ({"framework": "xgboost"}, UnknownFramework, "framework 'xgboost'"),
            ({"task": "ranking"}, ManifestError, "task"),
        ],
    )
    def test_bad_manifest(self, sklearn_clf, tmp_path: Path, change: dict, error: type, message: str) -> None:
        copy = shutil.copytree(sklearn_clf.artifact, tmp_path / "copy")
        raw = json.loads((copy / "manifest.json").read_text()) | change
        (copy / "manifest.json").write_text(json.dumps(raw))
        with pytest.raises(error, match=message) as caught:
            load_submission(copy)
        assert "Fix:" in str(caught.value)

    def test_unreadable_manifest(self, sklearn_clf, tmp_path: Path) -> None:
        copy = shutil.copytree(sklearn_clf.artifact, tmp_path / "copy")
        (copy / "manifest.json").write_text("{not json")
        with pytest.raises(ManifestError, match="cannot be read"):
            load_submission(copy)


class TestContentHash:
    def test_changes_with_any_byte(self, sklearn_clf, tmp_path: Path) -> None:
        copy = shutil.copytree(sklearn_clf.artifact, tmp_path / "copy")
        before = content_hash(copy)
        assert before == content_hash(sklearn_clf.artifact)
        model = copy / "model" / "model.pkl"
        data = bytearray(model.read_bytes())
        data[-3] ^= 0xFF
        model.write_bytes(bytes(data))
        assert content_hash(copy) != before

    def test_ignores_the_manifest(self, sklearn_clf, tmp_path: Path) -> None:
        copy = shutil.copytree(sklearn_clf.artifact, tmp_path / "copy")
        (copy / "manifest.json").write_text("{}")
        assert content_hash(copy) == content_hash(sklearn_clf.artifact)

    def test_a_damaged_artifact_is_refused(self, keras_clf, tmp_path: Path) -> None:
        copy = shutil.copytree(keras_clf.artifact, tmp_path / "copy")
        model = copy / "model" / "model.keras"
        model.write_bytes(model.read_bytes()[:100])
        with pytest.raises(
            ManifestError, match="do not match its manifest.*Fix: the artifact was modified or damaged"
        ):
            load_submission(copy)


class TestArchive:
    def test_tar_gz_round_trip(self, sklearn_clf, tmp_path: Path) -> None:
        manifest = save_submission(
            sklearn_clf.model, tmp_path / "sub.tar.gz", example_data=sklearn_clf.features
        )
        loaded = load_submission(tmp_path / "sub.tar.gz")
        assert loaded.manifest == manifest
        expected = sklearn_clf.model.predict_proba(sklearn_clf.features)
        assert np.array_equal(loaded.predict(sklearn_clf.features).proba, expected)

    def test_pack_is_reproducible_and_unpacks_to_the_same_files(self, torch_clf, tmp_path: Path) -> None:
        first = pack(torch_clf.artifact, tmp_path / "a.tar.gz")
        second = pack(torch_clf.artifact, tmp_path / "b.tar.gz")
        assert first.read_bytes() == second.read_bytes()
        unpacked = unpack(first, tmp_path / "out")
        assert content_hash(unpacked) == read_manifest(unpacked).content_hash

    def test_a_single_top_level_folder_is_accepted(self, sklearn_clf, tmp_path: Path) -> None:
        archive = tmp_path / "folder.tar.gz"
        with tarfile.open(archive, "w:gz") as tar:
            tar.add(sklearn_clf.artifact, arcname="my-submission")
        assert load_submission(archive).manifest is not None

    def test_garbage_is_a_corrupt_archive(self, tmp_path: Path) -> None:
        archive = tmp_path / "bad.tar.gz"
        archive.write_bytes(b"this is not gzip")
        with pytest.raises(CorruptArchive, match="bad.tar.gz is not a readable .tar.gz.*Fix:"):
            load_submission(archive)

    def test_truncated_archive(self, keras_clf, tmp_path: Path) -> None:
        whole = pack(keras_clf.artifact, tmp_path / "whole.tar.gz").read_bytes()
        truncated = tmp_path / "truncated.tar.gz"
        truncated.write_bytes(whole[: len(whole) // 2])
        with pytest.raises(CorruptArchive, match="upload it again completely"):
            load_submission(truncated)

    @pytest.mark.parametrize(
        ("name", "kind", "link", "reason"),
        [
            ("/etc/evil", tarfile.REGTYPE, "", "absolute path"),
            ("model/../../evil", tarfile.REGTYPE, "", "'..'"),
            ("model/link", tarfile.SYMTYPE, "../../../etc/passwd", "links outside"),
            ("model/abs-link", tarfile.SYMTYPE, "/etc/passwd", "links outside"),
            ("model/hard", tarfile.LNKTYPE, "../outside", "links outside"),
            ("model/dev", tarfile.CHRTYPE, "", "device"),
        ],
    )
    def test_unsafe_members_are_refused(
        self, tmp_path: Path, name: str, kind: bytes, link: str, reason: str
    ) -> None:
        member = tarfile.TarInfo(name)
        member.type, member.linkname = kind, link
        archive = _archive(tmp_path / "evil.tar.gz", member)
        with pytest.raises(UnsafeArchive, match=reason) as caught:
            unpack(archive, tmp_path / "out")
        assert "Fix:" in str(caught.value)
        assert not any((tmp_path / "out").iterdir())  # checked before anything is written
        assert not (tmp_path / "evil").exists()

    def test_links_inside_are_fine(self, tmp_path: Path) -> None:
        member = tarfile.TarInfo("model/alias")
        member.type, member.linkname = tarfile.SYMTYPE, "model.pkl"
        unpack(_archive(tmp_path / "ok.tar.gz", member), tmp_path / "out")
        assert (tmp_path / "out" / "model" / "alias").is_symlink()


def _archive(path: Path, member: tarfile.TarInfo) -> Path:
    payload = b"x"
    regular = tarfile.TarInfo("model/model.pkl")
    regular.size = len(payload)
    with tarfile.open(path, "w:gz") as tar:
        tar.addfile(regular, io.BytesIO(payload))
        if member.isreg():
            member.size = len(payload)
            tar.addfile(member, io.BytesIO(payload))
        else:
            tar.addfile(member)
    return path


def add_ratios(frame: pd.DataFrame) -> pd.DataFrame:
    """A preprocessor function: feature engineering the model was trained with."""
    out = frame.copy()
    out["petal ratio"] = out["petal length (cm)"] / out["petal width (cm)"]
    return out


class Scaler:
    """A preprocessor object with transform, defined in test code (so pickled by value)."""

    def __init__(self, mean: np.ndarray, scale: np.ndarray) -> None:
        self.mean, self.scale = mean, scale

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        return (np.asarray(frame, dtype=np.float64) - self.mean) / self.scale


class TestPreprocessors:
    def test_function_round_trip(self, iris, tmp_path: Path) -> None:
        from sklearn.tree import DecisionTreeClassifier

        features, labels = iris
        model = DecisionTreeClassifier(max_depth=3, random_state=0).fit(add_ratios(features), labels)
        manifest = save_submission(model, tmp_path / "a", preprocessor=add_ratios, example_data=features)
        assert manifest.preprocessor.kind == "callable"
        assert manifest.preprocessor.name.endswith("add_ratios")
        assert "def add_ratios" in (tmp_path / "a" / "preprocessor" / "source.py").read_text()
        predictions = load_submission(tmp_path / "a").predict(features)
        assert (predictions.labels == model.predict(add_ratios(features))).all()
        assert manifest.input_schema.columns == list(features.columns)  # raw columns, before preprocessing

    def test_transform_object_round_trip(self, iris, tmp_path: Path) -> None:
        from sklearn.linear_model import LogisticRegression

        features, labels = iris
        scaler = Scaler(features.to_numpy().mean(axis=0), features.to_numpy().std(axis=0))
        model = LogisticRegression(max_iter=300).fit(scaler.transform(features), labels)
        manifest = save_submission(model, tmp_path / "a", preprocessor=scaler, example_data=features)
        assert manifest.preprocessor.kind == "transform"
        assert "class Scaler" in (tmp_path / "a" / "preprocessor" / "source.py").read_text()
        predictions = load_submission(tmp_path / "a").predict(features)
        assert np.array_equal(predictions.proba, model.predict_proba(scaler.transform(features)))

    def test_library_transformer_records_its_repr(self, iris, tmp_path: Path) -> None:
        from sklearn.preprocessing import StandardScaler

        info = save_preprocessor(StandardScaler().fit(iris[0]), tmp_path / "p")
        assert info.kind == "transform" and "StandardScaler()" in (tmp_path / "p" / info.source).read_text()
        transform = load_preprocessor(tmp_path / "p")
        assert transform(iris[0]).shape == (150, 4)

    def test_lambda_round_trip(self, tmp_path: Path) -> None:
        save_preprocessor(lambda frame: frame * 2, tmp_path / "p")  # noqa: E731 - lambdas are what notebooks pass
        assert load_preprocessor(tmp_path / "p")(np.ones(3)).tolist() == [2.0, 2.0, 2.0]

    def test_neither_callable_nor_transform(self, tmp_path: Path) -> None:
        with pytest.raises(PreprocessorError, match="neither callable nor has a transform"):
            save_preprocessor(42, tmp_path / "p")

    def test_missing_columns_are_named(self, sklearn_clf) -> None:
        loaded = load_submission(sklearn_clf.artifact)
        with pytest.raises(ModelInputError, match=r"lack column\(s\) \['petal width \(cm\)'\]"):
            loaded.predict(sklearn_clf.features.drop(columns=["petal width (cm)"]))

    def test_columns_are_reordered_by_name(self, sklearn_clf) -> None:
        loaded = load_submission(sklearn_clf.artifact)
        shuffled = sklearn_clf.features[list(reversed(sklearn_clf.features.columns))]
        assert (loaded.predict(shuffled).labels == sklearn_clf.model.predict(sklearn_clf.features)).all()

    def test_errors_are_podium_errors(self) -> None:
        assert issubclass(PreprocessorError, PodiumError) and issubclass(CorruptArchive, ArtifactError)
