"""The benchmark's baseline: pretrain one network conventionally, then finetune it on each support set.

Classification: Conv4 trained on all meta-train classes at once, then its head replaced by a zeroed
n-way head and finetuned (head only, or all weights) on the support set. Regression: SineMLP trained on
points of random sine tasks pooled together, then finetuned like MAML's test-time adaptation. Both come
back as a MetaLearner whose ``evaluate`` runs that finetuning, so benchmarks score every method one way.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from podium.metalearn.algorithms import MetaConfig, MetaLearner
from podium.metalearn.nets import Conv4, SineMLP


def finetune_baseline(
    train: Any,
    *,
    n_way: int = 5,
    finetune: Literal["head", "all"] = "head",
    finetune_lr: float = 0.01,
    test_steps: int = 10,
    pretrain_steps: int = 1000,
    batch: int = 64,
    lr: float = 1e-3,
    hidden: int = 20,
    k_support: int = 10,
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> MetaLearner:
    """``train``: a ClassDataset (``images``/``labels``/``n_classes``) or sinusoid tasks (``.sample``)."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    config = MetaConfig(
        algorithm="maml", inner_lr=finetune_lr, test_steps=test_steps, inner_params=finetune, seed=seed
    )
    if hasattr(train, "images"):
        _, channels, size, _ = train.images.shape
        net = Conv4(channels, train.n_classes, hidden, size).to(device)
        images, labels = torch.as_tensor(train.images), torch.as_tensor(train.labels)
        _pretrain(net, pretrain_steps, lr, lambda: _minibatch(images, labels, batch, rng), F.cross_entropy, device)
        fresh = Conv4(channels, n_way, hidden, size)
        fresh.load_state_dict({k: v for k, v in net.state_dict().items() if not k.startswith("head.")}, strict=False)
        nn.init.zeros_(fresh.head.weight)  # a zero head starts every task from uniform class scores
        nn.init.zeros_(fresh.head.bias)
        return MetaLearner(fresh, config, "cross_entropy", device)
    mlp = SineMLP().to(device)

    def pooled() -> tuple[torch.Tensor, torch.Tensor]:
        xs, ys, _, _ = train.sample(max(1, batch // k_support), k_support, k_support, rng)
        return xs.reshape(-1, 1), ys.reshape(-1, 1)

    _pretrain(mlp, pretrain_steps, lr, pooled, F.mse_loss, device)
    return MetaLearner(mlp, config, "mse", device)


def _minibatch(
    images: torch.Tensor, labels: torch.Tensor, batch: int, rng: np.random.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    index = torch.as_tensor(rng.choice(len(images), size=min(batch, len(images)), replace=False))
    return images[index], labels[index]


def _pretrain(net: nn.Module, steps: int, lr: float, draw: Any, loss: Any, device: str | torch.device) -> None:
    optimizer = torch.optim.Adam(net.parameters(), lr=lr)
    net.train()
    for _ in range(steps):
        x, y = draw()
        optimizer.zero_grad(set_to_none=True)
        loss(net(x.to(device)), y.to(device)).backward()
        optimizer.step()
