"""ModelDeployment: serve a ranked submission as a KServe InferenceService with canary rollouts."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, ConfigDict, Field, field_validator, model_validator

from podium.api.common import GROUP, ApiModel, ComputeResources, Condition, cel_rules

# Who last changed the spec, as the API server authenticated them (stamped by admission, like the submitter).
CHANGED_BY_ANNOTATION = f"{GROUP}/changed-by"

DeploymentPhase = Literal["Progressing", "Ready", "RollingBack", "Failed"]
RolloutAction = Literal[
    "Deployed", "ShadowStarted", "CanaryStarted", "StepAdvanced", "Promoted", "Replaced", "RolledBack", "Failed"
]


def _known(values: Any) -> Any:
    """Unknown values (None: no traffic, no samples) are left out; the API server stores numbers only."""
    return {k: v for k, v in values.items() if v is not None} if isinstance(values, dict) else values


# Metric values by name (errorRate, latencyRatio, requests, ...): only those that could be measured.
MetricValues = Annotated[dict[str, float], BeforeValidator(_known)]
ONE_TARGET = "exactly one of submission (a name) or version (a leaderboard version) must be set"


class RuntimeSpec(ApiModel):
    replicas: int = Field(default=1, ge=1, le=100, description="Predictor replicas of the stable model.")
    resources: ComputeResources = Field(default_factory=lambda: ComputeResources(cpu="1", memory="1Gi"))
    deployment_mode: Literal["Standard", "Knative"] = Field(
        default="Standard", description="KServe deployment mode, always set explicitly on the InferenceService."
    )
    protocol: Literal["v1", "v2"] = Field(default="v1", description="Inference protocol the predictor is declared with.")


class AnalysisThresholds(ApiModel):
    max_error_rate: float = Field(default=0.01, ge=0, le=1, description="Candidate error ratio above which it fails.")
    max_latency_ratio: float = Field(
        default=1.5, gt=0, description="Candidate p99 latency / stable p99 latency above which it fails."
    )
    latency_floor_seconds: float = Field(
        default=0.01, ge=0, le=60,
        description="Latencies below this are never judged slow: the ratio is taken to max(stable p99, floor), "
        "since at sub-millisecond latencies a cold process's first requests decide the p99.",
    )
    min_requests: int = Field(default=20, ge=0, description="Requests a step needs before it can be judged.")
    min_agreement: float | None = Field(
        default=None, ge=0, le=1,
        description="Share of mirrored requests the candidate must answer as the stable model did (shadow only).",
    )


class RolloutPolicy(ApiModel):
    model_config = ConfigDict(
        json_schema_extra=cel_rules(
            (
                "!has(self.steps) || self.steps.all(s, s >= 1 && s <= 100)",
                "steps: each canary step is a traffic percent between 1 and 100",
                ".steps",
            ),
            (
                "!has(self.steps) || size(self.steps) < 2 || self.steps.all(s, self.steps.exists_one(t, t == s))",
                "steps: must not repeat",
                ".steps",
            ),
        )
    )

    strategy: Literal["canary", "replace"] = Field(
        default="canary", description="canary: traffic steps gated by analysis; replace: swap at once."
    )
    steps: list[int] = Field(
        default_factory=lambda: [10, 50], max_length=20,
        description="Canary traffic percents, in order; promotion to 100 follows the last one.",
    )
    step_interval_seconds: int = Field(default=60, ge=1, le=86400, description="Time each step runs before analysis.")
    shadow_seconds: int = Field(
        default=0, ge=0, le=86400,
        description="Before the first step, the candidate gets only a mirrored copy of live traffic for this long "
        "and must pass the analysis (agreement included); 0 skips the shadow stage.",
    )
    analysis: AnalysisThresholds = Field(default_factory=AnalysisThresholds)
    auto_promote: bool = Field(default=True, description="Promote after the last step passes; else hold there.")
    auto_rollback: bool = Field(default=True, description="Roll back a step that fails; else hold it.")

    @field_validator("steps")
    @classmethod
    def _steps_in_range(cls, steps: list[int]) -> list[int]:
        if any(not 1 <= step <= 100 for step in steps):
            raise ValueError("steps: each canary step is a traffic percent between 1 and 100")
        if len(set(steps)) != len(steps):
            raise ValueError("steps: must not repeat")
        return steps


class WebApp(ApiModel):
    enabled: bool = False
    title: str | None = Field(default=None, max_length=200)


class TargetRef(ApiModel):
    """A submission of the deployment's playground, by name or by leaderboard version."""

    model_config = ConfigDict(json_schema_extra=cel_rules(("has(self.submission) != has(self.version)", ONE_TARGET,
                                                            ".submission")))

    submission: str | None = Field(default=None, min_length=1, max_length=253)
    version: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _one_target(self) -> TargetRef:
        if (self.submission is None) == (self.version is None):
            raise ValueError(ONE_TARGET)
        return self


