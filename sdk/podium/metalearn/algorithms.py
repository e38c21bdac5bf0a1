"""MetaLearner: one outer update of MAML, FOMAML, Reptile or ProtoNets per ``step``, plus the training loop.

Outer optimiser: Adam(outer_lr) for MAML/FOMAML/ProtoNets. Reptile moves the weights a fraction
``reptile_outer_step`` towards the task-averaged adapted weights: SGD(lr=reptile_outer_step) on the
"gradient" θ − mean(φ), which is exactly θ ← θ + ε(mean(φ) − θ) and keeps the optimiser checkpointable.
On CUDA the outer loss runs under fp16 autocast with a GradScaler (no bf16: P100); inner gradients fp32.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Literal, Protocol

import numpy as np
import torch
from torch import Tensor, nn

from podium.metalearn import functional as fn

Algorithm = Literal["maml", "fomaml", "reptile", "protonet"]
Loss = Literal["cross_entropy", "mse"]
ALGORITHMS = ("maml", "fomaml", "reptile", "protonet")


class EpisodesLike(Protocol):
    xs: Tensor
    ys: Tensor
    xq: Tensor
    yq: Tensor


@dataclass
class MetaConfig:
    algorithm: Algorithm = "maml"
    inner_lr: float = 0.01
    inner_steps: int = 5
    outer_lr: float = 0.001
    meta_batch: int = 25
    iterations: int = 1000
    test_steps: int = 10
    reptile_outer_step: float = 1.0
    reptile_use_query: bool = True  # Reptile's inner loop trains on support + query
    inner_params: Literal["all", "head"] = "all"  # "head": adapt only the head (ANIL / finetune-head)
    seed: int = 0
    vectorize: bool = True  # vmap over the task batch; False = per-task Python loop

    def __post_init__(self) -> None:
        if self.algorithm not in ALGORITHMS:
            raise ValueError(f"algorithm: unknown {self.algorithm!r}; use one of {', '.join(ALGORITHMS)}")
        for name in ("inner_steps", "meta_batch", "iterations", "test_steps"):
            if int(getattr(self, name)) < (0 if name.endswith("steps") else 1):
                raise ValueError(f"{name}: must be a positive integer, got {getattr(self, name)!r}")
        for name in ("inner_lr", "outer_lr", "reptile_outer_step"):
            value = float(getattr(self, name))
            if not math.isfinite(value) or value <= 0:
                raise ValueError(f"{name}: must be a finite number > 0, got {getattr(self, name)!r}")
        if self.inner_params not in ("all", "head"):
            raise ValueError(f"inner_params: use 'all' or 'head', got {self.inner_params!r}")


def check_cuda_arch() -> None:
    """Fail early, with the fix, when this PyTorch build has no kernels for the GPU (a no-op on CPU)."""
    if not torch.cuda.is_available():
        return
    major, minor = torch.cuda.get_device_capability()
    arch, name = f"sm_{major}{minor}", torch.cuda.get_device_name()
    built = torch.cuda.get_arch_list()
    ptx = [a for a in built if a.startswith("compute_") and int(a.split("_")[1]) <= major * 10 + minor]
    if arch not in built and not ptx:  # PTX for an older arch is JIT-compiled forward; cubins are not
        raise RuntimeError(
            f"this PyTorch build ({torch.__version__}) has no kernels for {arch} ({name}); it has "
            f"{' '.join(built) or 'none'}: install the cu126 build (pip install 'torch<=2.14' --index-url "
            "https://download.pytorch.org/whl/cu126, which still includes sm_60 for P100) or run on a newer GPU"
        )


class MetaLearner:
    """Meta-parameters (the network's weights), the outer optimiser and the inner loop of one algorithm."""

    def __init__(self, net: nn.Module, config: MetaConfig, loss: Loss = "cross_entropy", device: str | torch.device = "cpu") -> None:
        self.config, self.loss_kind, self.device = config, loss, torch.device(device)
        self.net = net.to(self.device)
        prefix = getattr(net, "head_prefix", "head.")
        names = tuple(n for n, _ in net.named_parameters())
        fast = names if config.inner_params == "all" else tuple(n for n in names if n.startswith(prefix))
        if not fast:
            raise ValueError(f"inner_params: the network has no parameters named {prefix}* to adapt")
        self.amp = self.device.type == "cuda"
        self.maths = fn.TaskMaths(net, fn.loss_function(loss), config.inner_lr, fast, amp=self.amp)
        if config.algorithm == "reptile":
            self.optimizer: torch.optim.Optimizer = torch.optim.SGD(net.parameters(), lr=config.reptile_outer_step)
        else:
            self.optimizer = torch.optim.Adam(net.parameters(), lr=config.outer_lr)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)
        self.iteration = 0
        self.rng = np.random.default_rng(config.seed)  # for samplers: checkpointed, so resume is exact
        self.generator = torch.Generator().manual_seed(config.seed)

    @property
    def params(self) -> fn.Params:
        return dict(self.net.named_parameters())

    def _batch(self, episodes: EpisodesLike | tuple[Tensor, ...]) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        xs, ys, xq, yq = (
            episodes if isinstance(episodes, tuple) else (episodes.xs, episodes.ys, episodes.xq, episodes.yq)
        )
        return tuple(t.to(self.device, non_blocking=True) for t in (xs, ys, xq, yq))  # type: ignore[return-value]

    def n_way(self, ys: Tensor) -> int:
        return int(ys.max().item()) + 1

    # --- training ---------------------------------------------------------------------------------
    def backward(self, episodes: EpisodesLike | tuple[Tensor, ...]) -> float:
        """Accumulate the meta-gradient of one task batch into ``.grad``; returns the meta-loss."""
        batch = self._batch(episodes)
        cfg, params = self.config, self.params
        if cfg.algorithm == "reptile":
            xs, ys, xq, yq = batch
            if cfg.reptile_use_query:
                xs, ys = torch.cat([xs, xq], 1), torch.cat([ys, yq], 1)
            adapted = fn.adapt_batch(self.maths, params, xs, ys, cfg.inner_steps, cfg.vectorize)
            for name, p in params.items():
                step = p.detach() - adapted[name].mean(0)
                p.grad = step if p.grad is None else p.grad + step
            with torch.no_grad():  # reported: each task's query loss at its own adapted weights
                return float(self._query_losses(adapted, batch[2], batch[3]).mean())
        if cfg.algorithm == "protonet":
            loss = fn.proto_meta_loss(self.maths, params, batch, self.n_way(batch[1]), cfg.vectorize)
            self.scaler.scale(loss).backward()
            return float(loss.detach())
        first_order = cfg.algorithm == "fomaml"
        if cfg.vectorize:
            loss = fn.maml_meta_loss(self.maths, params, batch, cfg.inner_steps, first_order)
            self.scaler.scale(loss).backward()
        else:
            loss = fn.maml_meta_loss_loop(
                self.maths, params, batch, cfg.inner_steps, first_order, lambda t: self.scaler.scale(t).backward()
            )
        return float(loss.detach())

    def step(self, episodes: EpisodesLike | tuple[Tensor, ...]) -> float:
        """One outer update on one task batch; returns the meta-loss (mean post-adaptation query loss)."""
        self.net.train()
        self.optimizer.zero_grad(set_to_none=True)
        loss = self.backward(episodes)
        if self.config.algorithm == "reptile":
            self.optimizer.step()  # no scaler: Reptile's "gradient" is a weight difference, not a loss grad
        else:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        self.iteration += 1
        return loss

    # --- adaptation and evaluation ------------------------------------------------------------------
    def adapt(self, xs: Tensor, ys: Tensor, steps: int | None = None) -> fn.Params:
        """Fast weights for one task (ProtoNets: ``{"prototypes": [n_way, D]}``), detached."""
        xs, ys = xs.to(self.device), ys.to(self.device)
        if self.config.algorithm == "protonet":
            with torch.no_grad():
                return {"prototypes": fn.prototypes(self.net(xs, embed=True), ys, self.n_way(ys))}
        steps = self.config.test_steps if steps is None else steps
        return self.maths.sgd(self.params, xs, ys, steps)

    def predict(self, params: fn.Params, xq: Tensor) -> Tensor:
        """Logits (ProtoNets: negative squared distances to the prototypes) or regression output."""
        xq = xq.to(self.device)
        with torch.no_grad():
            if self.config.algorithm == "protonet":
                return fn.proto_logits(self.net(xq, embed=True), params["prototypes"])
            return torch.func.functional_call(self.net, params, (xq,))

    def _query_losses(self, adapted: fn.Params, xq: Tensor, yq: Tensor) -> Tensor:
        outputs = torch.func.vmap(lambda p, x: torch.func.functional_call(self.net, p, (x,)))(adapted, xq)
        if self.loss_kind == "mse":
            return ((outputs - yq) ** 2).flatten(1).mean(1)
        return torch.func.vmap(self.maths.loss)(outputs, yq)

    def task_scores(self, episodes: EpisodesLike | tuple[Tensor, ...], steps: int | None = None) -> Tensor:
        """Per-task accuracy (classification) or MSE (regression) after adaptation, [B]."""
        xs, ys, xq, yq = self._batch(episodes)
        steps = self.config.test_steps if steps is None else steps
        if self.config.algorithm == "protonet":
            logits = torch.stack([self.predict(self.adapt(s, t), q) for s, t, q in zip(xs, ys, xq, strict=True)])
        else:
            adapted = fn.adapt_batch(self.maths, self.params, xs, ys, steps, self.config.vectorize)
            with torch.no_grad():
                outputs = torch.func.vmap(lambda p, x: torch.func.functional_call(self.net, p, (x,)))(adapted, xq)
            if self.loss_kind == "mse":
                return ((outputs - yq) ** 2).flatten(1).mean(1)
            logits = outputs
        return (logits.argmax(-1) == yq).float().mean(1)

    def evaluate(
        self,
        source: Any,
        episodes: int,
        *,
        batch: int | None = None,
        k_support: int | None = None,
        k_query: int | None = None,
        steps: int | None = None,
        rng: np.random.Generator | None = None,
    ) -> tuple[float, float]:
        """Mean and 95% CI half-width of the per-task score over ``episodes`` new tasks.

        ``source``: an episode sampler (``.sample(batch)``), sinusoid tasks (``.sample(batch, k_support,
        k_query, rng)``, when ``k_support`` is given) or a callable ``batch -> episodes``.
        """
        rng = np.random.default_rng(self.config.seed + 1_000_003) if rng is None else rng
        size = batch or self.config.meta_batch
        scores: list[Tensor] = []
        done = 0
        while done < episodes:
            b = min(size, episodes - done)
            if k_support is not None:
                drawn = source.sample(b, k_support, k_query or k_support, rng)
            elif hasattr(source, "sample"):
                drawn = source.sample(b)
            else:
                drawn = source(b)
            scores.append(self.task_scores(drawn, steps).float().cpu())
            done += b
        values = torch.cat(scores).double()
        ci = 1.96 * float(values.std()) / math.sqrt(len(values)) if len(values) > 1 else float("nan")
        return float(values.mean()), ci

    # --- checkpoints -------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything a resumed run needs: weights, optimiser and scaler state, iteration, RNG states.

        A snapshot (tensors copied): later steps update weights and Adam moments in place, and a
        checkpoint callback may serialise it after training has moved on."""
        return {
            "config": asdict(self.config),
            "loss": self.loss_kind,
            "net": {k: v.detach().to("cpu", copy=True) for k, v in self.net.state_dict().items()},
            "optimizer": copy.deepcopy(self.optimizer.state_dict()),
            "scaler": self.scaler.state_dict(),
            "iteration": self.iteration,
            "rng": {"numpy": _numpy_state(self.rng), "torch": self.generator.get_state()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.net.load_state_dict(state["net"])
        self.optimizer.load_state_dict(state["optimizer"])
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.iteration = int(state["iteration"])
        self.rng.bit_generator.state = _restore_numpy_state(state["rng"]["numpy"])
        self.generator.set_state(state["rng"]["torch"])


def _numpy_state(rng: np.random.Generator) -> dict[str, Any]:
    """The bit generator's state with its 128-bit integers as strings (torch.load(weights_only=True)-safe)."""
    state = rng.bit_generator.state
    return {
        "bit_generator": state["bit_generator"],
        "state": {k: str(v) for k, v in state["state"].items()},
        "has_uint32": int(state["has_uint32"]),
        "uinteger": int(state["uinteger"]),
    }


