"""A few-shot playground's data: classes from the meta-test split of rotated digits (never meta-trained on)."""

from __future__ import annotations

import numpy as np

from podium.metalearn.data import rotated_digits, split_classes


def few_shot_task(n_way: int = 5, shots: int = 5, holdout: int = 30, seed: int = 0):
    """``(support_x, support_y, holdout_x, holdout_y, class_names)``: flat 64-column rows, string labels."""
    _, _, test = split_classes(rotated_digits(), seed=0)  # the trainer's default split (seed 0)
    rng = np.random.default_rng(seed)
    classes = rng.choice(test.n_classes, size=n_way, replace=False)
    sx, sy, hx, hy = [], [], [], []
    for c in classes:
        index = rng.permutation(np.flatnonzero(test.labels == c))
        name = test.class_names[c]
        sx.append(test.images[index[:shots]].reshape(shots, -1))
        hx.append(test.images[index[shots:shots + holdout]].reshape(holdout, -1))
        sy += [name] * shots
        hy += [name] * holdout
    names = [test.class_names[c] for c in classes]
    return np.concatenate(sx), np.array(sy), np.concatenate(hx), np.array(hy), names
