"""Leaderboards (pure): rank evaluated submissions by the playground's primary metric."""

from __future__ import annotations

from typing import Any

from podium.api.playground import PlaygroundSpec
from podium.evaluation.wire import finite_metrics

# Metadata keys worth a leaderboard column; the full metadata stays on the Submission.
KEY_METADATA = ("model_type", "estimator_type", "n_layers", "n_params", "n_trainable_params", "opset", "model_size_bytes")


def leaderboard_rows(
    submissions: list[dict[str, Any]],
    playground: PlaygroundSpec,
    *,
    private_scores: dict[str, dict[str, float]] | None = None,
    limit: int | None = None,
) -> list[dict[str, Any]]:
    """Rows for the public board, or for the private one when ``private_scores`` (by submission) is given.

    Ties go to the earlier version, so resubmitting an identical model never overtakes the original.
    """
    metric = playground.primary_metric
    sign = -1.0 if playground.direction == "maximize" else 1.0
    candidates = []
    for item in submissions:
        status = item.get("status") or {}
        name = item["metadata"]["name"]
        if status.get("phase") != "Evaluated" or status.get("version") is None:
            continue
        if private_scores is not None:
            if item["spec"].get("track") != "competition" or name not in private_scores:
                continue
            metrics = finite_metrics(private_scores[name])
        else:
            metrics = finite_metrics(status.get("metrics"))
        score = metrics.get(metric)
        if score is None:
            continue
        candidates.append((sign * score, status["version"], item, metrics, score))
    candidates.sort(key=lambda entry: (entry[0], entry[1]))
    rows = []
    for rank, (_, version, item, metrics, score) in enumerate(candidates[: limit or len(candidates)], start=1):
        status = item["status"]
        metadata = status.get("metadata") or {}
        rows.append(
            {
                "rank": rank,
                "version": version,
                "submission": item["metadata"]["name"],
                "submitter": status.get("submitter") or "",
                "track": item["spec"].get("track", "experiment"),
                "score": score,
                "metrics": metrics,
                "metadata": {k: metadata[k] for k in KEY_METADATA if k in metadata},
                "framework": status.get("framework") or "",
                "verified": bool(status.get("verified")),
                "submittedAt": (status.get("timings") or {}).get("submittedAt"),
                "evaluatedAt": (status.get("timings") or {}).get("evaluatedAt"),
            }
        )
    return [{k: v for k, v in row.items() if v is not None} for row in rows]
