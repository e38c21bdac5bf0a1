"""Names, directions and requirements of the built-in metrics.

A leaderboard sorts by a metric it knows only by name, so the direction lives here, next to the name,
rather than in whoever happens to rank the entries.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Task = Literal["classification", "regression"]
Direction = Literal["maximize", "minimize"]


@dataclass(frozen=True)
class MetricInfo:
    name: str
    direction: Direction
    task: Task
    needs_proba: bool = False
    description: str = ""

    def better(self, a: float, b: float) -> bool:
        """True when score ``a`` beats score ``b`` under this metric's direction."""
        return a > b if self.direction == "maximize" else a < b


_ALL = (
    MetricInfo("accuracy", "maximize", "classification", description="share of rows predicted right"),
    MetricInfo("balanced_accuracy", "maximize", "classification", description="mean recall over true classes"),
    MetricInfo("precision_macro", "maximize", "classification", description="unweighted mean precision"),
    MetricInfo("recall_macro", "maximize", "classification", description="unweighted mean recall"),
    MetricInfo("f1_macro", "maximize", "classification", description="unweighted mean F1"),
    MetricInfo("precision_weighted", "maximize", "classification", description="support-weighted precision"),
    MetricInfo("recall_weighted", "maximize", "classification", description="support-weighted recall"),
    MetricInfo("f1_weighted", "maximize", "classification", description="support-weighted F1"),
    MetricInfo("roc_auc", "maximize", "classification", needs_proba=True,
               description="ROC AUC (binary, or one-vs-rest macro average)"),
    MetricInfo("log_loss", "minimize", "classification", needs_proba=True, description="cross-entropy"),
    MetricInfo("mse", "minimize", "regression", description="mean squared error"),
    MetricInfo("rmse", "minimize", "regression", description="root mean squared error"),
    MetricInfo("mae", "minimize", "regression", description="mean absolute error"),
    MetricInfo("r2", "maximize", "regression", description="coefficient of determination"),
    MetricInfo("mape", "minimize", "regression", description="mean absolute percentage error (as a fraction)"),
)

METRICS: dict[str, MetricInfo] = {info.name: info for info in _ALL}


def metric_names(task: Task, *, with_proba: bool = True) -> list[str]:
    """The metrics computed for ``task``, in registry order."""
    return [m.name for m in _ALL if m.task == task and (with_proba or not m.needs_proba)]
