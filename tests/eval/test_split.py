"""Properties of the public/private split: stratified, stable, disjoint, covering, serialisable."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from podium.errors import InvalidConfig, InvalidHoldout
from podium.split import HoldoutSplit, compute_split

SETTINGS = settings(max_examples=60, deadline=None)

holdouts = st.lists(st.sampled_from(["cat", "dog", "eel", "fox"]), min_size=1, max_size=300).map(np.array)
fractions = st.floats(0.01, 0.99)
seeds = st.integers(0, 2**63 - 1)


@SETTINGS
@given(holdouts, fractions, seeds)
def test_split_is_disjoint_covering_sorted_and_stratified(
    labels: np.ndarray, fraction: float, seed: int
) -> None:
    split = compute_split(labels, private_fraction=fraction, seed=seed)
    assert np.intersect1d(split.public, split.private).size == 0
    assert np.array_equal(np.sort(np.concatenate([split.public, split.private])), np.arange(len(labels)))
    assert np.all(np.diff(split.public) > 0) and np.all(np.diff(split.private) > 0)
    for label in np.unique(labels):
        in_class = np.flatnonzero(labels == label)
        private = np.isin(in_class, split.private).sum()
        assert abs(private - fraction * len(in_class)) <= 0.5 + 1e-9  # round(), so within ±1 per class


@SETTINGS
@given(holdouts, fractions, seeds, st.integers(0, 2**32 - 1))
def test_a_row_keeps_its_side_whatever_the_order(
    labels: np.ndarray, fraction: float, seed: int, shuffle: int
) -> None:
    ids = np.arange(1000, 1000 + len(labels))
    split = compute_split(labels, private_fraction=fraction, seed=seed, row_ids=ids)
    order = np.random.default_rng(shuffle).permutation(len(labels))
    shuffled = compute_split(labels[order], private_fraction=fraction, seed=seed, row_ids=ids[order])
    assert set(ids[split.private]) == set(ids[order][shuffled.private])
    again = compute_split(labels, private_fraction=fraction, seed=seed, row_ids=ids)
    assert np.array_equal(again.private, split.private)


@SETTINGS
@given(st.integers(1, 500), fractions, seeds)
def test_unstratified_split_honours_the_fraction(n: int, fraction: float, seed: int) -> None:
    split = compute_split(np.linspace(0, 1, n), private_fraction=fraction, seed=seed, stratify=False)
    assert len(split.private) == round(fraction * n)
    assert split.n_rows == n


def test_the_split_depends_on_the_seed_and_is_random_looking() -> None:
    labels = np.repeat(["a", "b"], 500)
    first = compute_split(labels, private_fraction=0.5, seed=1)
    second = compute_split(labels, private_fraction=0.5, seed=2)
    assert not np.array_equal(first.private, second.private)
    # Neither the first rows nor every other row: private rows are spread across the holdout.
    assert 150 < np.sum(first.private < 500) < 350
    assert 0.3 < np.mean(first.private % 2) < 0.7


def test_the_split_is_fixed_across_versions() -> None:
    # Pinned: changing the key derivation would silently move rows between the two leaderboards.
    split = compute_split(np.zeros(10, dtype=int), private_fraction=0.3, seed=42)
    assert split.private.tolist() == EXPECTED_PRIVATE_SEED_42


EXPECTED_PRIVATE_SEED_42 = [1, 2, 4]


def test_round_trip_through_json(tmp_path) -> None:
    split = compute_split(np.array([0, 1, 1, 0, 1]), private_fraction=0.4, seed=7)
    loaded = HoldoutSplit.load(split.save(tmp_path / "split.json"))
    assert np.array_equal(loaded.public, split.public) and np.array_equal(loaded.private, split.private)
    assert (loaded.seed, loaded.private_fraction, loaded.stratified) == (7, 0.4, True)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '{"n_rows": 3, "private_fraction": 0.5, "seed": 1, "stratified": true, "public": [0], "private": [0, 2]}',
            "exactly once",
        ),
        (
            '{"n_rows": 2, "private_fraction": 0.5, "seed": 1, "stratified": true, "public": [0], "private": [5]}',
            "exactly once",
        ),
        ('{"n_rows": 2}', "malformed"),
        ("not json", "malformed"),
    ],
)
def test_malformed_split_files_are_rejected(text: str, message: str) -> None:
    with pytest.raises(InvalidHoldout, match=message):
        HoldoutSplit.from_json(text)


def test_missing_split_file(tmp_path) -> None:
    with pytest.raises(InvalidHoldout, match="does not exist"):
        HoldoutSplit.load(tmp_path / "nope.json")


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 1.5])
def test_fraction_must_be_strictly_between_0_and_1(fraction: float) -> None:
    with pytest.raises(InvalidConfig, match="strictly between 0 and 1"):
        compute_split(["a", "b"], private_fraction=fraction, seed=0)


def test_empty_holdout_is_rejected() -> None:
    with pytest.raises(InvalidHoldout, match="cannot split") as raised:
        compute_split([], private_fraction=0.5, seed=0)
    assert "Fix:" in str(raised.value)


def test_continuous_labels_cannot_be_stratified() -> None:
    with pytest.raises(InvalidConfig, match="stratify=False"):
        compute_split([0.5, 1.5], private_fraction=0.5, seed=0)


@pytest.mark.parametrize("ids", [[1, 1], [1.0, 2.0], [1]])
def test_row_ids_must_be_unique_integers_one_per_row(ids: list) -> None:
    with pytest.raises(InvalidHoldout, match="row ids"):
        compute_split(["a", "b"], private_fraction=0.5, seed=0, row_ids=ids)
