"""The trusted score step against a hostile predict step: everything under /data/out is the attacker's.

Each test plays the attacker: it writes what a malicious model could leave in the predict step's output
directory (``predictions.npz``, ``metadata.json``) and runs the score step as its Job does
(:func:`podium.evaluation.score.main`, local-file URIs). The step must come back promptly, exit 1, and
leave a short termination message naming the field at fault and a fix; never hang, never read an
unbounded input, never let a traceback or a non-finite number through.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from podium.data import write_table
from podium.evaluation import score
from podium.evaluation.wire import METADATA_NAME, PREDICTIONS_NAME, PublicResult
from podium.predictions import MAX_PREDICTIONS_BYTES, Predictions, save_predictions
from podium.split import compute_split

CLASSES = np.array(["cat", "dog", "eel"])
N = 60
PROMPT_SECONDS = 20  # far more than an honest run takes; a hang or a full read of a huge file takes longer


@dataclass
class Volume:
    """The score step's inputs as the evaluation Job sees them: trusted holdout, hostile out directory."""

    root: Path
    labels: Path
    regression_labels: Path
    split: Path
    out: Path

    @property
    def predictions(self) -> Path:
        return self.out / PREDICTIONS_NAME

    @property
    def metadata(self) -> Path:
        return self.out / METADATA_NAME


@pytest.fixture
def volume(tmp_path: Path) -> Volume:
    truth = CLASSES[np.arange(N) % 3]
    out = tmp_path / "data" / "out"
    out.mkdir(parents=True)
    vol = Volume(
        root=tmp_path,
        labels=write_table(truth, tmp_path / "labels.csv"),
        regression_labels=write_table(np.linspace(1.0, 2.0, N), tmp_path / "y.npy"),
        split=compute_split(truth, private_fraction=0.5, seed=3).save(tmp_path / "split.json"),
        out=out,
    )
    proba = np.full((N, 3), 0.1)
    proba[np.arange(N), np.arange(N) % 3] = 0.8
    save_predictions(Predictions(truth, proba, CLASSES), vol.predictions)
    vol.metadata.write_text(json.dumps({"framework": "sklearn", "n_params": 12}))
    return vol


@dataclass
class Outcome:
    code: int
    summary: dict[str, Any]
    seconds: float
    results: Path

    @property
    def error(self) -> str:
        return str(self.summary.get("error") or "")


def run_job(vol: Volume, *, task: str = "classification", metadata: bool = True,
            on_hang: Callable[[], None] | None = None) -> Outcome:
    """``python -m podium.evaluation.score`` as the evaluation Job runs it, in a thread with a deadline."""
    results = vol.root / "results" / "result.json"
    log = vol.root / "termination-log"
    argv = [
        "--predictions", str(vol.predictions),
        "--labels", f"file://{vol.labels if task == 'classification' else vol.regression_labels}",
        "--task", task,
        *(["--class-labels", json.dumps(CLASSES.tolist())] if task == "classification" else []),
        "--split", str(vol.split),
        "--results", str(results),
        "--private", str(vol.root / "private" / "scores.json"),
        *(["--metadata", str(vol.metadata)] if metadata else []),
        "--termination-log", str(log),
    ]  # fmt: skip
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["code"] = score.main(argv)
        except BaseException as error:  # reported below, by the test
            box["raised"] = error

    started = time.monotonic()
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(PROMPT_SECONDS)
    seconds = time.monotonic() - started
    if thread.is_alive():
        if on_hang is not None:
            on_hang()  # let the stuck thread go, so the run can end
        pytest.fail(f"the score step hung for more than {PROMPT_SECONDS}s")
    if "raised" in box:
        error = box["raised"]
        pytest.fail(f"the score step raised {type(error).__name__}: {error} instead of failing with a message")
    summary = json.loads(log.read_text()) if log.exists() else {}
    return Outcome(box["code"], summary, seconds, results)


