"""Few-shot data: class splits, episode samplers, rotated digits, font glyphs, sinusoid tasks."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from podium.errors import InvalidConfig
from podium.metalearn import data
from podium.metalearn.data import (
    BUILTIN,
    ClassDataset,
    SinusoidTasks,
    font_glyphs,
    rotated_digits,
    split_classes,
)
from podium.metalearn.episodes import Episodes, EpisodeSampler


def toy(n_classes: int = 12, per_class: int = 7, uneven: bool = False) -> ClassDataset:
    """Every image is unique: pixel [0, 0, 0] holds its own index, so it can be traced back."""
    counts = [per_class + (c % 3 if uneven else 0) for c in range(n_classes)]
    labels = np.repeat(np.arange(n_classes), counts).astype(np.int64)
    rng = np.random.default_rng(0)
    labels = labels[rng.permutation(len(labels))]  # classes interleaved, as in a real data set
    images = np.zeros((len(labels), 1, 3, 3), dtype=np.float32)
    images[:, 0, 0, 0] = np.arange(len(labels))
    return ClassDataset(images=images, labels=labels, class_names=tuple(f"c{c}" for c in range(n_classes)))


@pytest.fixture(scope="module")
def digits() -> ClassDataset:
    return rotated_digits()


# --- class splits ------------------------------------------------------------------------------------

fraction_triples = st.tuples(*[st.integers(0, 20)] * 3).filter(lambda t: sum(t) > 0).map(
    lambda t: tuple(v / sum(t) for v in t)
)


@settings(max_examples=60, deadline=None)
@given(fractions=fraction_triples, seed=st.integers(0, 2**32 - 1), n_classes=st.integers(1, 40))
def test_split_classes_are_disjoint_and_cover_every_class(fractions, seed, n_classes):
    ds = toy(n_classes=n_classes, per_class=2)
    parts = split_classes(ds, fractions, seed=seed)
    names = [set(part.class_names) for part in parts]
    assert sum(map(len, names)) == n_classes and set().union(*names) == set(ds.class_names)  # disjoint, all
    for part, share in zip(parts, fractions, strict=True):
        assert abs(part.n_classes - share * n_classes) < 1  # largest remainder: within one class
        assert sorted(set(part.labels.tolist())) == list(range(part.n_classes))  # relabelled 0..k-1
        for image, label in zip(part.images, part.labels, strict=True):  # each image kept with its class
            assert part.class_names[label] == ds.class_names[ds.labels[int(image[0, 0, 0])]]
    assert [p.class_names for p in split_classes(ds, fractions, seed=seed)] == [p.class_names for p in parts]


def test_split_classes_of_real_digits_keep_every_image(digits):
    train, val, test = split_classes(digits, (0.6, 0.2, 0.2), seed=3)
    assert (train.n_classes, val.n_classes, test.n_classes) == (24, 8, 8)
    assert len(train.images) + len(val.images) + len(test.images) == len(digits.images)
    assert not set(train.class_names) & set(test.class_names)


@pytest.mark.parametrize("fractions", [(0.5, 0.5), (0.6, 0.6, -0.2), (0.5, 0.2, 0.2), (float("nan"), 0.5, 0.5)])
def test_split_classes_rejects_bad_fractions(fractions):
    with pytest.raises(InvalidConfig, match="^fractions:"):
        split_classes(toy(), fractions)


def test_subset_relabels_in_the_given_order():
    ds = toy(n_classes=5)
    sub = ds.subset([3, 1])
    assert sub.class_names == ("c3", "c1") and sub.n_classes == 2
    assert (sub.labels == (ds.labels[sub.images[:, 0, 0, 0].astype(int)] == 1)).all()  # c1 is label 1 now
    with pytest.raises(InvalidConfig, match="^classes:"):
        ds.subset([1, 1])


# --- episode sampler ---------------------------------------------------------------------------------

def test_episode_shapes_and_label_ranges(digits):
    episodes = EpisodeSampler(digits, n_way=5, k_shot=2, queries=3, seed=0).sample(4)
    assert isinstance(episodes, Episodes)
    assert episodes.xs.shape == (4, 10, 1, 8, 8) and episodes.xq.shape == (4, 15, 1, 8, 8)
    assert episodes.ys.shape == (4, 10) and episodes.yq.shape == (4, 15)
    assert episodes.xs.dtype == torch.float32 and episodes.ys.dtype == torch.int64
    for labels, per in ((episodes.ys, 2), (episodes.yq, 3)):
        assert (torch.bincount(labels[0], minlength=5) == per).all() and int(labels.max()) == 4


@settings(max_examples=40, deadline=None)
@given(n_way=st.integers(1, 12), k_shot=st.integers(1, 4), queries=st.integers(1, 3),
       batch=st.integers(1, 4), seed=st.integers(0, 2**32 - 1), uneven=st.booleans())
def test_each_episode_draws_support_and_query_from_the_same_distinct_classes(
    n_way, k_shot, queries, batch, seed, uneven
):
    ds = toy(n_classes=12, per_class=7, uneven=uneven)
    episodes = EpisodeSampler(ds, n_way=n_way, k_shot=k_shot, queries=queries, seed=seed).sample(batch)
    for b in range(batch):
        support = episodes.xs[b, :, 0, 0, 0].long().numpy()
        query = episodes.xq[b, :, 0, 0, 0].long().numpy()
        assert len(set(support)) == len(support) and len(set(query)) == len(query)  # no image twice
        assert not set(support) & set(query)  # no image in both
        # label i is one and the same true class in support and query, and the N classes are distinct
        pairs = {(int(y), int(ds.labels[i])) for y, i in zip(episodes.ys[b], support, strict=True)}
        pairs |= {(int(y), int(ds.labels[i])) for y, i in zip(episodes.yq[b], query, strict=True)}
        assert len(pairs) == n_way == len({c for _, c in pairs}) == len({y for y, _ in pairs})


def test_sampler_is_deterministic_by_seed_and_varies_by_episode(digits):
    def draw(seed):
        sampler = EpisodeSampler(digits, n_way=5, k_shot=1, queries=2, seed=seed)
        return [sampler.sample_indices(3) for _ in range(2)]

    first, again, other = draw(7), draw(7), draw(8)
    assert all((a == b).all() for pa, pb in zip(first, again, strict=True) for a, b in zip(pa, pb, strict=True))
    assert not all((a == b).all() for pa, pb in zip(first, other, strict=True) for a, b in zip(pa, pb, strict=True))
    # labels are shuffled per episode: label 0 names different classes across episodes
    support, _ = first[0]
    assert len({int(digits.labels[support[b, 0, 0]]) for b in range(3)}) > 1


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"n_way": 41, "k_shot": 1, "queries": 1}, "n_way"),
    ({"n_way": 0, "k_shot": 1, "queries": 1}, "n_way"),
    ({"n_way": 5, "k_shot": 0, "queries": 1}, "k_shot"),
    ({"n_way": 5, "k_shot": 1.5, "queries": 1}, "k_shot"),
    ({"n_way": 5, "k_shot": 200, "queries": 1}, "k_shot"),
    ({"n_way": 5, "k_shot": 5, "queries": 190}, "queries"),
])
def test_sampler_names_the_bad_field(digits, kwargs, field):
    with pytest.raises(ValueError, match=f"^{field}:"):
        EpisodeSampler(digits, seed=0, **kwargs)


# --- rotated digits ----------------------------------------------------------------------------------

def test_rotated_digits_are_40_real_rotations(digits):
    assert digits.n_classes == 40 and digits.images.shape[1:] == (1, 8, 8)
    assert digits.images.dtype == np.float32 and digits.labels.dtype == np.int64
    assert digits.images.min() >= 0.0 and digits.images.max() <= 1.0
    for digit in (3, 7):
        base = digits.images[digits.labels == digits.class_names.index(f"{digit}@0"), 0]
        for r, degrees in enumerate(data.ROTATIONS):
            turned = digits.images[digits.labels == digits.class_names.index(f"{digit}@{degrees}"), 0]
            np.testing.assert_array_equal(turned, np.rot90(base, k=r, axes=(1, 2)))
    assert (digits.images[digits.labels == 0] != digits.images[digits.labels == 1]).any()  # 90 deg differs


# --- font glyphs -------------------------------------------------------------------------------------

def test_font_glyphs_offer_over_1000_distinct_classes():
    available = data.available_glyphs()
    assert len(available) >= 1000 and len(set(available)) == len(available)
    assert all(ch.isalpha() for ch in available)


def test_font_glyphs_are_images_in_0_1_and_deterministic(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    ds = font_glyphs(n_classes=6, per_class=4, seed=1)
    assert ds.images.shape == (24, 1, 28, 28) and ds.images.dtype == np.float32 and ds.n_classes == 6
    assert np.isfinite(ds.images).all() and ds.images.min() >= 0.0 and ds.images.max() <= 1.0
    assert (ds.images.reshape(24, -1).max(axis=1) == 1.0).all()  # every sample has ink
    assert len(list((tmp_path / "podium").glob("font-glyphs-*.npy"))) == 1  # cached
    fresh = font_glyphs(n_classes=6, per_class=4, seed=1, cache=False)
    np.testing.assert_array_equal(fresh.images, ds.images)
    assert fresh.class_names == ds.class_names
    other = font_glyphs(n_classes=6, per_class=4, seed=2, cache=False)
    assert other.class_names != ds.class_names or (other.images != ds.images).any()
    # the samples of one class differ (jitter), and differ less than samples of different classes
    flat = ds.images.reshape(6, 4, -1)
    within = np.mean([((flat[c, 0] - flat[c, 1]) ** 2).mean() for c in range(6)])
    between = np.mean([((flat[c, 0] - flat[(c + 1) % 6, 0]) ** 2).mean() for c in range(6)])
    assert 0 < within < between


@pytest.mark.parametrize(("kwargs", "field"), [({"n_classes": 0}, "n_classes"), ({"n_classes": 10**6}, "n_classes"),
                                               ({"per_class": 0}, "per_class")])
def test_font_glyphs_names_the_bad_field(kwargs, field):
    with pytest.raises(InvalidConfig, match=f"^{field}:"):
        font_glyphs(cache=False, **kwargs)


def test_builtin_names_the_loaders():
    assert BUILTIN["rotated-digits"] is rotated_digits and BUILTIN["font-glyphs"] is font_glyphs


# --- sinusoid tasks ----------------------------------------------------------------------------------

def test_sinusoid_tasks_shapes_and_parameter_ranges():
    tasks = SinusoidTasks()
    amplitude, phase = tasks.params(500, np.random.default_rng(0))
    assert amplitude.min() >= 0.1 and amplitude.max() <= 5.0 and phase.min() >= 0 and phase.max() <= math.pi
    xs, ys, xq, yq = tasks.sample(500, 10, 15, np.random.default_rng(0))
    assert [t.shape for t in (xs, ys, xq, yq)] == [(500, 10, 1), (500, 10, 1), (500, 15, 1), (500, 15, 1)]
    assert all(t.dtype == torch.float32 for t in (xs, ys, xq, yq))
    assert float(xs.min()) >= -5 and float(xq.max()) <= 5
    # the values are the task's wave: the same parameters as params() drew from the same generator
    expected = amplitude[:, None] * np.sin(xq[..., 0].double().numpy() - phase[:, None])
    np.testing.assert_allclose(yq[..., 0].numpy(), expected, rtol=1e-5, atol=1e-5)
    assert (ys.abs()[..., 0] <= torch.from_numpy(amplitude).float()[:, None] + 1e-5).all()


def test_sinusoid_query_grid_and_bad_input():
    _, _, xq, _ = SinusoidTasks().sample(2, 5, 100, 0, query_grid=True)
    np.testing.assert_allclose(xq[1, :, 0].numpy(), np.linspace(-5, 5, 100), atol=1e-6)
    with pytest.raises(InvalidConfig, match="^k_support:"):
        SinusoidTasks().sample(2, 0, 5, 0)
    with pytest.raises(InvalidConfig, match="^amplitude:"):
        SinusoidTasks(amplitude=(5.0, 0.1))


def test_class_dataset_from_flat_rows():
    rows = np.arange(4 * 12, dtype=np.float64).reshape(4, 12) / 48
    ds = ClassDataset.from_rows(rows, ["b", "a", "b", "c"], (3, 2, 2))
    assert ds.images.shape == (4, 3, 2, 2) and ds.images.dtype == np.float32
    assert ds.class_names == ("a", "b", "c") and ds.labels.tolist() == [1, 0, 1, 2]
    np.testing.assert_array_equal(ds.images[1].reshape(-1), rows[1].astype(np.float32))
    with pytest.raises(InvalidConfig, match="^shape:"):
        ClassDataset.from_rows(rows, [0, 1, 2, 3], (1, 3, 3))
    with pytest.raises(InvalidConfig, match="^labels:"):
        ClassDataset(images=np.zeros((2, 1, 2, 2), np.float32), labels=np.array([0, 1]), class_names=("x",))


def test_font_folder_is_found_or_named_with_the_fix(tmp_path, monkeypatch):
    from podium.metalearn import glyphs

    found = glyphs.font_dir()
    for name in glyphs.FONT_FILES:
        (tmp_path / name).symlink_to(found / name)
    monkeypatch.setenv("PODIUM_FONT_DIR", str(tmp_path))
    assert glyphs.font_dir() == tmp_path  # the override comes first
    (tmp_path / glyphs.FONT_FILES[-1]).unlink()
    monkeypatch.setattr(glyphs, "SYSTEM_FONT_DIRS", ())
    monkeypatch.setattr(glyphs.importlib.util, "find_spec", lambda name: None)  # as if matplotlib were absent
    with pytest.raises(InvalidConfig, match="^font_glyphs: .*Fix: pip install matplotlib"):
        glyphs.font_dir()
