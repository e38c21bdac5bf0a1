"""Meta-gradients of MAML / FOMAML / Reptile / ProtoNets against hand-computed cases and finite differences."""

from __future__ import annotations

import math
from collections.abc import Callable
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from podium.metalearn import functional as fn
from podium.metalearn.algorithms import MetaConfig, MetaLearner, check_cuda_arch, meta_train
from podium.metalearn.baseline import finetune_baseline
from podium.metalearn.nets import Conv4, SineMLP

torch.set_num_threads(1)


class Scale(nn.Module):
    """y = w·x with one parameter: every MAML quantity has a closed form."""

    def __init__(self, w: float) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.tensor([w], dtype=torch.float64))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.w


def _grads(net: nn.Module) -> torch.Tensor:
    return torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).flatten() for p in net.parameters()])


def _episodes(tasks: int, n_way: int, k: int, q: int, size: int, seed: int) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    ys = torch.arange(n_way).repeat_interleave(k).repeat(tasks, 1)
    yq = torch.arange(n_way).repeat_interleave(q).repeat(tasks, 1)
    xs = torch.randn(tasks, n_way * k, 1, size, size, generator=g, dtype=torch.float64)
    xq = torch.randn(tasks, n_way * q, 1, size, size, generator=g, dtype=torch.float64)
    return xs, ys, xq, yq


def _conv4(seed: int = 1) -> Conv4:
    torch.manual_seed(seed)
    return Conv4(in_channels=1, n_way=3, hidden=4, image_size=8).double()


def _meta_grad(net: nn.Module, algorithm: str, batch: tuple[torch.Tensor, ...], vectorize: bool, steps: int = 2, lr: float = 0.1, **extra: object) -> torch.Tensor:
    learner = MetaLearner(net, MetaConfig(algorithm=algorithm, inner_steps=steps, inner_lr=lr, vectorize=vectorize, **extra), "cross_entropy" if batch[1].dtype == torch.int64 else "mse")  # type: ignore[arg-type]
    learner.optimizer.zero_grad()
    learner.backward(batch)
    return _grads(net)


# --- closed form -----------------------------------------------------------------------------------
def _closed_form(w: float, a: np.ndarray, b: np.ndarray, c: np.ndarray, d: np.ndarray, lr: float, steps: int) -> tuple[float, float]:
    """(MAML, FOMAML) meta-gradient of mean((w'c - d)²) with w' after ``steps`` SGD steps on mean((wa - b)²)."""
    A, B, C, D = (a * a).mean(), (a * b).mean(), (c * c).mean(), (c * d).mean()
    for _ in range(steps):
        w = w - lr * 2 * (w * A - B)  # each step is affine in w with slope (1 - 2·lr·A)
    outer = 2 * (w * C - D)
    return outer * (1 - 2 * lr * A) ** steps, outer


@pytest.mark.parametrize("vectorize", [True, False])
def test_maml_and_fomaml_meta_gradients_match_the_closed_form(vectorize: bool) -> None:
    rng = np.random.default_rng(0)
    a, b, c, d = (rng.normal(size=(2, 4)) for _ in range(4))  # two tasks, four points each
    lr, steps, w = 0.2, 3, 0.7
    batch = tuple(torch.tensor(v)[..., None] for v in (a, b, c, d))
    expected = [np.mean([_closed_form(w, a[t], b[t], c[t], d[t], lr, steps)[order] for t in range(2)]) for order in (0, 1)]
    maml = _meta_grad(Scale(w), "maml", batch, vectorize, steps, lr)
    fomaml = _meta_grad(Scale(w), "fomaml", batch, vectorize, steps, lr)
    assert maml.item() == pytest.approx(expected[0], rel=1e-10)
    assert fomaml.item() == pytest.approx(expected[1], rel=1e-10)
    assert abs(expected[0] - expected[1]) > 0.1 * abs(expected[0])  # the case separates the two


