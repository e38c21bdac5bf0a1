"""The three Podium kinds: names, printer columns and their spec/status models."""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import BaseModel

from podium.api.common import API_VERSION, CATEGORY, GROUP, VERSION
from podium.api.deployment import ModelDeploymentSpec, ModelDeploymentStatus
from podium.api.playground import PlaygroundSpec, PlaygroundStatus
from podium.api.submission import SubmissionSpec, SubmissionStatus

READY_COLUMN: dict[str, object] = {"name": "Ready", "type": "string", "jsonPath": '.status.conditions[?(@.type=="Ready")].status'}
AGE_COLUMN: dict[str, object] = {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}

_ADMITTED = "has(oldSelf.status) && has(oldSelf.status.nextVersion) && oldSelf.status.nextVersion > 1"
_SEED = "(has({s}.spec.competition.seed) ? {s}.spec.competition.seed : 0)"
_FRACTION = "(has({s}.spec.competition.privateFraction) ? {s}.spec.competition.privateFraction : 0.5)"
_SAME_SPLIT = (
    "has(self.spec.competition) == has(oldSelf.spec.competition) && (!has(self.spec.competition) || ("
    f"{_SEED.format(s='self')} == {_SEED.format(s='oldSelf')} && "
    f"{_FRACTION.format(s='self')} == {_FRACTION.format(s='oldSelf')}))"
)
# Scores already given used this holdout and split: once a Submission is admitted they cannot change.
FROZEN_SPLIT_RULE = (
    f"!({_ADMITTED}) || (self.spec.holdout == oldSelf.spec.holdout && {_SAME_SPLIT})",
    "spec.holdout, spec.competition.seed and spec.competition.privateFraction are frozen once a Submission "
    "has been admitted (scores were computed with them); to use another holdout or split, create a new "
    "Playground (e.g. a second round under a new name) and submit there",
    ".spec",
)


@dataclass(frozen=True)
class ResourceKind:
    kind: str
    plural: str
    short_names: tuple[str, ...]
    spec_model: type[BaseModel]
    status_model: type[BaseModel]
    printer_columns: tuple[dict[str, object], ...] = field(default=())
    description: str = ""
    # CEL rules on the whole object (they may compare spec with status), as (rule, message, fieldPath).
    object_rules: tuple[tuple[str, str, str], ...] = field(default=())

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def crd_name(self) -> str:
        return f"{self.plural}.{GROUP}"

    @property
    def api_version(self) -> str:
        return API_VERSION

    @property
    def group(self) -> str:
        return GROUP

    @property
    def version(self) -> str:
        return VERSION

    @property
    def categories(self) -> tuple[str, ...]:
        return (CATEGORY,)


PLAYGROUND = ResourceKind(
    kind="Playground",
    plural="playgrounds",
    short_names=("pg",),
    spec_model=PlaygroundSpec,
    status_model=PlaygroundStatus,
    description="An ML task with a holdout set, experiment and competition tracks, and leaderboards.",
    object_rules=(FROZEN_SPLIT_RULE,),
    printer_columns=(
        {"name": "Task", "type": "string", "jsonPath": ".spec.task"},
        {"name": "Metric", "type": "string", "jsonPath": ".spec.primaryMetric"},
        {"name": "Submissions", "type": "integer", "jsonPath": ".status.submissionCount"},
        READY_COLUMN,
        {"name": "Visibility", "type": "string", "jsonPath": ".spec.visibility", "priority": 1},
        AGE_COLUMN,
    ),
)

SUBMISSION = ResourceKind(
    kind="Submission",
    plural="submissions",
    short_names=("sub",),
    spec_model=SubmissionSpec,
    status_model=SubmissionStatus,
    description="A model, predictions or training request sent to a Playground, evaluated in a sandboxed Job.",
    printer_columns=(
        {"name": "Playground", "type": "string", "jsonPath": ".spec.playground"},
        {"name": "Version", "type": "integer", "jsonPath": ".status.version"},
        {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
        {"name": "Score", "type": "number", "jsonPath": ".status.score"},
        {"name": "Training", "type": "string", "jsonPath": ".status.training.progress"},
        {"name": "Track", "type": "string", "jsonPath": ".spec.track", "priority": 1},
        {"name": "Framework", "type": "string", "jsonPath": ".status.framework", "priority": 1},
        {"name": "Verified", "type": "boolean", "jsonPath": ".status.verified", "priority": 1},
        AGE_COLUMN,
    ),
)

MODEL_DEPLOYMENT = ResourceKind(
    kind="ModelDeployment",
    plural="modeldeployments",
    short_names=("mdep",),
    spec_model=ModelDeploymentSpec,
    status_model=ModelDeploymentStatus,
    description="Serves a ranked submission as a KServe InferenceService, swapping models through canary traffic.",
    printer_columns=(
        {"name": "Playground", "type": "string", "jsonPath": ".spec.playground"},
        {"name": "Stable", "type": "string", "jsonPath": ".status.stable.submission"},
        {"name": "Canary", "type": "string", "jsonPath": ".status.canary.submission"},
        {"name": "Canary%", "type": "integer", "jsonPath": ".status.canaryPercent"},
        {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
        {"name": "URL", "type": "string", "jsonPath": ".status.url", "priority": 1},
        AGE_COLUMN,
    ),
)

ALL_KINDS: tuple[ResourceKind, ...] = (PLAYGROUND, SUBMISSION, MODEL_DEPLOYMENT)
