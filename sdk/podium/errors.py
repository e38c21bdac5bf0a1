"""Errors a user can act on: each names what is wrong and how to fix it.

``PodiumError`` subclasses ``ValueError`` so callers that already catch bad input keep working.
The string form is what ends up in a pod's termination message, so it must stand on its own:
``"<field>: <problem>. Fix: <hint>"``.
"""

from __future__ import annotations


class PodiumError(ValueError):
    """A problem with user-supplied input, with the field at fault and a hint to fix it."""

    def __init__(self, problem: str, *, field: str | None = None, hint: str | None = None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.field = field
        self.hint = hint

    def __str__(self) -> str:
        text = f"{self.field}: {self.problem}" if self.field else self.problem
        if self.hint:
            text = f"{text.rstrip('.')}. Fix: {self.hint}"
        return text

    def __reduce__(self):  # keep field/hint when pickled across processes
        return (_rebuild, (type(self), self.problem, self.field, self.hint))


def _rebuild(cls: type[PodiumError], problem: str, field: str | None, hint: str | None) -> PodiumError:
    error = cls.__new__(cls)
    PodiumError.__init__(error, problem, field=field, hint=hint)
    return error


class InvalidPredictions(PodiumError):
    """Submitted predictions cannot be scored (wrong length, non-finite, unknown labels, bad probabilities)."""


class InvalidHoldout(PodiumError):
    """The holdout set (features, labels or split) is missing, empty or malformed."""


class ArtifactError(PodiumError):
    """A model artifact is missing, unreadable or does not match its declared framework."""


class StorageError(PodiumError):
    """An object-store or file URI cannot be read or written."""


class InvalidConfig(PodiumError):
    """A setting (metric name, task, fraction, seed, ...) is out of range or unknown."""


class NotFound(StorageError):
    """The file or object a URI names does not exist."""


class WaitTimeout(PodiumError, TimeoutError):
    """A call that waits for a state (Ready, Evaluated, a leaderboard) did not see it in time."""

    def __reduce__(self):  # an OSError underneath: built by its class, then given field and hint
        return (type(self), (self.problem,), {"field": self.field, "hint": self.hint})


# --- The cluster's answers -------------------------------------------------------------------------
# What the Kubernetes API refused, in one line with the fix (podium.kube makes them from ApiException,
# and keeps them ApiExceptions too, with the status code and the server's body).

class ClusterError(PodiumError):
    """The Kubernetes API refused a call, or could not be reached."""


class AlreadyExists(ClusterError):
    """409 AlreadyExists: a resource of that name is there already."""


class Conflict(ClusterError):
    """409 Conflict: the resource changed while this call ran."""


class InvalidResource(ClusterError):
    """400 or 422: the API server refused the resource as written (a name, a field)."""


class Unauthorized(ClusterError):
    """401: the cluster does not accept this client's credentials."""


class Forbidden(ClusterError):
    """403: the user may not do this here."""


class ResourceNotFound(ClusterError):
    """404: no such resource (or its kind is not installed)."""


class ClusterUnreachable(ClusterError):
    """No answer from the Kubernetes API (connection refused, timed out)."""
