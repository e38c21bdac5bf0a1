"""Leaderboards (pure): rank evaluated submissions by the playground's primary metric."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from podium.api.playground import PlaygroundSpec
from podium.evaluation.wire import finite_metrics
from podium_operator.reconcile.records import SubmissionRecord

# Metadata keys worth a leaderboard column; the full metadata stays on the Submission.
KEY_METADATA = ("model_type", "estimator_type", "n_layers", "n_params", "n_trainable_params", "opset", "model_size_bytes")


def leaderboard_rows(
    records: Iterable[SubmissionRecord],
    playground: PlaygroundSpec,
    *,
    private_scores: dict[str, dict[str, float]] | None = None,
    limit: int | None = None,
) -> list[dict[str, Any]]:
    """Rows for the public board, or for the private one when ``private_scores`` (by Submission uid) is given.

    Ranked from the operator's records only (never from a status someone could write). Ties go to the
    earlier version, so resubmitting an identical model never overtakes the original.
    """
    metric = playground.primary_metric
    sign = -1.0 if playground.direction == "maximize" else 1.0
    candidates = []
    for record in records:
        if record.phase != "Evaluated" or record.version is None:
            continue
        if private_scores is not None:
            if record.track != "competition" or record.uid not in private_scores:
                continue
            metrics = finite_metrics(private_scores[record.uid])
        else:
            metrics = finite_metrics(record.metrics)
        score = metrics.get(metric)
        if score is None:
            continue
        candidates.append((sign * score, record.version, record, metrics, score))
    candidates.sort(key=lambda entry: (entry[0], entry[1]))
    rows = []
    for rank, (_, version, record, metrics, score) in enumerate(candidates[: limit or len(candidates)], start=1):
        rows.append(
            {
                "rank": rank,
                "version": version,
                "submission": record.submission,
                "submitter": record.submitter,
                "track": record.track,
                "score": score,
                "metrics": metrics,
                "metadata": {k: record.metadata[k] for k in KEY_METADATA if k in record.metadata},
                "customMetadata": dict(record.custom_metadata) or None,
                "framework": record.framework or "",
                "verified": record.verified,
                "submittedAt": record.submitted_at,
                "evaluatedAt": record.evaluated_at,
            }
        )
    return [{k: v for k, v in row.items() if v is not None} for row in rows]
