"""Render the Helm chart in tests, and check what its RBAC grants.

The templates deliberately use plain value references only, so this small renderer is exact
for them; a template using control flow fails here rather than going untested.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from podium_operator.local.apiserver.access import ApiCall

CHART = Path(__file__).resolve().parents[1] / "charts/podium"
REFERENCE = re.compile(r"\{\{\s*\.(Values|Release|Chart)\.([A-Za-z0-9_.]+)\s*\}\}")


def render(template: str, values: dict[str, Any] | None = None, namespace: str = "podium-system") -> str:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    scopes = {"Values": values if values is not None else default_values(),
              "Release": {"Namespace": namespace, "Name": "podium"},
              "Chart": {"AppVersion": chart["appVersion"], "Version": chart["version"]}}

    def substitute(match: re.Match[str]) -> str:
        value: Any = scopes[match.group(1)]
        for key in match.group(2).split("."):
            value = value[key]
        return str(value)

    rendered = REFERENCE.sub(substitute, template)
    assert "{{" not in rendered, "templates may only use plain value references"
    return rendered


def default_values() -> dict[str, Any]:
    values: dict[str, Any] = yaml.safe_load((CHART / "values.yaml").read_text())
    return values


def rendered_documents(template_name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(render((CHART / "templates" / template_name).read_text())) if d]


def not_granted(calls: Iterable[ApiCall], role_name: str = "podium-operator") -> list[ApiCall]:
    """The calls the chart's ClusterRole ``role_name`` does not allow."""
    (role,) = [d for d in rendered_documents("rbac.yaml") if d["kind"] == "ClusterRole"
               and d["metadata"]["name"] == role_name]

    def allowed(call: ApiCall) -> bool:
        return any(call.group in rule.get("apiGroups", []) and call.resource in rule.get("resources", [])
                   and call.verb in rule.get("verbs", []) for rule in role["rules"])

    return sorted(call for call in set(calls) if not allowed(call))
