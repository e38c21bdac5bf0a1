"""The chart's own ClusterRoles, as local mode's API server authorizes its users with them.

Local mode binds each user to one of the Helm chart's people roles (``podium-participant``,
``podium-playground-owner`` in ``charts/podium/templates/rbac.yaml``) rather than to a copy of them, so
what local mode allows is what a cluster with the chart installed allows. The templates use value references
(``{{ .Values.x }}``), none of them in a ClusterRole's rules, and control actions (``if``/``range``/``end``)
only on lines of their own, so reading the ClusterRoles needs no Helm: those lines are dropped and each
reference is replaced by a placeholder before the YAML is parsed (the release's namespace by
``podium-system``, local mode's). What the chart's templates bind to every authenticated user
(``system:authenticated``: reading ConfigMap ``podium-client``, where clients find the object store, in
``client-config.yaml``) local mode grants every user too.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from podium_operator.local.apiserver.access import ApiCall

# The checkout's chart (local mode runs from a checkout or an editable install).
CHART_TEMPLATES = Path(__file__).resolve().parents[4] / "charts/podium/templates"
CHART_RBAC = CHART_TEMPLATES / "rbac.yaml"
ROLES = {"participant": "podium-participant", "owner": "podium-playground-owner"}  # short names for the CLI
_REFERENCE = re.compile(r"\{\{(?:`[^`]*`|[^}])*\}\}")  # a raw string may hold braces: {{ `{{.Name}}` }}
_CONTROL = re.compile(r"^[ \t]*\{\{-?\s*(?:if|else|end|range|with)\b[^}]*\}\}[ \t]*$", re.MULTILINE)
_RELEASE_NAMESPACE = re.compile(r"\{\{\s*\.Release\.Namespace\s*\}\}")
RELEASE_NAMESPACE = "podium-system"
AUTHENTICATED = "system:authenticated"

Rule = Mapping[str, Any]

# What every authenticated user may do, as Kubernetes' system:basic-user role allows: ask who they are and
# what they may do. (Discovery, OpenAPI and health need no rule: they are no resource requests.)
BASIC_USER: tuple[Rule, ...] = (
    {"apiGroups": ["authentication.k8s.io"], "resources": ["selfsubjectreviews"], "verbs": ["create"]},
    {"apiGroups": ["authorization.k8s.io"], "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
     "verbs": ["create"]},
)


def chart_cluster_roles(path: Path = CHART_RBAC) -> dict[str, tuple[Rule, ...]]:
    """Every ClusterRole of the chart's RBAC template, by name."""
    return {doc["metadata"]["name"]: tuple(doc.get("rules") or ()) for doc in _documents(path)
            if doc.get("kind") == "ClusterRole"}


def chart_authenticated_rules(templates: Path = CHART_TEMPLATES) -> tuple[tuple[str | None, tuple[Rule, ...]], ...]:
    """What the chart's bindings grant every authenticated user: (namespace, or None cluster-wide; rules) pairs."""
    documents = [doc for path in sorted(templates.glob("*.yaml")) for doc in _documents(path)]
    roles = {(doc["kind"], doc["metadata"].get("namespace"), doc["metadata"]["name"]): tuple(doc.get("rules") or ())
             for doc in documents if doc.get("kind") in ("Role", "ClusterRole")}
    granted = []
    for doc in documents:
        if doc.get("kind") not in ("RoleBinding", "ClusterRoleBinding") or not any(
                subject.get("kind") == "Group" and subject.get("name") == AUTHENTICATED
                for subject in doc.get("subjects") or ()):
            continue
        namespace = doc["metadata"].get("namespace") if doc["kind"] == "RoleBinding" else None
        ref = doc["roleRef"]
        rules = roles.get((ref["kind"], namespace if ref["kind"] == "Role" else None, ref["name"]), ())
        granted.append((namespace, rules))
    return tuple(granted)


def _documents(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: local mode authorizes its users with the Helm chart's ClusterRoles; "
                                "run it from a checkout (or an editable install) that has charts/podium")
    text = _CONTROL.sub("", path.read_text())
    text = _REFERENCE.sub("placeholder", _RELEASE_NAMESPACE.sub(RELEASE_NAMESPACE, text))
    return [doc for doc in yaml.safe_load_all(text) if doc]


def role_name(role: str) -> str:
    """``participant`` → ``podium-participant``; a ClusterRole's own name is kept."""
    return ROLES.get(role, role)


def allows(rules: Iterable[Rule], call: ApiCall, name: str | None) -> bool:
    """Whether any rule grants ``call`` (on the object ``name``, for rules limited by ``resourceNames``)."""
    return any(_matches(rule.get("apiGroups") or (), call.group) and _matches(rule.get("resources") or (), call.resource)
               and _matches(rule.get("verbs") or (), call.verb)
               and (not rule.get("resourceNames") or name in rule["resourceNames"]) for rule in rules)


def _matches(values: Iterable[str], value: str) -> bool:
    return any(item in ("*", value) for item in values)
