"""Holdout sets built from scikit-learn's bundled data, uploaded to the local object store."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.datasets import load_iris
from sklearn.model_selection import train_test_split

from podium import storage
from podium.data import write_table

IRIS_CLASSES = ["setosa", "versicolor", "virginica"]


def iris_split(seed: int = 0):
    data = load_iris(as_frame=True)
    X = data.frame.drop(columns="target")
    y = np.array(IRIS_CLASSES, dtype=object)[data.target.to_numpy()]
    return train_test_split(X, y, test_size=0.4, random_state=seed, stratify=y)


def upload_holdout(features: pd.DataFrame, labels: np.ndarray, prefix: str) -> tuple[str, str]:
    with tempfile.TemporaryDirectory() as scratch:
        features_uri = storage.upload(write_table(features, Path(scratch) / "features.csv"), f"{prefix}/features.csv")
        labels_uri = storage.upload(write_table(np.asarray(labels), Path(scratch) / "labels.csv"), f"{prefix}/labels.csv")
    return features_uri, labels_uri


def iris_playground(name: str, features_uri: str, labels_uri: str, **spec) -> dict:
    return {
        "apiVersion": "podium.dev/v1alpha1",
        "kind": "Playground",
        "metadata": {"name": name},
        "spec": {
            "task": "classification",
            "holdout": {"features": features_uri, "labels": labels_uri},
            "classLabels": IRIS_CLASSES,
            "primaryMetric": "accuracy",
            **spec,
        },
    }


def open_iris_playground(custom_objects, name: str = "iris", **spec) -> tuple[Any, tuple[str, str], dict]:
    """Upload the iris holdout, create the Playground through the API and wait until it is Ready.

    Returns the SDK's ModelPlayground, the holdout's (features, labels) URIs and the Ready object.
    """
    from podium.client import ModelPlayground

    _, X_test, _, y_test = iris_split()
    holdout = upload_holdout(X_test, y_test, f"s3://podium/holdouts/{name}")
    custom_objects.create_namespaced_custom_object(
        "podium.dev", "v1alpha1", "default", "playgrounds", iris_playground(name, *holdout, **spec))
    playground = ModelPlayground(name)
    return playground, holdout, playground.wait_ready()