class ModelDeploymentSpec(ApiModel):
    model_config = ConfigDict(
        json_schema_extra=cel_rules(
            ("has(self.submission) != has(self.version)", ONE_TARGET, ".submission"),
            ("self.playground == oldSelf.playground", "playground is immutable: create another ModelDeployment",
             ".playground"),
        )
    )

    playground: str = Field(min_length=1, max_length=253)
    submission: str | None = Field(default=None, min_length=1, max_length=253, description="Submission name to serve.")
    version: int | None = Field(default=None, ge=1, description="Leaderboard version to serve.")
    shadow: TargetRef | None = Field(
        default=None,
        description="A candidate that gets a mirrored copy of live traffic (its answers are compared, never returned).",
    )
    runtime: RuntimeSpec = Field(default_factory=RuntimeSpec)
    rollout: RolloutPolicy = Field(default_factory=RolloutPolicy)
    web_app: WebApp = Field(default_factory=WebApp)

    @model_validator(mode="after")
    def _one_target(self) -> ModelDeploymentSpec:
        if (self.submission is None) == (self.version is None):
            raise ValueError(ONE_TARGET)
        return self


class ServedModel(ApiModel):
    submission: str
    version: int | None = None
    storage_uri: str | None = None


class TrafficTarget(ApiModel):
    submission: str
    version: int | None = None
    role: Literal["stable", "canary", "shadow"] = "stable"
    percent: int = Field(ge=0, le=100)


class RolloutProgress(ApiModel):
    """Where the rollout of ``target`` is: the stage, the step (index into ``spec.rollout.steps``) and since when."""

    target: ServedModel
    stage: Literal["shadow", "canary"]
    step: int = Field(default=0, ge=0)
    percent: int = Field(default=0, ge=0, le=100)
    started_at: datetime
    step_started_at: datetime
    by: str = ""


class AnalysisReport(ApiModel):
    """The latest analysis of the candidate: the values read, the thresholds' verdict, where they came from."""

    time: datetime
    source: Literal["prometheus", "direct"]
    stage: Literal["shadow", "canary"]
    percent: int = 0
    values: MetricValues = Field(default_factory=dict)
    verdict: Literal["Passed", "Failed", "Inconclusive"]
    reasons: list[str] = Field(default_factory=list)
    message: str = ""


class ShadowStatus(ApiModel):
    """The standalone shadow candidate (``spec.shadow``) compared with the stable model."""

    submission: str
    version: int | None = None
    values: MetricValues = Field(default_factory=dict)
    updated_at: datetime | None = None
    message: str = ""


class RolloutEvent(ApiModel):
    time: datetime
    action: RolloutAction
    submission: str
    version: int | None = None
    previous: str | None = Field(default=None, description="The submission served before this change.")
    by: str = Field(default="", description="Who asked for the change (the manager of the last spec edit).")
    percent: int | None = None
    reason: str = ""
    values: MetricValues = Field(default_factory=dict, description="The metric values that decided.")


class RejectedTarget(ApiModel):
    """A target that was rolled back or refused; it is not retried until the spec names another one."""

    submission: str
    version: int | None = None
    reason: str
    message: str = ""


class ModelDeploymentStatus(ApiModel):
    observed_generation: int | None = None
    conditions: list[Condition] = Field(default_factory=list)
    phase: DeploymentPhase | None = None
    stable: ServedModel | None = None
    canary: ServedModel | None = None
    canary_percent: int | None = None
    traffic: list[TrafficTarget] = Field(default_factory=list)
    url: str | None = None
    inference_service: str | None = None
    rollout: RolloutProgress | None = None
    analysis: AnalysisReport | None = None
    shadow: ShadowStatus | None = None
    rejected: RejectedTarget | None = None
    history: list[RolloutEvent] = Field(default_factory=list, max_length=50)
    message: str | None = None
