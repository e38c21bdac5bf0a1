"""Few-shot data sets that need no download: class-labelled images, class splits, sinusoid tasks.

- :func:`rotated_digits`: scikit-learn's 8 x 8 digits x {0, 90, 180, 270} degrees = 40 classes (Omniglot
  practice: every rotation of a character is a class of its own).
- :func:`font_glyphs`: an Omniglot-like set of > 1,000 letter classes rendered from the DejaVu fonts
  (:mod:`podium.metalearn.glyphs`).
- :func:`split_classes`: meta-train / meta-validation / meta-test sets with disjoint classes.
- :class:`SinusoidTasks`: the MAML paper's regression tasks.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from podium.errors import InvalidConfig
from podium.metalearn import glyphs

ROTATIONS = (0, 90, 180, 270)


@dataclass(frozen=True, eq=False)  # eq on arrays is ambiguous: compare fields explicitly
class ClassDataset:
    """Images with a class label each: ``images`` float32 [N, C, H, W] in [0, 1], ``labels`` int64 [N] in
    0..n_classes-1, ``class_names[label]`` naming each class."""

    images: np.ndarray
    labels: np.ndarray
    class_names: tuple[str, ...]

    def __post_init__(self) -> None:
        if self.images.ndim != 4:
            raise InvalidConfig(f"images must be [N, C, H, W], got shape {self.images.shape}", field="images")
        if self.labels.shape != (self.images.shape[0],):
            raise InvalidConfig(
                f"labels has shape {self.labels.shape} for {self.images.shape[0]} images", field="labels",
                hint="give one label per image",
            )
        if self.labels.size and (self.labels.min() < 0 or self.labels.max() >= len(self.class_names)):
            raise InvalidConfig(
                f"labels must lie in 0..{len(self.class_names) - 1} (one name per class)", field="labels"
            )

    @classmethod
    def from_rows(cls, rows: np.ndarray, labels: np.ndarray | Sequence, shape: Sequence[int]) -> ClassDataset:
        """Flat feature rows [N, C*H*W] (a Playground's table) with labels of any kind: classes are the
        distinct labels in sorted order, named by their string form."""
        rows = np.asarray(rows, dtype=np.float32)
        if rows.ndim != 2 or rows.shape[1] != math.prod(shape):
            raise InvalidConfig(
                f"rows of shape {rows.shape} do not hold images of shape {tuple(shape)}", field="shape",
                hint="give the image shape (C, H, W) whose product is the number of features",
            )
        names, codes = np.unique(np.asarray(labels), return_inverse=True)
        return cls(images=rows.reshape(len(rows), *shape), labels=codes.astype(np.int64).reshape(-1),
                   class_names=tuple(str(n) for n in names))

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    def subset(self, classes: Sequence[int]) -> ClassDataset:
        """The images of ``classes`` only, relabelled 0..k-1 in the order given (names kept)."""
        order = [int(c) for c in classes]
        if len(set(order)) != len(order) or any(not 0 <= c < self.n_classes for c in order):
            raise InvalidConfig(
                f"classes must be distinct indices in 0..{self.n_classes - 1}", field="classes"
            )
        relabel = np.full(self.n_classes, -1, dtype=np.int64)
        relabel[order] = np.arange(len(order))
        new = relabel[self.labels]
        keep = np.flatnonzero(new >= 0)
        return ClassDataset(
            images=self.images[keep], labels=new[keep], class_names=tuple(self.class_names[c] for c in order)
        )


def rotated_digits() -> ClassDataset:
    """scikit-learn's digits x 4 rotations: 40 classes named "<digit>@<degrees>", [N, 1, 8, 8] in [0, 1].

    Class ``4 * digit + r`` holds ``np.rot90(image, r)`` of every image of ``digit``, in the same order."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    base = (digits.images / 16.0).astype(np.float32)  # pixel values are 0..16
    target = digits.target.astype(np.int64)
    order = np.argsort(target, kind="stable")
    base, target = base[order], target[order]
    images, labels, names = [], [], []
    for digit in range(10):
        of_digit = base[target == digit]
        for r, degrees in enumerate(ROTATIONS):
            images.append(np.rot90(of_digit, k=r, axes=(1, 2)))
            labels.append(np.full(len(of_digit), 4 * digit + r, dtype=np.int64))
            names.append(f"{digit}@{degrees}")
    return ClassDataset(
        images=np.ascontiguousarray(np.concatenate(images)[:, None]),
        labels=np.concatenate(labels),
        class_names=tuple(names),
    )


def font_glyphs(
    n_classes: int | None = None, per_class: int = 20, size: int = 28, seed: int = 0, cache: bool = True
) -> ClassDataset:
    """Omniglot-like letters rendered from the DejaVu fonts: ``n_classes`` classes (all of
    :func:`available_glyphs` when None, else a seeded choice) x ``per_class`` distorted renderings,
    grayscale [N, 1, size, size] in [0, 1] (ink is 1). Class names are the letters themselves.

    Deterministic from ``seed``; rendered once and cached (see :mod:`podium.metalearn.glyphs`)."""
    available = glyphs.available_glyphs()
    if n_classes is not None and not 1 <= n_classes <= len(available):
        raise InvalidConfig(
            f"n_classes={n_classes} is not in 1..{len(available)} (the letters all the fonts have)",
            field="n_classes",
        )
    if per_class < 1:
        raise InvalidConfig(f"per_class={per_class} must be at least 1", field="per_class")
    if size < 8:
        raise InvalidConfig(f"size={size} must be at least 8 pixels", field="size")
    if n_classes is None or n_classes == len(available):
        chars = available
    else:
        pick = np.random.default_rng(seed).choice(len(available), size=n_classes, replace=False)
        chars = tuple(available[i] for i in sorted(pick))
    images = glyphs.render_classes(chars, per_class, size, seed, cache=cache)
    return ClassDataset(
        images=images.reshape(-1, 1, size, size),
        labels=np.repeat(np.arange(len(chars), dtype=np.int64), per_class),
        class_names=chars,
    )


def available_glyphs() -> tuple[str, ...]:
    """The letters :func:`font_glyphs` can render as classes (> 1,000 with the DejaVu fonts)."""
    return glyphs.available_glyphs()


def split_classes(
    ds: ClassDataset, fractions: Sequence[float] = (0.6, 0.2, 0.2), seed: int = 0
) -> tuple[ClassDataset, ClassDataset, ClassDataset]:
    """Meta-train, meta-validation and meta-test sets holding disjoint, seeded-random shares of the classes.

    Class counts follow ``fractions`` by largest remainder, so they always add up to ``ds.n_classes``."""
    shares = [float(f) for f in fractions]
    if len(shares) != 3 or any(not math.isfinite(f) or f < 0 for f in shares) or abs(sum(shares) - 1) > 1e-6:
        raise InvalidConfig(
            f"fractions={tuple(fractions)} must be three non-negative shares adding up to 1",
            field="fractions", hint="e.g. (0.6, 0.2, 0.2)",
        )
    exact = [f * ds.n_classes for f in shares]
    counts = [math.floor(e) for e in exact]
    for i in sorted(range(3), key=lambda i: (counts[i] - exact[i], i))[: ds.n_classes - sum(counts)]:
        counts[i] += 1
    order = np.random.default_rng(seed).permutation(ds.n_classes)
    train, val, test = np.split(order, [counts[0], counts[0] + counts[1]])
    return ds.subset(train.tolist()), ds.subset(val.tolist()), ds.subset(test.tolist())


BUILTIN: dict[str, Callable[[], ClassDataset]] = {"rotated-digits": rotated_digits, "font-glyphs": font_glyphs}


@dataclass(frozen=True)
class SinusoidTasks:
    """The MAML paper's regression tasks: y = amplitude * sin(x - phase), x uniform on ``x_range``."""

    amplitude: tuple[float, float] = (0.1, 5.0)
    phase: tuple[float, float] = (0.0, math.pi)
    x_range: tuple[float, float] = (-5.0, 5.0)

    def __post_init__(self) -> None:
        for name in ("amplitude", "phase", "x_range"):
            low, high = getattr(self, name)
            if not low <= high:
                raise InvalidConfig(f"{name}=({low}, {high}) must have low <= high", field=name)

    def params(self, batch: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Amplitude and phase of ``batch`` tasks, each float64 [batch] (drawn first by :meth:`sample`)."""
        return rng.uniform(*self.amplitude, size=batch), rng.uniform(*self.phase, size=batch)

    def sample(
        self, batch: int, k_support: int, k_query: int, rng: np.random.Generator | int | None = None,
        query_grid: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(xs [B,K,1], ys [B,K,1], xq [B,Q,1], yq [B,Q,1])`` float32 for ``batch`` new tasks.

        ``query_grid`` puts the queries on Q evenly spaced points of ``x_range`` (the paper's evaluation)."""
        for name, value, least in (("batch", batch, 1), ("k_support", k_support, 1), ("k_query", k_query, 1)):
            if value < least:
                raise InvalidConfig(f"{name}={value} must be at least {least}", field=name)
        gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        amplitude, phase = self.params(batch, gen)
        xs = gen.uniform(*self.x_range, size=(batch, k_support))
        if query_grid:
            xq = np.broadcast_to(np.linspace(*self.x_range, k_query), (batch, k_query))
        else:
            xq = gen.uniform(*self.x_range, size=(batch, k_query))

        def tensor(values: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(np.ascontiguousarray(values, dtype=np.float32)[..., None])

        def wave(x: np.ndarray) -> np.ndarray:
            return amplitude[:, None] * np.sin(x - phase[:, None])

        return tensor(xs), tensor(wave(xs)), tensor(xq), tensor(wave(xq))