def assert_refused(outcome: Outcome, *, field: str, says: str) -> None:
    """Exit 1; a short termination message naming ``field`` and a fix; nothing published."""
    assert outcome.code == 1, outcome.summary
    assert outcome.summary["status"] == "failed"
    assert outcome.summary["field"] == field, outcome.summary
    error = outcome.error
    assert error.startswith(f"{field}: "), error
    assert says.lower() in error.lower(), error
    assert "Fix:" in error, error
    assert "Traceback" not in error and "internal error" not in error, error
    assert len(error) < 600, error
    assert not outcome.results.exists(), "a refused input must not produce a result file"


def test_an_honest_run_is_scored(volume: Volume) -> None:
    outcome = run_job(volume)
    assert outcome.code == 0, outcome.summary
    result = PublicResult.model_validate_json(outcome.results.read_bytes())
    assert result.public["accuracy"] == 1.0 and result.metadata == {"framework": "sklearn", "n_params": 12}


# --- metadata.json -------------------------------------------------------------------------------------


def _release_fifo(path: Path) -> Callable[[], None]:
    def release() -> None:
        with contextlib.suppress(OSError):  # a writer that opens and closes: a reader blocked in open() sees EOF
            os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))

    return release


def test_metadata_fifo_does_not_block_the_score_step(volume: Volume) -> None:
    volume.metadata.unlink()
    os.mkfifo(volume.metadata)
    outcome = run_job(volume, on_hang=_release_fifo(volume.metadata))
    assert_refused(outcome, field="metadata", says="not a regular file")
    assert outcome.seconds < PROMPT_SECONDS


@pytest.mark.parametrize("target", ["/dev/zero", "trusted.json"])
def test_metadata_symlink_is_not_followed(volume: Volume, target: str) -> None:
    if target == "trusted.json":  # e.g. a file only the score pod can read
        target = str(volume.root / "trusted.json")
        Path(target).write_text(json.dumps({"secret": "s3cr3t"}))
    volume.metadata.unlink()
    volume.metadata.symlink_to(target)
    outcome = run_job(volume)
    assert_refused(outcome, field="metadata", says="symbolic link")
    assert "s3cr3t" not in json.dumps(outcome.summary)


def test_huge_metadata_fails_fast_naming_its_size_and_the_limit(volume: Volume) -> None:
    size = 150 * 1024 * 1024
    with volume.metadata.open("wb") as file:  # sparse: costs no disk, reads as 150 MB of zeros
        file.truncate(size)
    outcome = run_job(volume)
    assert_refused(outcome, field="metadata", says=str(score.MAX_METADATA_BYTES))
    assert str(size) in outcome.error  # the message says how large the file is, read from fstat


@pytest.mark.parametrize("text", [
    '{"loss": NaN}', '{"loss": Infinity}', '{"loss": -Infinity}', '{"loss": 1e999}',
    '{"nested": {"deep": [1, NaN]}}', '{"n": ' + "9" * 400 + "}",
])
def test_non_finite_numbers_in_metadata_are_refused(volume: Volume, text: str) -> None:
    volume.metadata.write_text(text)
    outcome = run_job(volume)
    assert_refused(outcome, field="metadata", says="finite")


def test_deeply_nested_metadata_is_refused_cleanly(volume: Volume) -> None:
    volume.metadata.write_text("[" * 200_000 + "]" * 200_000)
    assert_refused(run_job(volume), field="metadata", says="nested")


def test_lone_surrogates_in_metadata_are_refused(volume: Volume) -> None:
    volume.metadata.write_text('{"name": "\\ud800"}')
    assert_refused(run_job(volume), field="metadata", says="unicode")


def test_metadata_that_is_not_an_object_is_refused(volume: Volume) -> None:
    volume.metadata.write_text("[1, 2, 3]")
    assert_refused(run_job(volume), field="metadata", says="object")