# --- Conv4 with functional batch norm: finite differences under vmap --------------------------------
def test_conv4_maml_meta_gradient_under_vmap_matches_central_finite_differences() -> None:
    net = _conv4()
    batch = _episodes(3, 3, 2, 2, 8, seed=0)
    grad = _meta_grad(net, "maml", batch, vectorize=True)
    maths = fn.TaskMaths(net, fn.loss_function("cross_entropy"), 0.1, tuple(n for n, _ in net.named_parameters()))
    base = {k: v.detach() for k, v in net.named_parameters()}
    g = torch.Generator().manual_seed(5)
    for _ in range(3):
        direction = {k: torch.randn(v.shape, generator=g, dtype=v.dtype) for k, v in base.items()}
        eps = 1e-6

        def at(sign: float, direction: dict[str, torch.Tensor] = direction, eps: float = eps) -> float:
            shifted = {k: v + sign * eps * direction[k] for k, v in base.items()}
            with torch.no_grad():
                return fn.maml_meta_loss(maths, shifted, batch, 2, False).item()  # type: ignore[arg-type]

        numeric = (at(1) - at(-1)) / (2 * eps)
        analytic = float(grad @ torch.cat([direction[k].flatten() for k in base]))
        assert analytic == pytest.approx(numeric, rel=1e-6, abs=1e-9)


@pytest.mark.parametrize("algorithm", ["maml", "fomaml", "reptile", "protonet"])
def test_vmap_and_per_task_loop_give_the_same_meta_gradient(algorithm: str) -> None:
    batch = _episodes(4, 3, 2, 3, 8, seed=1)
    vectorised = _meta_grad(_conv4(), algorithm, batch, vectorize=True)
    looped = _meta_grad(_conv4(), algorithm, batch, vectorize=False)
    assert vectorised.norm() > 0
    assert torch.allclose(vectorised, looped, rtol=1e-9, atol=1e-12)


def test_head_only_inner_loop_agrees_between_vmap_and_loop_and_still_trains_the_body() -> None:
    batch = _episodes(3, 3, 2, 2, 8, seed=4)
    vectorised = _meta_grad(_conv4(), "maml", batch, vectorize=True, inner_params="head")
    looped = _meta_grad(_conv4(), "maml", batch, vectorize=False, inner_params="head")
    assert torch.allclose(vectorised, looped, rtol=1e-9, atol=1e-12)
    body = sum(p.numel() for n, p in _conv4().named_parameters() if not n.startswith("head."))
    assert vectorised[:body].norm() > 0  # the meta-gradient reaches the features through the adapted head


def test_fomaml_is_maml_without_the_second_order_term() -> None:
    batch = _episodes(3, 3, 2, 2, 8, seed=2)
    net = _conv4()
    maths = fn.TaskMaths(net, fn.loss_function("cross_entropy"), 0.1, tuple(n for n, _ in net.named_parameters()))
    # first order: the query-loss gradient at the adapted weights, taken as if they were the parameters
    expected = torch.zeros_like(_grads(net))
    for xs, ys, xq, yq in zip(*batch, strict=True):
        adapted = {k: v.requires_grad_() for k, v in maths.sgd(dict(net.named_parameters()), xs, ys, 2).items()}
        grads = torch.autograd.grad(maths.task_loss(adapted, xq, yq), list(adapted.values()))
        expected += torch.cat([gi.flatten() for gi in grads]) / len(batch[0])
    fomaml = _meta_grad(_conv4(), "fomaml", batch, vectorize=True)
    maml = _meta_grad(_conv4(), "maml", batch, vectorize=True)
    assert torch.allclose(fomaml, expected, rtol=1e-9, atol=1e-12)
    assert (maml - fomaml).norm() > 1e-3 * maml.norm()


# --- ProtoNets and Reptile by hand ------------------------------------------------------------------
def test_prototypes_are_class_means_and_logits_negative_squared_distances() -> None:
    emb = torch.tensor([[0.0, 4.0], [2.0, 0.0], [0.0, 2.0], [0.0, 0.0]])
    labels = torch.tensor([1, 0, 1, 0])
    protos = fn.prototypes(emb, labels, 2)
    assert torch.equal(protos, torch.tensor([[1.0, 0.0], [0.0, 3.0]]))
    logits = fn.proto_logits(torch.tensor([[1.0, 1.0], [0.0, 3.0]]), protos)
    assert torch.equal(logits, torch.tensor([[-1.0, -5.0], [-10.0, 0.0]]))


