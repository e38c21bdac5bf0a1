"""The fields of builtin kinds, for ``fieldValidation`` on builtins (pure, but for a cached class lookup).

kmock knows the builtins' names, not their types; the official client's generated models do (each
has ``attribute_map``, its JSON names, and ``openapi_types``, their types), for a Kubernetes newer than
the one the emulator reports. So ``stringdata`` in a Secret or ``imagee`` in a container is found, refused
under Strict and dropped otherwise, as a real server's strict decoding does. Fields typed ``object`` (any
JSON: RawExtension, int-or-string, a schema's ``default``) are taken as they are.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Any

import kubernetes.client

_LIST = re.compile(r"^[Ll]ist\[(?P<item>.+)\]$")
_DICT = re.compile(r"^(?:Dict\[str, (?P<new>.+)\]|dict\(str, (?P<old>.+)\))$")


@functools.cache
def model(group: str | None, version: str | None, kind: str | None) -> type | None:
    """The client's model of a builtin kind (``CoreV1Event`` before ``V1Event``), or None if it has none."""
    if not version or not kind:
        return None
    versioned = version[:1].upper() + version[1:]
    prefix = (group or "core").split(".")[0].capitalize()
    for name in (f"{prefix}{versioned}{kind}", f"{versioned}{kind}"):
        found = getattr(kubernetes.client, name, None)
        if isinstance(found, type) and hasattr(found, "attribute_map"):
            return found
    return None


def prune(value: Any, cls: type) -> tuple[Any, list[str]]:
    """``value`` without the fields ``cls`` does not have; also their paths (``spec.containers[0].imagee``)."""
    dropped: list[str] = []
    return _prune(value, cls.__name__, "", dropped), dropped


def _prune(value: Any, type_name: str, path: str, dropped: list[str]) -> Any:
    if (listed := _LIST.match(type_name)) and isinstance(value, list):
        return [_prune(item, listed["item"], f"{path}[{index}]", dropped) for index, item in enumerate(value)]
    if (mapped := _DICT.match(type_name)) and isinstance(value, Mapping):
        item_type = mapped["new"] or mapped["old"]
        return {key: _prune(item, item_type, f"{path}[{key}]", dropped) for key, item in value.items()}
    cls = getattr(kubernetes.client, type_name, None)
    if not isinstance(value, Mapping) or not isinstance(cls, type) or not hasattr(cls, "attribute_map"):
        return value  # a scalar, `object` (any JSON) or a type this walk does not know: as it is
    types: dict[str, str] = vars(cls).get("openapi_types", {})  # python name → type; attribute_map: → JSON name
    fields = {cls.attribute_map[name]: kind for name, kind in types.items()}
    result = {}
    for key, item in value.items():
        where = f"{path}.{key}" if path else str(key)
        if key in fields:
            result[key] = _prune(item, fields[key], where, dropped)
        else:
            dropped.append(where)
    return result
