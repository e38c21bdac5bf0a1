"""Building blocks shared by every Podium resource: naming, conditions, resources."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

GROUP = "podium.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
CATEGORY = "podium"


def cel_rules(*rules: tuple[str, str, str]) -> dict[str, Any]:
    """CEL rules (rule, message, fieldPath) as ``json_schema_extra`` so they land in the CRD."""
    return {
        "x-kubernetes-validations": [
            {"rule": rule, "message": message, "fieldPath": field_path, "reason": "FieldValueInvalid"}
            for rule, message, field_path in rules
        ]
    }


PRESERVE_UNKNOWN: dict[str, Any] = {"x-kubernetes-preserve-unknown-fields": True}
# A map whose values are any JSON value (untyped in the CRD; the pydantic model says which are allowed).
UNTYPED_VALUES: dict[str, Any] = {"additionalProperties": {"x-kubernetes-preserve-unknown-fields": True,
                                                          "x-podium-untyped": True}}


class ApiModel(BaseModel):
    """camelCase on the wire, snake_case in Python, unknown fields rejected (a typo is an error)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    def to_wire(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


class Condition(ApiModel):
    """A standard Kubernetes condition (kstatus, Argo CD and Flux read these)."""

    type: str
    status: Literal["True", "False", "Unknown"]
    reason: str = Field(default="", description="CamelCase reason code.")
    message: str = Field(default="", description="Human-readable explanation.")
    last_transition_time: datetime | None = None
    observed_generation: int | None = None


class ComputeResources(ApiModel):
    """CPU and memory for a pod; limits equal requests, so an evaluation is reproducible."""

    cpu: str = Field(default="1", pattern=r"^[0-9]+(\.[0-9]+)?m?$", description="CPU, e.g. 500m or 2.")
    memory: str = Field(
        default="2Gi", pattern=r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|K|M|G|T)?$", description="Memory, e.g. 512Mi."
    )
    gpu: int = Field(default=0, ge=0, le=16, description="nvidia.com/gpu count; 0 runs on CPU.")
