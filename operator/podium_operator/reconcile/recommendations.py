"""Recommendations (pure): a Playground's profile Job, its meta-features, and the configurations proposed to it.

A Playground with ``spec.trainingData`` gets a profile Job (trusted, presigned URLs only, like a training
Job) that writes the data's meta-features below the operator's own prefix. Each Playground is then
recommended the training configurations that ranked best on the playgrounds nearest to it in
meta-feature space (:func:`podium.automl.recommend.recommend`). A configuration comes only from the
operator's records of Evaluated *training* Submissions (their validated training spec, or the best
configuration a tpe-search found), never from what a participant's model or status says.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from podium.api.playground import PlaygroundSpec
from podium.automl.recommend import KnownTask, recommend
from podium.evaluation.wire import InvalidJSON, strict_json
from podium.training.wire import ProfileArgs
from podium_operator.reconcile.evaluation_jobs import job_pod_spec, restricted_security
from podium_operator.reconcile.names import (
    MANAGED_BY,
    PLAYGROUND_LABEL,
    STEP_LABEL,
    child_name,
    owner_reference,
)
from podium_operator.reconcile.records import SubmissionRecord

MAX_METAFEATURES_BYTES = 256 << 10
MAX_METAFEATURES = 1000
RECOMMENDATIONS = 3
PROFILE_TIMEOUT_SECONDS = 1800


def data_source(spec: PlaygroundSpec) -> str | None:
    """What the meta-features describe: a digest of the training data's URIs (None: no training data)."""
    if spec.training_data is None:
        return None
    text = f"{spec.training_data.features}\n{spec.training_data.labels}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def profile_job_name(playground: str, source: str) -> str:
    return child_name(playground, f"profile-{source[:8]}")


def profile_job(playground: dict[str, Any], *, task: str, features_url: str, labels_url: str, out_url: str,
                image: str, source: str) -> dict[str, Any]:
    meta = playground["metadata"]
    labels = {**MANAGED_BY, PLAYGROUND_LABEL: meta["name"], STEP_LABEL: "profile"}
    args = ProfileArgs(features=features_url, labels=labels_url, task=task, out=out_url)  # type: ignore[arg-type]
    return {
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": profile_job_name(meta["name"], source), "namespace": meta["namespace"],
                     "labels": labels, "ownerReferences": [owner_reference(playground)]},
        "spec": {
            "backoffLimit": 1, "activeDeadlineSeconds": PROFILE_TIMEOUT_SECONDS,
            "template": {"metadata": {"labels": labels}, "spec": job_pod_spec([{
                "name": "profile", "image": image,
                "command": ["python", "-m", "podium.training.profile", *args.to_argv()],
                "resources": {"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"cpu": "1", "memory": "2Gi"}},
                "terminationMessagePolicy": "FallbackToLogsOnError",
                "securityContext": restricted_security(),
                "env": [{"name": "HOME", "value": "/tmp"}],
                "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
            }], [{"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}}])},
        },
    }


def read_metafeatures(data: bytes) -> dict[str, float]:
    """The profile Job's output, strictly read: at most :data:`MAX_METAFEATURES` finite numbers by name."""
    try:
        raw = strict_json(data, limit=MAX_METAFEATURES_BYTES)
    except InvalidJSON as error:
        raise ValueError(f"meta-features {error}") from None
    values = raw.get("metafeatures") if isinstance(raw, dict) else None
    if not isinstance(values, dict) or len(values) > MAX_METAFEATURES:
        raise ValueError(f"meta-features: expected an object of at most {MAX_METAFEATURES} numbers")
    return {str(k)[:128]: float(v) for k, v in values.items()
            if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(float(v))}


def recommendable(record: SubmissionRecord) -> dict[str, Any] | None:
    """The training spec (algorithm and hyperparameters) a record shows to be worth recommending, or None."""
    if record.phase != "Evaluated" or record.score is None or not record.training:
        return None
    return dict(record.training)


@dataclass(frozen=True)
class Candidate:
    """One playground as recommendations see it."""

    name: str
    spec: PlaygroundSpec
    metafeatures: Mapping[str, float]
    records: Sequence[SubmissionRecord]


def _results(candidate: Candidate) -> list[tuple[dict[str, Any], float, int | None]]:
    sign = 1.0 if candidate.spec.direction == "maximize" else -1.0
    found = []
    for record in candidate.records:
        config = recommendable(record)
        if config is not None and record.score is not None:
            found.append((config, sign * record.score, record.version))
    return found


def recommendations(target: Candidate, others: Sequence[Candidate], k: int = RECOMMENDATIONS) -> list[dict[str, Any]]:
    """``status.recommendations`` of ``target``: the best configurations of the nearest playgrounds of its task."""
    peers = [c for c in others if c.name != target.name and c.spec.task == target.spec.task and c.metafeatures]
    known, versions, metrics, signs = [], {}, {}, {}
    for peer in peers:
        results = _results(peer)
        if not results:
            continue
        known.append(KnownTask(name=peer.name, metafeatures=peer.metafeatures,
                               results=[(config, score) for config, score, _ in results]))
        for config, _score, version in results:
            versions[(peer.name, _key(config))] = version
        metrics[peer.name] = peer.spec.primary_metric
        signs[peer.name] = 1.0 if peer.spec.direction == "maximize" else -1.0
    if not known or not target.metafeatures:
        return []
    rows = []
    for rank, found in enumerate(recommend(target.metafeatures, known, k=k), start=1):
        rows.append({"rank": rank, "sourcePlayground": found.source, "distance": round(float(found.distance), 6),
                     "score": signs[found.source] * found.score, "metric": metrics[found.source],
                     "version": versions.get((found.source, _key(found.config))), "training": found.config})
    return rows


def _key(config: Mapping[str, Any]) -> str:
    import json

    return json.dumps(config, sort_keys=True, default=str)