def test_missing_metadata_is_no_metadata(volume: Volume) -> None:
    volume.metadata.unlink()
    outcome = run_job(volume)
    assert outcome.code == 0, outcome.summary
    assert PublicResult.model_validate_json(outcome.results.read_bytes()).metadata == {}


# --- predictions.npz -----------------------------------------------------------------------------------


def test_predictions_fifo_does_not_block_the_score_step(volume: Volume) -> None:
    volume.predictions.unlink()
    os.mkfifo(volume.predictions)
    outcome = run_job(volume, on_hang=_release_fifo(volume.predictions))
    assert_refused(outcome, field="predictions", says="not a regular file")


@pytest.mark.parametrize("target", ["/dev/zero", "honest.npz"])
def test_predictions_symlink_is_not_followed(volume: Volume, target: str) -> None:
    if target == "honest.npz":  # even a well-formed file elsewhere is not read through a link
        target = str(volume.root / "honest.npz")
        volume.predictions.rename(target)
    else:
        volume.predictions.unlink()
    volume.predictions.symlink_to(target)
    assert_refused(run_job(volume), field="predictions", says="symbolic link")


def test_oversized_predictions_file_is_refused_without_reading_it(volume: Volume) -> None:
    with volume.predictions.open("wb") as file:  # sparse
        file.truncate(MAX_PREDICTIONS_BYTES + 1)
    outcome = run_job(volume)
    assert_refused(outcome, field="predictions", says=str(MAX_PREDICTIONS_BYTES))
    assert str(MAX_PREDICTIONS_BYTES + 1) in outcome.error


def _npy_header(shape: tuple[int, ...], dtype: str) -> bytes:
    import io

    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": dtype, "fortran_order": False, "shape": shape})
    return buffer.getvalue()  # the magic string, then the header


def test_an_array_claiming_more_rows_than_its_file_holds_is_refused(volume: Volume) -> None:
    """A tiny member whose header claims 10^12 rows: no allocation of 8 TB, a message instead."""
    with zipfile.ZipFile(volume.predictions, "w") as archive:
        archive.writestr("labels.npy", _npy_header((10**12,), "<f8") + b"\0" * 64)
    assert_refused(run_job(volume), field="predictions.labels", says="rows")


