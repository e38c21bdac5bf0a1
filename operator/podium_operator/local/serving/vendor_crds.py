"""KServe's CRDs, vendored compact: ``python -m podium_operator.local.serving.vendor_crds FIXTURE_DIR`` rewrites them.

Stored as JSON (also valid YAML), without schema ``description`` texts: JSON loads in milliseconds where the
2 MB YAML fixture takes seconds, at every cluster start.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml

CRD_DIR = Path(__file__).with_name("crds")
NAMES = ("serving.kserve.io_inferenceservices", "serving.kserve.io_servingruntimes",
         "serving.kserve.io_clusterservingruntimes")


def strip_descriptions(node: Any) -> Any:
    """``node`` without schema ``description`` strings (a property named ``description`` is a mapping: kept)."""
    if isinstance(node, dict):
        return {k: strip_descriptions(v) for k, v in node.items() if not (k == "description" and isinstance(v, str))}
    if isinstance(node, list):
        return [strip_descriptions(v) for v in node]
    return node


def kserve_crds(directory: Path = CRD_DIR) -> list[dict[str, Any]]:
    """The vendored CRD objects (InferenceService, ServingRuntime, ClusterServingRuntime)."""
    return [json.loads((directory / f"{name}.json").read_text()) for name in NAMES]


def vendor(source: Path, target: Path = CRD_DIR) -> list[Path]:
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for name in NAMES:
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        document = yaml.load((source / f"{name}.yaml").read_text(), Loader=loader)
        path = target / f"{name}.json"
        path.write_text(json.dumps(strip_descriptions(document), separators=(",", ":")) + "\n")
        written.append(path)
    return written


if __name__ == "__main__":
    for written in vendor(Path(sys.argv[1])):
        print(written, written.stat().st_size)
