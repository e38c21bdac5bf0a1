"""Render the Helm chart in tests, and check what its RBAC grants.

The templates deliberately use a small subset of Helm's template language (value references, string
literals, if/else, range, default, list: see tests/gotemplate.py), so this renderer is exact for them;
a template using more fails here rather than going untested.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from podium_operator.local.apiserver.access import ApiCall
from tests import gotemplate

CHART = Path(__file__).resolve().parents[1] / "charts/podium"


def render(template: str, values: dict[str, Any] | None = None, namespace: str = "podium-system") -> str:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    scopes = {"Values": values if values is not None else default_values(),
              "Release": {"Namespace": namespace, "Name": "podium"},
              "Chart": {"AppVersion": chart["appVersion"], "Version": chart["version"]}}

    return gotemplate.render(template, scopes)


def problems(document: dict[str, Any]) -> list[str]:
    """What the API server would refuse in ``document``: core kinds by kubernetes-validate (strict), KServe's
    by its real CRD schema (tests/kserve.py)."""
    import kubernetes_validate

    from tests import kserve

    if document["apiVersion"].startswith("serving.kserve.io/"):
        return kserve.problems(document, f"{document['kind'].lower()}s")
    try:
        kubernetes_validate.validate(document, "1.31", strict=True)
    except kubernetes_validate.ValidationError as error:
        return [str(error)]
    return []


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
