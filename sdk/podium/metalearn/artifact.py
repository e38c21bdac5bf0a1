"""Meta-learned models as Podium artifacts: a task-adapted module, and the learned initialisation.

``adapted_module`` freezes one task's adaptation (fast weights, or ProtoNets' prototypes) into a plain
``nn.Module`` over flat float32 rows, so ``podium.artifacts.save_submission`` captures it with
``torch.export`` (every tensor a buffer, no Python containers in ``forward``). Batch norm uses the
support set's statistics by default: each row's prediction then does not depend on the rest of the
batch it is served in (``batch_norm="batch"`` keeps MAML's transductive per-batch statistics).
"""

from __future__ import annotations

import copy
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor, nn

from podium.metalearn import functional as fn
from podium.metalearn.algorithms import MetaConfig, MetaLearner
from podium.metalearn.nets import Conv4, build

INIT_JSON, INIT_WEIGHTS, FORMAT = "metalearn.json", "init.pt", 1


class AdaptedClassifier(nn.Module):
    """[B, C*H*W] float32 → class scores [B, n_way] (logits, or ProtoNets' negative squared distances)."""

    def __init__(self, net: Conv4, stats: list[tuple[Tensor, Tensor]] | None, prototypes: Tensor | None) -> None:
        super().__init__()
        self.net = net
        self.shape = (net.in_channels, net.image_size, net.image_size)
        self.n_stats = 0 if stats is None else len(stats)
        for i, (mean, var) in enumerate(stats or []):
            self.register_buffer(f"mean{i}", mean.detach().clone())
            self.register_buffer(f"var{i}", var.detach().clone())
        self.protonet = prototypes is not None
        if prototypes is not None:
            self.register_buffer("prototypes", prototypes.detach().clone())

    def forward(self, x: Tensor) -> Tensor:
        x = x.reshape(-1, *self.shape)
        stats = [(getattr(self, f"mean{i}"), getattr(self, f"var{i}")) for i in range(self.n_stats)]
        if self.protonet:
            prototypes: Tensor = self.prototypes  # type: ignore[assignment]  # a registered buffer
            return fn.proto_logits(self.net(x, stats or None, embed=True), prototypes)
        return self.net(x, stats or None)


class AdaptedRegressor(nn.Module):
    """[B, 1] float32 → regression output [B]."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x.reshape(-1, 1)).reshape(-1)


def adapted_module(
    learner: MetaLearner,
    support_x: Any,
    support_y: Any,
    *,
    steps: int | None = None,
    batch_norm: Literal["support", "batch"] = "support",
) -> nn.Module:
    """A CPU module that predicts for the task given by the support set, in eval mode, no grads."""
    net = learner.net
    xs = torch.as_tensor(np.asarray(support_x, dtype=np.float32) if not isinstance(support_x, Tensor) else support_x)
    ys = torch.as_tensor(support_y if isinstance(support_y, Tensor) else np.asarray(support_y))
    if isinstance(net, Conv4):
        shape = (net.in_channels, net.image_size, net.image_size)
        if xs.shape[1:] != shape and xs[0].numel() == int(np.prod(shape)):
            xs = xs.reshape(-1, *shape)  # flat rows, as a Playground holds them
        if xs.shape[1:] != shape:
            raise ValueError(f"support_x: expected [K, {shape[0] * shape[1] * shape[2]}] or [K, *{shape}], got {tuple(xs.shape)}")
        ys = ys.long()
    else:
        xs, ys = xs.reshape(-1, 1).float(), ys.reshape(-1, 1).float()
    if len(xs) != len(ys):
        raise ValueError(f"support_y: {len(ys)} labels for {len(xs)} support rows")
    adapted = learner.adapt(xs, ys, steps)
    live = copy.deepcopy(net).cpu().eval()
    if learner.config.algorithm != "protonet":
        live.load_state_dict({k: v.cpu() for k, v in adapted.items()})
    live.requires_grad_(False)
    if not isinstance(live, Conv4):
        return AdaptedRegressor(live).eval()
    with torch.no_grad():
        stats = live.statistics(xs.cpu().float()) if batch_norm == "support" else None
    prototypes = None
    if learner.config.algorithm == "protonet":
        with torch.no_grad():  # prototypes under the same statistics the served module will use
            prototypes = fn.prototypes(live(xs.cpu().float(), stats, embed=True), ys.cpu(), learner.n_way(ys))
    return AdaptedClassifier(live, stats, prototypes).eval()


def save_initialisation(learner: MetaLearner, path: str | Path) -> Path:
    """Write ``metalearn.json`` (net, config, loss) and ``init.pt`` (weights) into directory ``path``."""
    root = Path(path)
    root.mkdir(parents=True, exist_ok=True)
    init_kwargs = getattr(learner.net, "init_kwargs", None)
    if init_kwargs is None:
        raise ValueError("learner.net: only podium.metalearn.nets networks can be saved as an initialisation")
    meta = {
        "format": FORMAT,
        "net": type(learner.net).__name__,
        "net_kwargs": init_kwargs(),
        "loss": learner.loss_kind,
        "config": asdict(learner.config),
        "iteration": learner.iteration,
    }
    (root / INIT_JSON).write_text(json.dumps(meta, indent=2, sort_keys=True))
    torch.save({k: v.detach().cpu() for k, v in learner.net.state_dict().items()}, root / INIT_WEIGHTS)
    return root


def load_initialisation(path: str | Path, device: str | torch.device = "cpu") -> MetaLearner:
    """The learner saved by :func:`save_initialisation`, ready to ``adapt`` to a new task."""
    root = Path(path)
    try:
        meta = json.loads((root / INIT_JSON).read_text())
    except (OSError, ValueError) as error:
        raise ValueError(f"{INIT_JSON}: cannot read {root / INIT_JSON} ({error})") from error
    if meta.get("format") != FORMAT:
        raise ValueError(f"{INIT_JSON}: format {meta.get('format')!r} is not {FORMAT}; save it again with this version")
    net = build(meta["net"], meta["net_kwargs"])
    net.load_state_dict(torch.load(root / INIT_WEIGHTS, map_location="cpu", weights_only=True))
    learner = MetaLearner(net, MetaConfig(**meta["config"]), meta["loss"], device)
    learner.iteration = int(meta.get("iteration", 0))
    return learner
