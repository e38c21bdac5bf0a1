"""`python -m podium_operator`: run the operator against the current kubeconfig or in-cluster config."""

from __future__ import annotations

import argparse
import asyncio
import logging

import kopf

from podium_operator.handlers import (
    enable_admission,
    enable_holdout_checks,
    enable_rollouts,
    enable_training_progress,
    registry,
)
from podium_operator.settings import OperatorConfig


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="podium-operator", description="Run the Podium operator.")
    parser.add_argument("--namespace", "-n", action="append", help="Watch these namespaces (default: all).")
    parser.add_argument("--liveness", default=None, help="Liveness endpoint, e.g. http://0.0.0.0:8080/healthz")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    config = OperatorConfig.from_env()  # the one read of the environment
    if config.webhook.enabled:
        enable_admission(registry)
    if config.holdout_check_seconds > 0:
        enable_holdout_checks(config.holdout_check_seconds, registry)
    enable_rollouts(config.rollout_tick_seconds, registry)
    enable_training_progress(config.training_progress_seconds, registry)
    asyncio.run(
        kopf.operator(
            registry=registry,
            memo=kopf.Memo(config=config),
            standalone=True,
            clusterwide=not args.namespace,
            namespaces=args.namespace or [],
            liveness_endpoint=args.liveness,
        )
    )


if __name__ == "__main__":
    main()
