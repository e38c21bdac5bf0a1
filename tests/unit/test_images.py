"""The images run what the operator's manifests name: each entry point is a module that exists."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

from podium_operator.reconcile.training_jobs import TRAIN_MODULE

IMAGES = Path(__file__).resolve().parents[2] / "images"


def _entry_module(dockerfile: Path) -> str | None:
    match = re.search(r'^ENTRYPOINT \["python", "-m", "([\w.]+)"', dockerfile.read_text(), re.MULTILINE)
    return match.group(1) if match else None


@pytest.mark.parametrize("image", ["operator", "predictor", "trainer"])
def test_each_entry_point_is_a_module_that_exists(image):
    module = _entry_module(IMAGES / image / "Dockerfile")
    assert module is not None, f"images/{image}/Dockerfile has no python -m entry point"
    assert importlib.util.find_spec(module) is not None, f"{module} is not importable"


def test_the_trainer_runs_the_training_jobs_module_on_a_pytorch_build_with_p100_kernels():
    text = (IMAGES / "trainer" / "Dockerfile").read_text()
    assert _entry_module(IMAGES / "trainer" / "Dockerfile") == TRAIN_MODULE
    assert importlib.util.find_spec("podium.training.profile") is not None  # the profile Job's command
    assert '"torch==2.13.0" --index-url https://download.pytorch.org/whl/cu126' in text  # pinned, with sm_60
    assert "'sm_60' in flags" in text  # the build fails if that build lost Pascal
    assert '"onnxruntime-gpu==' in text and "pip uninstall -y onnxruntime" in text
    assert re.search(r"^USER 10001$", text, re.MULTILINE)  # non-root (the Job sets its own uid too)
