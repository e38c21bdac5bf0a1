"""ModelDeployment: serve a ranked submission as a KServe InferenceService with canary rollouts."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from podium.api.common import ApiModel, ComputeResources, Condition, cel_rules

DeploymentPhase = Literal["Progressing", "Ready", "RollingBack", "Failed"]


class RuntimeSpec(ApiModel):
    replicas: int = Field(default=1, ge=0, le=100)
    resources: ComputeResources = Field(default_factory=lambda: ComputeResources(cpu="1", memory="1Gi"))
    deployment_mode: Literal["Standard", "Knative"] = Field(
        default="Standard", description="KServe deployment mode, always set explicitly on the InferenceService."
    )
    protocol: Literal["v1", "v2"] = "v1"


class AnalysisThresholds(ApiModel):
    max_error_rate: float = Field(default=0.01, ge=0, le=1, description="Canary 5xx ratio above which it fails.")
    max_latency_ratio: float = Field(default=1.5, gt=0, description="Canary p95 latency / stable p95 latency.")
    min_requests: int = Field(default=20, ge=0, description="Requests a step needs before it can be judged.")


class RolloutPolicy(ApiModel):
    model_config = ConfigDict(
        json_schema_extra=cel_rules(
            (
                "self.steps.all(s, s >= 1 && s <= 100)",
                "steps: each canary step is a traffic percent between 1 and 100",
                ".steps",
            ),
            (
                "size(self.steps) < 2 || self.steps.all(s, self.steps.exists_one(t, t == s))",
                "steps: must not repeat",
                ".steps",
            ),
        )
    )

    strategy: Literal["canary", "replace"] = "canary"
    steps: list[int] = Field(default_factory=lambda: [10, 50], max_length=20, description="Canary traffic percents.")
    step_interval_seconds: int = Field(default=60, ge=1, le=86400)
    analysis: AnalysisThresholds = Field(default_factory=AnalysisThresholds)
    auto_promote: bool = True
    auto_rollback: bool = True

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


class ModelDeploymentSpec(ApiModel):
    model_config = ConfigDict(
        json_schema_extra=cel_rules(
            (
                "has(self.submission) != has(self.version)",
                "exactly one of submission (a name) or version (a leaderboard version) must be set",
                ".submission",
            ),
        )
    )

    playground: str = Field(min_length=1, max_length=253)
    submission: str | None = Field(default=None, description="Submission name to serve.")
    version: int | None = Field(default=None, ge=1, description="Leaderboard version to serve.")
    runtime: RuntimeSpec = Field(default_factory=RuntimeSpec)
    rollout: RolloutPolicy = Field(default_factory=RolloutPolicy)
    web_app: WebApp = Field(default_factory=WebApp)

    @model_validator(mode="after")
    def _one_target(self) -> ModelDeploymentSpec:
        if (self.submission is None) == (self.version is None):
            raise ValueError("exactly one of submission (a name) or version (a leaderboard version) must be set")
        return self


class ServedModel(ApiModel):
    submission: str
    version: int | None = None


class TrafficTarget(ApiModel):
    submission: str
    version: int | None = None
    percent: int = Field(ge=0, le=100)


class RolloutEvent(ApiModel):
    time: datetime
    action: Literal["Deployed", "CanaryStarted", "StepAdvanced", "Promoted", "RolledBack", "Failed"]
    submission: str
    version: int | None = None
    reason: str = ""


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
    history: list[RolloutEvent] = Field(default_factory=list, max_length=50)
    message: str | None = None
