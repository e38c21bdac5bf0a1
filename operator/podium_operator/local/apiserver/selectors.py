"""Label and field selectors as the Kubernetes API server understands them (pure functions).

Label selectors: ``a=b``, ``a==b``, ``a!=b``, ``a in (x,y)``, ``a notin (x,y)``, ``a``, ``!a``.
Field selectors: ``path=value``, ``path==value``, ``path!=value`` on any dotted path
(a real server allows only a few paths per resource; we are more lenient).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


class SelectorError(ValueError):
    """The selector's syntax is invalid (the API answers 400 BadRequest)."""


@dataclass(frozen=True)
class Requirement:
    key: str
    operator: str  # one of: "=", "!=", "in", "notin", "exists", "!"
    values: frozenset[str] = frozenset()


_SET_TERM = re.compile(r"^(?P<key>[^\s!=(),]+)\s+(?P<op>in|notin)\s*\((?P<values>[^()]*)\)$")
_EQ_TERM = re.compile(r"^(?P<key>[^\s!=(),]+)\s*(?P<op>==|=|!=)\s*(?P<value>[^\s!=(),]*)$")
_KEY = re.compile(r"^[^\s!=(),]+$")


def parse_label_selector(text: str) -> list[Requirement]:
    """Parse a ``labelSelector`` query parameter into requirements (all must hold)."""
    return [_parse_label_term(term.strip()) for term in _split_terms(text) if term.strip()]


def parse_field_selector(text: str) -> list[Requirement]:
    """Parse a ``fieldSelector`` query parameter (equality operators only)."""
    requirements = parse_label_selector(text)
    for requirement in requirements:
        if requirement.operator not in {"=", "!="}:
            raise SelectorError(f"invalid field selector: {text!r}")
    return requirements


def match_labels(requirements: Sequence[Requirement], labels: Mapping[str, str]) -> bool:
    return all(_matches(requirement, labels.get(requirement.key)) for requirement in requirements)


def match_fields(requirements: Sequence[Requirement], obj: Mapping[str, Any]) -> bool:
    return all(_matches(req, _field_value(obj, req.key)) for req in requirements)


def _split_terms(text: str) -> list[str]:
    # Commas separate terms, except inside the parentheses of `in (a,b)`.
    terms: list[str] = []
    depth, start = 0, 0
    for index, char in enumerate(text):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            terms.append(text[start:index])
            start = index + 1
    terms.append(text[start:])
    return terms


def _parse_label_term(term: str) -> Requirement:
    if match := _SET_TERM.match(term):
        values = frozenset(v.strip() for v in match["values"].split(",") if v.strip())
        return Requirement(match["key"], match["op"], values)
    if match := _EQ_TERM.match(term):
        operator = "!=" if match["op"] == "!=" else "="
        return Requirement(match["key"], operator, frozenset({match["value"]}))
    if term.startswith("!") and _KEY.match(term[1:].strip()):
        return Requirement(term[1:].strip(), "!")
    if _KEY.match(term):
        return Requirement(term, "exists")
    raise SelectorError(f"unable to parse requirement: {term!r}")


def _matches(requirement: Requirement, value: str | None) -> bool:
    match requirement.operator:
        case "=" | "in":
            return value is not None and value in requirement.values
        case "!=" | "notin":
            return value is None or value not in requirement.values
        case "exists":
            return value is not None
        case _:  # "!"
            return value is None


def _field_value(obj: Mapping[str, Any], path: str) -> str | None:
    value: Any = obj
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return _field_text(value)


def _field_text(value: Any) -> str:
    # Field selectors compare Go-formatted strings: booleans are lower-case.
    return str(value).lower() if isinstance(value, bool) else str(value)
