"""The submission artifact: ``manifest.json`` + ``model/`` + optional ``preprocessor/``, as a directory or .tar.gz."""

from __future__ import annotations

from podium.artifacts.archive import pack, unpack
from podium.artifacts.bundle import LoadedSubmission, content_hash, load_submission, save_submission
from podium.artifacts.errors import CorruptArchive, ManifestError, PreprocessorError, UnsafeArchive
from podium.artifacts.manifest import SCHEMA_VERSION, Manifest, OnnxInfo, Versions, read_manifest
from podium.artifacts.preprocessor import PreprocessorInfo, load_preprocessor, save_preprocessor
from podium.artifacts.schema import InputSchema

__all__ = [
    "SCHEMA_VERSION",
    "CorruptArchive",
    "InputSchema",
    "LoadedSubmission",
    "Manifest",
    "ManifestError",
    "OnnxInfo",
    "PreprocessorError",
    "PreprocessorInfo",
    "UnsafeArchive",
    "Versions",
    "content_hash",
    "load_preprocessor",
    "load_submission",
    "pack",
    "read_manifest",
    "save_preprocessor",
    "save_submission",
    "unpack",
]
