"""Which stored model a ModelDeployment may serve (pure): spec target + the operator's records -> an Artifact.

Only an Evaluated submission of the same Playground (by uid: not one of an earlier Playground of the same
name) with a model artifact can be served; the decision comes from the operator's records, never from a
Submission's status, which a participant may be able to write.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from podium.api.deployment import TargetRef
from podium_operator.reconcile.inference_service import Artifact
from podium_operator.reconcile.records import SubmissionRecord


@dataclass(frozen=True)
class Refusal:
    """Why a target cannot be served: a CamelCase reason and one line naming the field and the fix."""

    reason: str
    message: str


def resolve(ref: TargetRef, *, field: str, playground: Mapping[str, Any] | None,
            records: Iterable[SubmissionRecord], submissions: Mapping[str, Mapping[str, Any]]) -> Artifact | Refusal:
    """The Artifact ``ref`` names. ``submissions``: the namespace's Submission objects by name."""
    if playground is None:
        return Refusal("PlaygroundNotFound", "spec.playground: no such Playground in this namespace; create it first")
    pg_name, pg_uid = playground["metadata"]["name"], playground["metadata"]["uid"]
    own = [r for r in records if r.playground == pg_name and r.playground_uid == pg_uid]
    if ref.version is not None:
        record = next((r for r in own if r.version == ref.version), None)
        if record is None:
            return Refusal("SubmissionNotFound", f"{field}.version: no submission of playground {pg_name} has "
                                                 f"leaderboard version {ref.version}; pick one from its leaderboard")
        name = record.submission
    else:
        name = ref.submission or ""
        obj = submissions.get(name)
        record = next((r for r in own if obj is not None and r.uid == obj["metadata"].get("uid")), None)
        if obj is None or record is None:
            return Refusal("SubmissionNotFound", f"{field}.submission: {name!r} is not a submission of playground "
                                                 f"{pg_name}; name one from its leaderboard")
    obj = submissions.get(name)
    if obj is None or obj["metadata"].get("uid") != record.uid:
        return Refusal("SubmissionNotFound", f"{field}: submission {name!r} (version {record.version}) no longer "
                                             "exists; deploy another one")
    if record.phase != "Evaluated":
        return Refusal("NotEvaluated", f"{field}: submission {name!r} is {record.phase}: only Evaluated submissions "
                                       "can be deployed")
    model = dict((obj.get("spec") or {}).get("model") or {})
    if record.model_uri:  # recorded when admitted, or when its training Job produced it
        model["uri"] = record.model_uri
    if not model.get("uri"):
        return Refusal("NotDeployable", f"{field}: submission {name!r} sent predictions, not a model; deploy a "
                                        "model submission")
    if model.get("preprocessorUri"):
        return Refusal("NotDeployable", f"{field}: submission {name!r} has a separate preprocessorUri, which the "
                                        "predictor does not load; bundle it: save_submission(model, path, "
                                        "preprocessor=...)")
    if not str(model["uri"]).startswith("s3://"):
        return Refusal("NotDeployable", f"{field}: submission {name!r} has the model URI {model['uri']!r}; KServe's "
                                        "storage initializer needs an s3:// URI")
    pg_spec = playground.get("spec") or {}
    task = pg_spec.get("task", "classification")
    labels = pg_spec.get("classLabels")
    return Artifact(submission=name, version=record.version, storage_uri=str(model["uri"]), task=task,
                    class_labels=tuple(labels) if task == "classification" and labels else None)
