"""Operator configuration from the environment (set by the Helm chart or `podium local up`)."""

from __future__ import annotations

import os
from dataclasses import dataclass

PREFIX = "podium.dev"
FINALIZER = f"{PREFIX}/finalizer"


@dataclass(frozen=True)
class OperatorConfig:
    namespace: str | None  # None watches all namespaces
    metrics_port: int
    evaluator_image: str

    @classmethod
    def from_env(cls) -> OperatorConfig:
        namespace = os.environ.get("PODIUM_NAMESPACE") or None
        return cls(
            namespace=namespace,
            metrics_port=int(os.environ.get("PODIUM_METRICS_PORT", "0")),
            evaluator_image=os.environ.get("PODIUM_EVALUATOR_IMAGE", "ghcr.io/podium-dev/evaluator:0.1.0"),
        )
