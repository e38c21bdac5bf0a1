"""The API server's error responses: ``v1 Status`` objects with the reasons clients check."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import kmock


def qualified(plural: str | None, group: str | None) -> str:
    """``widgets.example.podium.dev`` (or ``pods`` for the core group), as in error messages."""
    return f"{plural}.{group}" if group else str(plural)


def api_error(code: int, reason: str, message: str, **details: Any) -> kmock.KubernetesError:
    return kmock.KubernetesError(status=code, reason=reason, message=message, details=details)


def not_found(resource: kmock.resource, name: str) -> kmock.KubernetesError:
    what = qualified(resource.plural, resource.group)
    return api_error(404, "NotFound", f'{what} "{name}" not found',
                     name=name, group=resource.group, kind=resource.plural)


def resource_not_found() -> kmock.KubernetesError:
    return api_error(404, "NotFound", "the server could not find the requested resource")


def already_exists(resource: kmock.resource, name: str) -> kmock.KubernetesError:
    what = qualified(resource.plural, resource.group)
    return api_error(409, "AlreadyExists", f'{what} "{name}" already exists',
                     name=name, group=resource.group, kind=resource.plural)


def conflict(resource: kmock.resource, name: str) -> kmock.KubernetesError:
    what = qualified(resource.plural, resource.group)
    message = (f'Operation cannot be fulfilled on {what} "{name}": the object has been modified;'
               " please apply your changes to the latest version and try again")
    return api_error(409, "Conflict", message, name=name, group=resource.group, kind=resource.plural)


def invalid(kind: str, group: str | None, name: str, causes: list[tuple[str, str]]) -> kmock.KubernetesError:
    """422 Invalid with one cause per offending field, worded like the real server."""
    fields = ", ".join(f"{field}: {message}" for field, message in causes)
    what = f"{kind}.{group}" if group else kind
    return api_error(
        422, "Invalid", f'{what} "{name}" is invalid: {fields}',
        name=name, group=group, kind=kind,
        causes=[{"reason": "FieldValueInvalid", "field": field, "message": message} for field, message in causes],
    )


def unprocessable(message: str) -> kmock.KubernetesError:
    return api_error(422, "Invalid", message)


def bad_request(message: str) -> kmock.KubernetesError:
    return api_error(400, "BadRequest", message)


def forbidden(message: str) -> kmock.KubernetesError:
    return api_error(403, "Forbidden", message)


def method_not_allowed() -> kmock.KubernetesError:
    return api_error(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")


def unsupported_media_type(content_type: str) -> kmock.KubernetesError:
    return api_error(415, "UnsupportedMediaType", f"the body of the request was in an unknown format: {content_type}")


def status_body(error: kmock.KubernetesError) -> dict[str, Any]:
    """The JSON body of an error response."""
    details = error.details if isinstance(error.details, Mapping) else {}
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": error.message or "",
        "reason": error.reason or "",
        "details": {key: value for key, value in details.items() if value is not None},
        "code": error.status,
    }


def expired_event(since: int, oldest: int) -> dict[str, Any]:
    """The watch ERROR event for a resourceVersion older than the kept history (410 Gone)."""
    error = api_error(410, "Expired", f"too old resource version: {since} ({oldest})")
    return {"type": "ERROR", "object": status_body(error)}