def test_a_compressed_bomb_is_refused_by_its_declared_size(volume: Volume, monkeypatch: pytest.MonkeyPatch) -> None:
    import podium.predictions

    monkeypatch.setattr(podium.predictions, "MAX_PREDICTIONS_BYTES", 4 << 20)  # a 4 MiB budget for this test
    with zipfile.ZipFile(volume.predictions, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("labels.npy", _npy_header((2_000_000,), "<f8") + bytes(16_000_000))  # 16 MB -> ~16 KB
    assert volume.predictions.stat().st_size < 1 << 20
    assert_refused(run_job(volume), field="predictions", says="uncompressed")


def test_an_archive_with_a_huge_central_directory_is_refused(volume: Volume) -> None:
    with zipfile.ZipFile(volume.predictions, "a") as archive:
        for index in range(2_000):
            archive.writestr(f"x{index}.npy", b"")
    assert_refused(run_job(volume), field="predictions", says="entries")


def test_predictions_without_labels_are_refused(volume: Volume) -> None:
    np.savez(volume.predictions, something=np.arange(N))
    assert_refused(run_job(volume), field="predictions", says="labels")


def test_pickled_predictions_are_never_unpickled(volume: Volume) -> None:
    np.savez(volume.predictions, labels=np.array([object()] * N, dtype=object))
    assert_refused(run_job(volume), field="predictions.labels", says="dtype")


def _struct(n: int) -> np.ndarray:
    return np.zeros(n, dtype=[("a", "<i4"), ("b", "<f8")])


UNUSUAL = {  # what the attacker saves, the task, the field the message must name
    "complex labels": (lambda: {"labels": np.ones(N, complex)}, "classification", "predictions.labels"),
    "complex values": (lambda: {"labels": np.ones(N, complex)}, "regression", "predictions.labels"),
    "structured labels": (lambda: {"labels": _struct(N)}, "classification", "predictions.labels"),
    "void labels": (lambda: {"labels": np.zeros(N, "V8")}, "classification", "predictions.labels"),
    "datetime labels": (lambda: {"labels": np.zeros(N, "M8[s]")}, "classification", "predictions.labels"),
    "datetime values": (lambda: {"labels": np.zeros(N, "M8[s]")}, "regression", "predictions.labels"),
    "timedelta labels": (lambda: {"labels": np.zeros(N, "m8[s]")}, "classification", "predictions.labels"),
    "non-ASCII bytes labels": (lambda: {"labels": np.array([b"\xff"] * N)}, "classification", "predictions.labels"),
    "invalid code points": (
        lambda: {"labels": np.full(N, 0x110000, "<u4").view("<U1")}, "classification", "predictions.labels"),
    "a single label": (lambda: {"labels": np.array("cat")}, "classification", "predictions.labels"),
    "complex proba": (
        lambda: {"labels": CLASSES[np.arange(N) % 3], "proba": np.full((N, 3), 1 / 3, complex), "classes": CLASSES},
        "classification", "predictions.proba"),
    "text proba": (
        lambda: {"labels": CLASSES[np.arange(N) % 3], "proba": np.full((N, 3), "0.3333334"), "classes": CLASSES},
        "classification", "predictions.proba"),
    "datetime proba": (
        lambda: {"labels": CLASSES[np.arange(N) % 3], "proba": np.zeros((N, 3), "M8[s]"), "classes": CLASSES},
        "classification", "predictions.proba"),
    "structured proba": (
        lambda: {"labels": CLASSES[np.arange(N) % 3], "proba": _struct(N), "classes": CLASSES},
        "classification", "predictions.proba"),
    "complex classes": (
        lambda: {"labels": CLASSES[np.arange(N) % 3], "proba": np.full((N, 3), 1 / 3), "classes": np.ones(3, complex)},
        "classification", "predictions.classes"),
    "a single class": (
        lambda: {"labels": CLASSES[np.arange(N) % 3], "proba": np.full((N, 3), 1 / 3), "classes": np.array("cat")},
        "classification", "predictions.classes"),
    "classes for regression": (
        lambda: {"labels": np.ones(N), "proba": np.full((N, 3), 1 / 3), "classes": _struct(3)},
        "regression", "predictions.classes"),
}


@pytest.mark.parametrize("case", list(UNUSUAL))
def test_unusual_dtypes_fail_with_a_short_message_naming_the_field(volume: Volume, case: str) -> None:
    arrays, task, field = UNUSUAL[case]
    with volume.predictions.open("wb") as file:
        np.savez(file, **arrays())
    assert_refused(run_job(volume, task=task), field=field, says="")


@pytest.mark.parametrize("values", [
    np.ones(N, complex), _struct(N), np.zeros(N, "M8[s]"), np.zeros(N, "m8[s]"), np.zeros(N, "V4"),
    np.array([b"\xff"] * N),
], ids=["complex", "structured", "datetime", "timedelta", "void", "non-ASCII bytes"])
def test_encoding_in_memory_labels_of_unusual_dtypes_names_the_field(values: np.ndarray) -> None:
    """The same rule where predictions arrive in memory (podium.metrics), not through the file."""
    from podium.errors import InvalidPredictions
    from podium.metrics import encode_classification

    with pytest.raises(InvalidPredictions) as raised:
        encode_classification(CLASSES[np.arange(N) % 3], values, labels=CLASSES)
    assert raised.value.field == "predictions.labels" and "Fix:" in str(raised.value)


def test_metadata_nested_past_what_can_be_written_out_is_refused(volume: Volume) -> None:
    volume.metadata.write_text('{"a": ' + "[" * 300 + "]" * 300 + "}")  # parses; pydantic cannot serialise it
    assert_refused(run_job(volume), field="metadata", says="nested")
