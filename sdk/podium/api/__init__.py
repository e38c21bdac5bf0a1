"""Podium's API: pydantic models for every custom resource (the one source of truth for the CRDs)."""

from podium.api.common import API_VERSION, GROUP, VERSION, Condition
from podium.api.deployment import ModelDeploymentSpec, ModelDeploymentStatus
from podium.api.playground import PlaygroundSpec, PlaygroundStatus
from podium.api.resources import ALL_KINDS, MODEL_DEPLOYMENT, PLAYGROUND, SUBMISSION, ResourceKind
from podium.api.submission import SubmissionSpec, SubmissionStatus

__all__ = [
    "ALL_KINDS",
    "API_VERSION",
    "GROUP",
    "MODEL_DEPLOYMENT",
    "PLAYGROUND",
    "SUBMISSION",
    "VERSION",
    "Condition",
    "ModelDeploymentSpec",
    "ModelDeploymentStatus",
    "PlaygroundSpec",
    "PlaygroundStatus",
    "ResourceKind",
    "SubmissionSpec",
    "SubmissionStatus",
]
