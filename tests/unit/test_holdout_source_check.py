"""The periodic holdout-source check: it downloads the source only when its metadata says it may have
changed, and reports a real change once (the flow against a stand-in controller and real files)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from podium.data import write_table
from podium_operator.flows import playground as flow
from podium_operator.settings import OperatorConfig


class Controller:
    def __init__(self) -> None:
        self.config = OperatorConfig.from_env()
        self.holdout_fingerprints: dict[str, tuple[str, ...]] = {}
        self.events: list[tuple[str, str]] = []
        self.patches: list[dict[str, Any]] = []

    def post_event(self, obj: dict[str, Any], type_: str, reason: str, message: str) -> None:
        self.events.append((type_, reason))

    async def patch_status(self, resource: Any, obj: dict[str, Any], status: dict[str, Any]) -> dict[str, Any]:
        self.patches.append(status)
        obj["status"] = {**obj.get("status", {}), **status}
        return obj


def _playground(features: Path, labels: Path) -> dict[str, Any]:
    sha = flow.holdout_digest([features, labels])
    return {
        "metadata": {"name": "pg", "namespace": "ns", "uid": "pg-uid", "generation": 1},
        "spec": {"task": "classification", "classLabels": ["a", "b"], "primaryMetric": "accuracy",
                 "holdout": {"features": str(features), "labels": str(labels)}},
        "status": {"holdout": {"sha256": sha}, "conditions": [{"type": "Ready", "status": "True"}]},
    }


async def test_an_untouched_source_is_not_downloaded_again_and_a_change_is_reported_once(tmp_path, monkeypatch):
    features = write_table(pd.DataFrame({"x": np.arange(6.0)}), tmp_path / "features.csv")
    labels = write_table(np.array(["a", "b"] * 3), tmp_path / "labels.csv")
    playground, ctl = _playground(features, labels), Controller()
    digests: list[int] = []
    real = flow._source_digest
    monkeypatch.setattr(flow, "_source_digest", lambda spec: digests.append(1) or real(spec))

    await flow.check_holdout_source(ctl, playground)
    await flow.check_holdout_source(ctl, playground)
    assert len(digests) == 1 and ctl.events == []  # the second check read metadata only

    os.utime(labels, ns=(labels.stat().st_atime_ns, labels.stat().st_mtime_ns + 10**9))  # touched, same bytes
    await flow.check_holdout_source(ctl, playground)
    assert len(digests) == 2 and ctl.events == []

    write_table(np.array(["b", "a"] * 3), labels)  # other labels under the same name
    await flow.check_holdout_source(ctl, playground)
    await flow.check_holdout_source(ctl, playground)
    assert len(digests) == 3 and ctl.events == [("Warning", "HoldoutSourceChanged")]
    (condition,) = [c for c in playground["status"]["conditions"] if c["type"] == "HoldoutInSync"]
    assert condition["status"] == "False"