@pytest.mark.parametrize("vectorize", [True, False])
def test_reptile_moves_the_weights_towards_the_mean_adapted_weights(vectorize: bool) -> None:
    a = torch.tensor([[1.0, 2.0], [0.5, -1.0]], dtype=torch.float64)[..., None]
    b = torch.tensor([[1.0, 0.0], [2.0, 1.0]], dtype=torch.float64)[..., None]
    w, lr, eps = 0.3, 0.1, 0.5
    net = Scale(w)
    config = MetaConfig(algorithm="reptile", inner_steps=1, inner_lr=lr, reptile_outer_step=eps,
                        reptile_use_query=False, vectorize=vectorize)
    MetaLearner(net, config, "mse").step((a, b, a, b))
    adapted = [w - lr * 2 * float(((w * a[t] - b[t]) * a[t]).mean()) for t in range(2)]
    assert net.w.item() == pytest.approx(w + eps * (np.mean(adapted) - w), rel=1e-12)


# --- learning, resuming, callbacks ------------------------------------------------------------------
def _sine_batch(rng: np.random.Generator, tasks: int, k: int, q: int) -> tuple[torch.Tensor, ...]:
    amp, phase = rng.uniform(0.1, 5.0, (tasks, 1, 1)), rng.uniform(0, math.pi, (tasks, 1, 1))
    xs, xq = rng.uniform(-5, 5, (tasks, k, 1)), rng.uniform(-5, 5, (tasks, q, 1))
    return tuple(torch.tensor(v, dtype=torch.float32) for v in (xs, amp * np.sin(xs - phase), xq, amp * np.sin(xq - phase)))


def test_maml_on_sinusoids_learns_to_adapt() -> None:
    torch.manual_seed(0)
    learner = MetaLearner(SineMLP(), MetaConfig(algorithm="maml", inner_steps=1, inner_lr=0.01, meta_batch=25, test_steps=10), "mse")
    meta_train(learner, lambda: _sine_batch(learner.rng, 25, 10, 10), iterations=400)
    rng = np.random.default_rng(123)
    before, _ = learner.evaluate(lambda n: _sine_batch(rng, n, 10, 50), 200, steps=0)
    after, ci = learner.evaluate(lambda n: _sine_batch(rng, n, 10, 50), 200, steps=10)
    assert after < 0.5 * before, (before, after, ci)


def _tiny_setup(algorithm: str) -> tuple[MetaLearner, Callable[[], tuple[torch.Tensor, ...]]]:
    torch.manual_seed(3)
    learner = MetaLearner(Conv4(1, 2, 4, 8), MetaConfig(algorithm=algorithm, inner_steps=1, inner_lr=0.1, seed=7))  # type: ignore[arg-type]

    def sample() -> tuple[torch.Tensor, ...]:
        x = torch.as_tensor(learner.rng.normal(size=(2, 8, 1, 8, 8)), dtype=torch.float32)
        y = torch.as_tensor(learner.rng.integers(0, 2, size=(2, 8)))
        return x[:, :4], y[:, :4], x[:, 4:], y[:, 4:]

    return learner, sample


@pytest.mark.parametrize("algorithm", ["maml", "reptile"])
def test_resume_from_checkpoint_continues_exactly_like_uninterrupted_training(algorithm: str, tmp_path) -> None:
    straight, sample = _tiny_setup(algorithm)
    meta_train(straight, sample, iterations=6)

    first, sample = _tiny_setup(algorithm)
    saved: list[dict] = []
    meta_train(first, sample, iterations=6, checkpoint=saved.append, checkpoint_every=3, start_iteration=0)
    torch.save(saved[0], tmp_path / "ckpt.pt")
    del first

    resumed, sample = _tiny_setup(algorithm)
    resumed.load_state_dict(torch.load(tmp_path / "ckpt.pt", weights_only=True))
    assert resumed.iteration == 3
    history = meta_train(resumed, sample, iterations=6)
    assert [h["iteration"] for h in history] == [4, 5, 6]
    for (name, p), q in zip(straight.net.named_parameters(), resumed.net.parameters(), strict=True):
        assert torch.equal(p, q), name


