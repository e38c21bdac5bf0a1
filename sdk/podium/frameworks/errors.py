"""Errors raised while saving, loading or running a model; each says what is wrong and how to fix it."""

from __future__ import annotations

from podium.errors import ArtifactError, PodiumError


class UnknownFramework(ArtifactError):
    """The model object or file belongs to no supported framework."""


class CorruptModel(ArtifactError):
    """A model file exists but cannot be read (truncated, wrong format, missing dependency)."""


class ModelOutputError(PodiumError):
    """The model ran but its output cannot be turned into predictions (wrong row count or shape)."""


class ModelInputError(PodiumError):
    """The features do not fit what the model was saved with (columns, width, dtype)."""


class ModelRuntimeError(PodiumError):
    """The model itself raised while predicting."""
