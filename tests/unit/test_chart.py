"""The Helm chart renders to valid Kubernetes objects.

The templates deliberately use plain value references only, so this small renderer is exact
for them; a template using control flow fails here rather than going untested.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

CHART = Path(__file__).resolve().parents[2] / "charts/podium"
REFERENCE = re.compile(r"\{\{\s*\.(Values|Release|Chart)\.([A-Za-z0-9_.]+)\s*\}\}")


def render(template: str, values: dict[str, Any], namespace: str = "podium-system") -> str:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    scopes = {"Values": values, "Release": {"Namespace": namespace, "Name": "podium"},
              "Chart": {"AppVersion": chart["appVersion"], "Version": chart["version"]}}

    def substitute(match: re.Match[str]) -> str:
        value: Any = scopes[match.group(1)]
        for key in match.group(2).split("."):
            value = value[key]
        return str(value)

    rendered = REFERENCE.sub(substitute, template)
    assert "{{" not in rendered, "templates may only use plain value references"
    return rendered


TEMPLATES = sorted((CHART / "templates").glob("*.yaml"))


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: p.name)
def test_template_renders_to_valid_objects(template):
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    documents = [d for d in yaml.safe_load_all(render(template.read_text(), values)) if d]
    assert documents
    for document in documents:
        kubernetes_validate.validate(document, "1.31", strict=True)


def test_operator_deployment_is_single_replica_recreate():
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    deployment = yaml.safe_load(render((CHART / "templates/deployment.yaml").read_text(), values))
    assert deployment["spec"]["replicas"] == 1 and deployment["spec"]["strategy"]["type"] == "Recreate"
