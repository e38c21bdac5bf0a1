"""Artifact-level errors (archive, manifest, preprocessor); model-file errors live in podium.frameworks.errors."""

from __future__ import annotations

from podium.errors import ArtifactError, PodiumError


class CorruptArchive(ArtifactError):
    """The .tar.gz cannot be read (truncated, not gzip/tar)."""


class UnsafeArchive(ArtifactError):
    """The archive would write outside its destination (absolute paths, '..', links, devices)."""


class ManifestError(ArtifactError):
    """manifest.json is missing fields, has the wrong schema version or does not match the files."""


class PreprocessorError(PodiumError):
    """The preprocessor cannot be saved, loaded, or raised while transforming features."""
