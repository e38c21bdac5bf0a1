"""Episodic N-way K-shot sampling from a :class:`~podium.metalearn.data.ClassDataset`.

An episode draws ``n_way`` distinct classes in random order (so label i names a different class in every
episode), then ``k_shot + queries`` distinct images of each: the first ``k_shot`` are the support set,
the rest the query set, so no image is in both. Rows are class-major: ``ys = [0]*K + [1]*K + ...``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from podium.errors import InvalidConfig
from podium.metalearn.data import ClassDataset


class Episodes(NamedTuple):
    """A batch of B episodes: ``xs [B, N*K, C, H, W]``, ``ys [B, N*K]`` int64 in 0..N-1,
    ``xq [B, N*Q, C, H, W]``, ``yq [B, N*Q]``."""

    xs: torch.Tensor
    ys: torch.Tensor
    xq: torch.Tensor
    yq: torch.Tensor

    def to(self, device: str | torch.device) -> Episodes:
        return Episodes(*(t.to(device, non_blocking=True) for t in self))


class EpisodeSampler:
    """Seeded N-way K-shot episodes from ``ds``: ``sample(batch)`` gives the next :class:`Episodes`."""

    def __init__(self, ds: ClassDataset, n_way: int, k_shot: int, queries: int, seed: int = 0) -> None:
        for name, value in (("n_way", n_way), ("k_shot", k_shot), ("queries", queries)):
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
                raise InvalidConfig(f"{name}={value!r} must be a whole number of at least 1", field=name)
        if n_way > ds.n_classes:
            raise InvalidConfig(
                f"n_way={n_way} is more than the {ds.n_classes} classes of the data set", field="n_way",
                hint=f"use n_way <= {ds.n_classes}, or a split with more classes",
            )
        counts = np.bincount(ds.labels, minlength=ds.n_classes)
        smallest = int(counts.argmin())
        if counts[smallest] < k_shot + queries:
            raise InvalidConfig(
                f"k_shot + queries = {k_shot + queries} is more than the {counts[smallest]} images of class "
                f"{ds.class_names[smallest]!r}",
                field="k_shot" if k_shot > counts[smallest] else "queries",
                hint=f"use k_shot + queries <= {counts[smallest]}",
            )
        self.ds, self.n_way, self.k_shot, self.queries = ds, int(n_way), int(k_shot), int(queries)
        self.rng = np.random.default_rng(seed)
        # members[c, :counts[c]] are the indices of class c's images (padding -1 beyond)
        order = np.argsort(ds.labels, kind="stable")
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        self._counts = counts
        width = np.arange(int(counts.max()))
        self._members = np.where(
            width < counts[:, None], order[np.minimum(starts[:, None] + width, len(order) - 1)], -1
        )

    def sample_indices(self, batch: int) -> tuple[np.ndarray, np.ndarray]:
        """Image indices of ``batch`` episodes: support [B, N, K] and query [B, N, Q]."""
        if batch < 1:
            raise InvalidConfig(f"batch={batch} must be at least 1", field="batch")
        n, per = self.n_way, self.k_shot + self.queries
        # n distinct classes per episode: the first n of a random permutation
        classes = np.argsort(self.rng.random((batch, self.ds.n_classes)), axis=1)[:, :n]
        # per distinct images per class: the smallest random keys among the class's members
        keys = self.rng.random((batch, n, self._members.shape[1]))
        keys[np.arange(self._members.shape[1]) >= self._counts[classes][..., None]] = np.inf
        picks = np.argsort(keys, axis=2)[..., :per]
        chosen = self._members[classes[..., None], picks]
        return chosen[..., : self.k_shot], chosen[..., self.k_shot :]

    def sample(self, batch: int = 1) -> Episodes:
        support, query = self.sample_indices(batch)
        images = self.ds.images
        shape = images.shape[1:]
        labels = torch.arange(self.n_way, dtype=torch.int64)
        return Episodes(
            xs=torch.from_numpy(images[support.reshape(-1)].reshape(batch, -1, *shape)),
            ys=labels.repeat_interleave(self.k_shot).expand(batch, -1).contiguous(),
            xq=torch.from_numpy(images[query.reshape(-1)].reshape(batch, -1, *shape)),
            yq=labels.repeat_interleave(self.queries).expand(batch, -1).contiguous(),
        )

    __call__ = sample
