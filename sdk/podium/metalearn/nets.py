"""Networks for meta-learning: the MAML/Cloudera conv-4 and the sinusoid MLP.

Batch norm here is hand-written (mean/var over the batch, no running statistics): under ``vmap`` over
the task batch, ``nn.BatchNorm2d``'s batching rule gives second-order meta-gradients ~7% off
(functorch#534); the plain ops below are exact, and normalise per task because ``vmap`` hands each task
its own batch. ``stats`` lets a saved, adapted model normalise with fixed (support-set) statistics.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

EPS = 1e-5
Stats = list[tuple[Tensor, Tensor]]


def batch_norm(
    x: Tensor, weight: Tensor, bias: Tensor, stats: tuple[Tensor, Tensor] | None = None
) -> Tensor:
    """Normalise [N, C, H, W] per channel with the batch's (or the given) mean and biased variance."""
    if stats is None:
        mean = x.mean(dim=(0, 2, 3), keepdim=True)
        var = ((x - mean) ** 2).mean(dim=(0, 2, 3), keepdim=True)
    else:
        mean, var = (s.reshape(1, -1, 1, 1) for s in stats)
    return (x - mean) / torch.sqrt(var + EPS) * weight.reshape(1, -1, 1, 1) + bias.reshape(1, -1, 1, 1)


class ConvBlock(nn.Module):
    """conv3×3 (padding 1) → functional batch norm → ReLU → maxpool 2 (skipped below 2×2)."""

    def __init__(self, in_channels: int, out_channels: int, pool: bool) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.weight = nn.Parameter(torch.ones(out_channels))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.pool = pool

    def forward(self, x: Tensor, stats: tuple[Tensor, Tensor] | None = None) -> Tensor:
        x = F.relu(batch_norm(self.conv(x), self.weight, self.bias, stats))
        return F.max_pool2d(x, 2) if self.pool else x

    def statistics(self, x: Tensor) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """This block's output on ``x`` and the batch statistics its norm used."""
        h = self.conv(x)
        mean = h.mean(dim=(0, 2, 3))
        var = ((h - mean.reshape(1, -1, 1, 1)) ** 2).mean(dim=(0, 2, 3))
        return self.forward(x, (mean, var)), (mean, var)


class Conv4(nn.Module):
    """The MAML / Cloudera Fast Forward conv-4 (hidden channels × 4 blocks) with a linear n-way head."""

    head_prefix = "head."  # parameters a head-only (ANIL / finetune-head) inner loop adapts

    def __init__(self, in_channels: int = 1, n_way: int = 5, hidden: int = 20, image_size: int = 28) -> None:
        super().__init__()
        if min(in_channels, n_way, hidden, image_size) < 1:
            raise ValueError("Conv4: in_channels, n_way, hidden and image_size must all be ≥ 1")
        self.in_channels, self.n_way, self.hidden, self.image_size = in_channels, n_way, hidden, image_size
        blocks, size = [], image_size
        for i in range(4):
            pool = size >= 2  # 8×8 digits: 8→4→2→1, then the 4th block keeps 1×1 instead of failing
            blocks.append(ConvBlock(in_channels if i == 0 else hidden, hidden, pool))
            size = size // 2 if pool else size
        self.blocks = nn.ModuleList(blocks)
        self.features = hidden * size * size
        self.head = nn.Linear(self.features, n_way)

    def init_kwargs(self) -> dict[str, Any]:
        return {"in_channels": self.in_channels, "n_way": self.n_way, "hidden": self.hidden, "image_size": self.image_size}

    def embed(self, x: Tensor, stats: Stats | None = None) -> Tensor:
        """Flattened features before the head (ProtoNets' embedding)."""
        for i, block in enumerate(self.blocks):
            x = block(x, None if stats is None else stats[i])
        return x.flatten(1)

    def forward(self, x: Tensor, stats: Stats | None = None, embed: bool = False) -> Tensor:
        # ``embed`` is a flag (not just the method) so torch.func.functional_call can reach the features
        features = self.embed(x, stats)
        return features if embed else self.head(features)

    def statistics(self, x: Tensor) -> Stats:
        """Per-block batch-norm statistics on ``x`` (e.g. a support set), to freeze into a saved model."""
        stats: Stats = []
        for block in self.blocks:
            assert isinstance(block, ConvBlock)
            x, block_stats = block.statistics(x)
            stats.append(block_stats)
        return stats


class SineMLP(nn.Module):
    """The MAML paper's sinusoid regressor: 1-40-40-1 with ReLU; [B, 1] → [B, 1]."""

    head_prefix = "layers.4."

    def __init__(self, hidden: int = 40) -> None:
        super().__init__()
        self.hidden = hidden
        self.layers = nn.Sequential(
            nn.Linear(1, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 1)
        )

    def init_kwargs(self) -> dict[str, Any]:
        return {"hidden": self.hidden}

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x)


NETS: dict[str, type[nn.Module]] = {"Conv4": Conv4, "SineMLP": SineMLP}  # what an initialisation may name


def build(name: str, kwargs: dict[str, Any]) -> nn.Module:
    """Rebuild a net by its registered name: saved initialisations never import arbitrary classes."""
    if name not in NETS:
        raise ValueError(f"net: unknown network {name!r}; known: {', '.join(NETS)}")
    return NETS[name](**kwargs)