def _restore_numpy_state(saved: dict[str, Any]) -> dict[str, Any]:
    return {**saved, "state": {k: int(v) for k, v in saved["state"].items()}}


def meta_train(
    learner: MetaLearner,
    sample: Callable[[], Any],
    *,
    iterations: int,
    on_progress: Callable[[dict[str, Any]], None] | None = None,
    progress_every: int = 10,
    validate: Callable[[], float] | None = None,
    validate_every: int = 100,
    checkpoint: Callable[[dict[str, Any]], None] | None = None,
    checkpoint_every: int = 100,
    start_iteration: int | None = None,
) -> list[dict[str, Any]]:
    """Run outer steps up to ``iterations`` (from ``start_iteration``, default the learner's own count
    after ``load_state_dict``); callbacks fire every N iterations and on the last. Returns the history."""
    history: list[dict[str, Any]] = []
    start = learner.iteration if start_iteration is None else start_iteration
    learner.iteration = start
    for done in range(start + 1, iterations + 1):
        record: dict[str, Any] = {"iteration": done, "iterations": iterations, "loss": learner.step(sample())}
        record["validation"] = validate() if validate and (done % validate_every == 0 or done == iterations) else None
        history.append(record)
        if on_progress and (done % progress_every == 0 or done == iterations or record["validation"] is not None):
            on_progress(record)
        if checkpoint and (done % checkpoint_every == 0 or done == iterations):
            checkpoint(learner.state_dict())
    return history
