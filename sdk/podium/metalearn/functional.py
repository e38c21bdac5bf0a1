"""The per-task maths of MAML, FOMAML, Reptile and ProtoNets, as pure functions of a parameter dict.

Two implementations of every meta-gradient, meant to agree: ``torch.func`` (``grad`` inside ``vmap``
over the task batch) and a per-task Python loop with ``torch.autograd.grad``. Nothing here may be
wrapped in ``torch.compile``: compiled double backward returned wrong meta-gradients silently.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.func import functional_call, grad, vmap
from torch.nn import functional as F

Params = dict[str, Tensor]
LossFn = Callable[[Tensor, Tensor], Tensor]


def loss_function(kind: str) -> LossFn:
    if kind == "cross_entropy":
        return F.cross_entropy
    if kind == "mse":
        return F.mse_loss
    raise ValueError(f"loss: unknown loss {kind!r}; use 'cross_entropy' or 'mse'")


def prototypes(embeddings: Tensor, labels: Tensor, n_way: int) -> Tensor:
    """Class means of the support embeddings, [n_way, D] (one-hot matmul: vmap-friendly, no indexing)."""
    onehot = (labels[:, None] == torch.arange(n_way, device=labels.device)).to(embeddings.dtype)
    return onehot.T @ embeddings / onehot.sum(0)[:, None]


def proto_logits(queries: Tensor, protos: Tensor) -> Tensor:
    """Negative squared Euclidean distances, [Q, n_way]."""
    return -((queries[:, None, :] - protos[None, :, :]) ** 2).sum(-1)


@dataclass
class TaskMaths:
    """Closures over one network, loss and inner loop; ``fast`` names the parameters adapted per task."""

    net: nn.Module
    loss: LossFn
    inner_lr: float
    fast: tuple[str, ...]
    amp: bool = False  # CUDA only: fp16 autocast around the outer (query) loss

    def outer_autocast(self) -> AbstractContextManager[object]:
        return torch.autocast("cuda", dtype=torch.float16) if self.amp else nullcontext()

    def task_loss(self, params: Params, x: Tensor, y: Tensor) -> Tensor:
        return self.loss(functional_call(self.net, params, (x,)), y)

    def split(self, params: Params) -> tuple[Params, Params]:
        fast = {k: v for k, v in params.items() if k in self.fast}
        return fast, {k: v for k, v in params.items() if k not in self.fast}

    # --- torch.func (vmap-able) -----------------------------------------------------------------
    def adapt_func(self, params: Params, xs: Tensor, ys: Tensor, steps: int, first_order: bool) -> Params:
        """Inner SGD with ``torch.func.grad``; differentiable (second order) unless ``first_order``."""
        fast, slow = self.split(params)
        for _ in range(steps):
            g = grad(lambda f: self.task_loss({**slow, **f}, xs, ys))(fast)
            if first_order:
                g = {k: v.detach() for k, v in g.items()}
            fast = {k: fast[k] - self.inner_lr * g[k] for k in fast}
        return {**slow, **fast}

    def maml_query_loss(
        self, params: Params, xs: Tensor, ys: Tensor, xq: Tensor, yq: Tensor, steps: int, first_order: bool
    ) -> Tensor:
        adapted = self.adapt_func(params, xs, ys, steps, first_order)
        with self.outer_autocast():
            return self.task_loss(adapted, xq, yq)  # cross_entropy / mse autocast to fp32

    def proto_loss(self, params: Params, xs: Tensor, ys: Tensor, xq: Tensor, yq: Tensor, n_way: int) -> Tensor:
        with self.outer_autocast():
            protos = prototypes(functional_call(self.net, params, (xs,), {"embed": True}), ys, n_way)
            logits = proto_logits(functional_call(self.net, params, (xq,), {"embed": True}), protos)
            return F.cross_entropy(logits, yq)

    # --- per-task loop with torch.autograd ------------------------------------------------------
    def adapt_autograd(self, params: Params, xs: Tensor, ys: Tensor, steps: int, create_graph: bool) -> Params:
        """Inner SGD with ``torch.autograd.grad``; ``params`` must require grad (the meta-parameters)."""
        fast, slow = self.split(params)
        for _ in range(steps):
            loss = self.task_loss({**slow, **fast}, xs, ys)
            g = torch.autograd.grad(loss, list(fast.values()), create_graph=create_graph)
            fast = {k: v - self.inner_lr * gk for (k, v), gk in zip(fast.items(), g, strict=True)}
        return {**slow, **fast}

    def sgd(self, params: Params, xs: Tensor, ys: Tensor, steps: int) -> Params:
        """Plain detached inner SGD (Reptile, evaluation, serving): returns leaf tensors, no graph."""
        fast, slow = self.split({k: v.detach() for k, v in params.items()})
        with torch.enable_grad():
            for _ in range(steps):
                fast = {k: v.requires_grad_() for k, v in fast.items()}
                loss = self.task_loss({**slow, **fast}, xs, ys)
                g = torch.autograd.grad(loss, list(fast.values()))
                fast = {k: (v - self.inner_lr * gk).detach() for (k, v), gk in zip(fast.items(), g, strict=True)}
        return {**slow, **fast}


def maml_meta_loss(
    maths: TaskMaths, params: Params, batch: tuple[Tensor, Tensor, Tensor, Tensor], steps: int, first_order: bool
) -> Tensor:
    """Mean post-adaptation query loss over the task batch, vmapped (the vectorised path)."""

    def one(p: Params, xs: Tensor, ys: Tensor, xq: Tensor, yq: Tensor) -> Tensor:
        return maths.maml_query_loss(p, xs, ys, xq, yq, steps, first_order)

    return vmap(one, in_dims=(None, 0, 0, 0, 0))(params, *batch).mean()


def maml_meta_loss_loop(
    maths: TaskMaths,
    params: Params,
    batch: tuple[Tensor, Tensor, Tensor, Tensor],
    steps: int,
    first_order: bool,
    backward: Callable[[Tensor], None] | None = None,
) -> Tensor:
    """The same mean, task by task; with ``backward`` each task's share is back-propagated right away
    (so only one task's graph is alive at a time) and the returned mean is detached."""
    total: Tensor | None = None
    n = len(batch[0])
    for xs, ys, xq, yq in zip(*batch, strict=True):
        adapted = maths.adapt_autograd(params, xs, ys, steps, create_graph=not first_order)
        with maths.outer_autocast():
            loss = maths.task_loss(adapted, xq, yq) / n
        if backward is not None:
            backward(loss)
            loss = loss.detach()
        total = loss if total is None else total + loss
    assert total is not None, "empty task batch"
    return total


def proto_meta_loss(
    maths: TaskMaths, params: Params, batch: tuple[Tensor, Tensor, Tensor, Tensor], n_way: int, vectorize: bool
) -> Tensor:
    if vectorize:
        def one(p: Params, xs: Tensor, ys: Tensor, xq: Tensor, yq: Tensor) -> Tensor:
            return maths.proto_loss(p, xs, ys, xq, yq, n_way)

        return vmap(one, in_dims=(None, 0, 0, 0, 0))(params, *batch).mean()
    losses = [maths.proto_loss(params, xs, ys, xq, yq, n_way) for xs, ys, xq, yq in zip(*batch, strict=True)]
    return torch.stack(losses).mean()


def adapt_batch(maths: TaskMaths, params: Params, xs: Tensor, ys: Tensor, steps: int, vectorize: bool) -> Params:
    """Per-task weights after ``steps`` of detached inner SGD, stacked on a leading task axis (Reptile's
    targets, evaluation)."""
    detached = {k: v.detach() for k, v in params.items()}
    if vectorize:
        with torch.no_grad():  # torch.func.grad ignores an outer no_grad: the inner gradients still run
            adapted = vmap(lambda p, x, y: maths.adapt_func(p, x, y, steps, True), in_dims=(None, 0, 0))(
                detached, xs, ys
            )
        return {k: v.detach() for k, v in adapted.items()}
    per_task = [maths.sgd(detached, x, y, steps) for x, y in zip(xs, ys, strict=True)]
    return {k: torch.stack([p[k] for p in per_task]) for k in detached}