def test_meta_train_callbacks_fire_every_n_iterations_and_on_the_last() -> None:
    learner, sample = _tiny_setup("protonet")
    progress: list[dict] = []
    checkpoints: list[dict] = []
    history = meta_train(learner, sample, iterations=7, on_progress=progress.append, progress_every=3,
                         validate=lambda: 0.5, validate_every=5, checkpoint=checkpoints.append, checkpoint_every=4)
    assert [p["iteration"] for p in progress] == [3, 5, 6, 7]
    assert [h["validation"] for h in history] == [None] * 4 + [0.5, None, 0.5]
    assert [c["iteration"] for c in checkpoints] == [4, 7]
    assert set(progress[0]) == {"iteration", "iterations", "loss", "validation"}


def test_bad_config_names_the_field() -> None:
    with pytest.raises(ValueError, match="inner_lr"):
        MetaConfig(inner_lr=0)
    with pytest.raises(ValueError, match="algorithm"):
        MetaConfig(algorithm="anil")  # type: ignore[arg-type]


def test_cuda_arch_check_is_a_no_op_without_cuda_and_names_the_fix_for_a_missing_arch(monkeypatch) -> None:
    check_cuda_arch()  # CPU here: must not raise
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a: (6, 0))
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: "Tesla P100-PCIE-16GB")
    monkeypatch.setattr(torch.cuda, "get_arch_list", lambda: ["sm_75", "sm_80", "sm_90"])
    with pytest.raises(RuntimeError, match="no kernels for sm_60.*cu126"):
        check_cuda_arch()
    monkeypatch.setattr(torch.cuda, "get_arch_list", lambda: ["sm_50", "sm_60", "sm_70"])
    check_cuda_arch()


# --- the finetune baseline --------------------------------------------------------------------------
class _Sines:
    def sample(self, batch: int, k: int, q: int, rng: np.random.Generator) -> tuple[torch.Tensor, ...]:
        return _sine_batch(rng, batch, k, q)


def test_sine_baseline_is_pretrained_then_finetuned_on_the_support_points() -> None:
    baseline = finetune_baseline(_Sines(), pretrain_steps=100, finetune="all", finetune_lr=0.01)
    assert baseline.config.inner_params == "all" and baseline.loss_kind == "mse"
    xs, ys, _, _ = _sine_batch(np.random.default_rng(5), 1, 10, 1)
    fitted = baseline.predict(baseline.adapt(xs[0], ys[0], steps=10), xs[0])
    untouched = baseline.predict(dict(baseline.net.named_parameters()), xs[0])
    assert float(((fitted - ys[0]) ** 2).mean()) < float(((untouched - ys[0]) ** 2).mean())
    mse, ci = baseline.evaluate(_Sines(), 50, k_support=10, k_query=50)
    assert math.isfinite(mse) and ci > 0


def test_classification_baseline_keeps_the_pretrained_features_and_starts_a_zero_n_way_head() -> None:
    rng = np.random.default_rng(0)
    data = SimpleNamespace(images=rng.random((60, 1, 8, 8), dtype=np.float32), labels=rng.integers(0, 6, 60), n_classes=6)
    baseline = finetune_baseline(data, n_way=3, pretrain_steps=3, batch=16)
    net = baseline.net
    assert isinstance(net, Conv4) and net.n_way == 3 and baseline.maths.fast == ("head.weight", "head.bias")
    assert torch.count_nonzero(net.head.weight) == 0
    pretrained_conv = dict(net.named_parameters())["blocks.0.conv.weight"]
    assert not torch.equal(pretrained_conv, dict(Conv4(1, 3, 20, 8).named_parameters())["blocks.0.conv.weight"])
    xs, ys, xq, yq = (torch.as_tensor(v) for v in (data.images[None, :6], np.arange(6)[None] % 3, data.images[None, 6:12], np.arange(6)[None] % 3))
    assert 0.0 <= baseline.task_scores((xs, ys, xq, yq)).item() <= 1.0
