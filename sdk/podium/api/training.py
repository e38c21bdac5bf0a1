"""Training submissions: the platform trains the model (meta-learning or Bayesian HPO), then evaluates it.

A training spec names one of Podium's own algorithms, so the Job that runs it is trusted code; what a
participant controls are the hyperparameters (validated here, with bounds) and the data it names
(fetched only through presigned URLs and read with limits). The produced artifact is evaluated by the
normal sandboxed pipeline.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, ValidationError, model_validator

from podium.api.common import PRESERVE_UNKNOWN, ApiModel, ComputeResources

Algorithm = Literal["maml", "fomaml", "reptile", "protonet", "tpe-search"]
META_ALGORITHMS: frozenset[str] = frozenset({"maml", "fomaml", "reptile", "protonet"})
MetaDataset = Literal["rotated-digits", "font-glyphs", "sinusoid"]
# P100-class nodes by default (GKE's accelerator label and the taint NVIDIA's device plugin docs use).
DEFAULT_GPU_NODE_SELECTOR: dict[str, str] = {"cloud.google.com/gke-accelerator": "nvidia-tesla-p100"}
DEFAULT_GPU_TOLERATIONS: list[dict[str, str]] = [{"key": "nvidia.com/gpu", "operator": "Exists",
                                                   "effect": "NoSchedule"}]


class Toleration(ApiModel):
    key: str | None = Field(default=None, max_length=253)
    operator: Literal["Exists", "Equal"] = "Equal"
    value: str | None = Field(default=None, max_length=63)
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None


class TrainingData(ApiModel):
    """Labelled training rows: features and labels tables (CSV, Parquet, .npy, .npz)."""

    features: str = Field(min_length=1, description="URI of the training features.")
    labels: str = Field(min_length=1, description="URI of the training labels.")


class TrainingResources(ComputeResources):
    """A training Job's pod: CPU and memory, and GPUs (unset: 1 for meta-learning where the cluster has a GPU pool)."""

    cpu: str = Field(default="2", pattern=r"^[0-9]+(\.[0-9]+)?m?$", description="CPU, e.g. 500m or 2.")
    memory: str = Field(default="4Gi", pattern=r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|K|M|G|T)?$",
                        description="Memory, e.g. 4Gi.")
    gpu: int | None = Field(default=None, ge=0, le=16,  # type: ignore[assignment]
                            description="nvidia.com/gpu count; 0 trains on CPU; unset: 1 for meta-learning "
                            "algorithms on a cluster with a GPU pool, else 0.")


class MetaHyperparameters(ApiModel):
    """MAML, first-order MAML, Reptile and prototypical networks (defaults: the Cloudera conv-4 set-up)."""

    meta_dataset: MetaDataset = Field(
        default="rotated-digits",
        description="Episodes are drawn from this built-in data set (its meta-train classes): rotated-digits "
        "(8x8, 64 feature columns), font-glyphs (28x28, 784 columns), sinusoid (regression, 1 column).")
    k_shot: int = Field(default=1, ge=1, le=50, description="Support examples per class in a training episode.")
    queries: int = Field(default=5, ge=1, le=50, description="Query examples per class in a training episode.")
    train_way: int | None = Field(default=None, ge=2, le=100, description="Classes per training episode "
                                  "(protonet only; others use the playground's number of classes).")
    inner_lr: float = Field(default=0.01, gt=0, le=10, allow_inf_nan=False)
    inner_steps: int = Field(default=5, ge=1, le=50)
    test_steps: int = Field(default=10, ge=0, le=500, description="Adaptation steps on the playground's support set.")
    outer_lr: float = Field(default=0.001, gt=0, le=1, allow_inf_nan=False)
    meta_batch: int = Field(default=25, ge=1, le=256, description="Tasks per outer update.")
    iterations: int = Field(default=2000, ge=1, le=500_000)
    hidden: int = Field(default=20, ge=4, le=256, description="Channels per conv layer (Cloudera: 20).")
    validate_every: int = Field(default=100, ge=1, le=100_000)
    validation_episodes: int = Field(default=50, ge=1, le=5000)
    checkpoint_every: int = Field(default=200, ge=1, le=100_000)
    seed: int = Field(default=0, ge=0, le=2**31 - 1)


class SearchHyperparameters(ApiModel):
    """Bayesian HPO with Optuna's TPE over a search space of scikit-learn (or Keras) models."""

    space: dict[str, Any] | None = Field(
        default=None, json_schema_extra=PRESERVE_UNKNOWN,
        description="The search space ({estimators: {name: {param: distribution}}}); unset: the default space.")
    trials: int = Field(default=30, ge=1, le=2000)
    sampler: Literal["tpe", "random"] = "tpe"
    cv: int = Field(default=3, ge=2, le=10, description="Cross-validation folds per trial.")
    seed: int = Field(default=0, ge=0, le=2**31 - 1)
    workers: int = Field(default=1, ge=1, le=16, description="Processes running trials at once in the Job, "
                         "sharing the study through Optuna's RDB storage (give resources.cpu to match).")

    @model_validator(mode="after")
    def _a_trial_per_worker(self) -> SearchHyperparameters:
        if self.workers > self.trials:
            raise ValueError(f"workers: {self.workers} workers for {self.trials} trials; give at most one per trial")
        return self


def hyperparameters_model(algorithm: str) -> type[MetaHyperparameters] | type[SearchHyperparameters]:
    return SearchHyperparameters if algorithm == "tpe-search" else MetaHyperparameters


class TrainingSpec(ApiModel):
    """The platform trains the model: meta-learning or Bayesian HPO, on a GPU pool when there is one."""

    algorithm: Algorithm = Field(description="maml, fomaml, reptile, protonet (few-shot) or tpe-search (HPO).")
    hyperparameters: dict[str, Any] = Field(
        default_factory=dict, json_schema_extra=PRESERVE_UNKNOWN,
        description="The algorithm's settings (see podium.api.training: MetaHyperparameters, SearchHyperparameters).")
    data: TrainingData | None = Field(default=None, description="Training data; unset: the playground's trainingData.")
    resources: TrainingResources = Field(default_factory=TrainingResources)
    timeout_seconds: int = Field(default=3600, ge=60, le=7 * 86400)
    node_selector: dict[str, str] | None = Field(
        default=None, max_length=16, description="Defaults to the GPU pool's selector (P100-class nodes).")
    tolerations: list[Toleration] | None = Field(default=None, max_length=16)

    @model_validator(mode="after")
    def _valid_hyperparameters(self) -> TrainingSpec:
        self.settings()
        return self

    def settings(self) -> MetaHyperparameters | SearchHyperparameters:
        """The hyperparameters, typed; a ValueError naming ``hyperparameters.<field>`` when they are not valid."""
        model = hyperparameters_model(self.algorithm)
        try:
            return model.model_validate(self.hyperparameters)
        except ValidationError as error:
            problem = error.errors()[0]
            where = ".".join(str(part) for part in problem.get("loc", ()))
            known = ", ".join(sorted(field.alias or name for name, field in model.model_fields.items()))
            raise ValueError(f"hyperparameters.{where}: {problem.get('msg')} (for {self.algorithm}: {known})") from None

    @property
    def meta_learning(self) -> bool:
        return self.algorithm in META_ALGORITHMS
