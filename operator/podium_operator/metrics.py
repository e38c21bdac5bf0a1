"""Prometheus metrics of the operator (served on its own port)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, start_http_server

SUBMISSIONS = Counter(
    "podium_submissions_total", "Submissions that reached a phase.", ["namespace", "playground", "phase"]
)
EVALUATION_SECONDS = Histogram(
    "podium_evaluation_duration_seconds",
    "From submission to scored (or failed).",
    ["namespace", "playground", "outcome"],
    buckets=(0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600),
)
RECONCILE_ERRORS = Counter("podium_reconcile_errors_total", "Reconcile attempts that raised.", ["kind"])
BEST_SCORE = Gauge("podium_leaderboard_best_score", "Top public score per playground.", ["namespace", "playground"])
ROLLOUT_ACTIONS = Counter(
    "podium_rollout_actions_total", "Rollout steps taken (Deployed, CanaryStarted, StepAdvanced, Promoted, RolledBack, ...).",
    ["namespace", "deployment", "action"],
)
ANALYSES = Counter("podium_rollout_analyses_total", "Canary analyses by verdict.", ["namespace", "deployment", "verdict"])
CANARY_PERCENT = Gauge("podium_deployment_canary_percent", "Traffic percent of the candidate (0: none or shadow).",
                       ["namespace", "deployment"])
QUEUE_DEPTH = Gauge("podium_evaluation_queue_depth", "Submissions accepted but not yet scored.")


def serve(port: int) -> int:
    """Start the exporter; port 0 picks a free one. Returns the bound port."""
    server, _ = start_http_server(port, addr="0.0.0.0")
    return int(server.server_address[1])
