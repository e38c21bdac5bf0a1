"""What a training Job is given: its data (read through presigned URLs, within limits) and its device."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from podium import storage
from podium.errors import PodiumError
from podium.training.wire import MAX_DATA_BYTES
from podium.uri import parse


class TrainingInputError(PodiumError):
    """The data or the settings cannot be trained on; the message names the field and the fix."""


def read_training_data(features_url: str, labels_url: str, task: str, scratch: Path) -> tuple[Any, np.ndarray]:
    """Features and labels through their URLs, each at most :data:`MAX_DATA_BYTES`, with equal row counts."""
    from podium.data import read_features, read_labels

    paths = []
    for field, url in (("data.features", features_url), ("data.labels", labels_url)):
        suffix = Path(parse(url).name or "").suffix or ".csv"
        path = scratch / f"{field.split('.')[1]}{suffix}"
        try:
            path.write_bytes(storage.read_bytes(url, limit=MAX_DATA_BYTES))
        except PodiumError as error:
            error.field = field
            raise
        paths.append(path)
    features = read_features(paths[0])
    labels = read_labels(paths[1], task=task)
    if len(features) != len(labels):
        raise TrainingInputError(f"the training features have {len(features)} rows but the labels {len(labels)}",
                                 field="data.labels", hint="give one label per feature row")
    if len(labels) == 0:
        raise TrainingInputError("the training data has no rows", field="data.features", hint="give labelled rows")
    return features, labels


def choose_device(wanted: str) -> str:
    """cuda when there is one (and ``wanted`` allows it), else cpu; the CUDA build is checked for this GPU."""
    if wanted == "cpu":
        return "cpu"
    try:
        import torch
    except ImportError:
        return "cpu"
    if not torch.cuda.is_available():
        if wanted == "cuda":
            raise TrainingInputError("no CUDA device is visible to this pod", field="resources.gpu",
                                     hint="schedule it on a GPU node (nodeSelector, tolerations) or set gpu: 0")
        return "cpu"
    from podium.metalearn.algorithms import check_cuda_arch

    check_cuda_arch()
    return "cuda"


