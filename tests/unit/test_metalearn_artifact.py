"""Adapted meta-learned models saved as Podium artifacts, and the learned initialisation round trip."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from podium.artifacts import load_submission, save_submission
from podium.metalearn.algorithms import MetaConfig, MetaLearner
from podium.metalearn.artifact import INIT_JSON, adapted_module, load_initialisation, save_initialisation
from podium.metalearn.nets import Conv4, SineMLP

torch.set_num_threads(1)


def _learner(algorithm: str) -> MetaLearner:
    torch.manual_seed(0)
    return MetaLearner(Conv4(1, 3, 6, 8), MetaConfig(algorithm=algorithm, test_steps=3, inner_lr=0.2))  # type: ignore[arg-type]


def _support() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.random((6, 64), dtype=np.float32), np.array([0, 0, 1, 1, 2, 2])


@pytest.mark.parametrize("algorithm", ["maml", "protonet"])
def test_adapted_classifier_saves_as_torch_export_and_predicts_the_same_after_loading(algorithm: str, tmp_path) -> None:
    xs, ys = _support()
    module = adapted_module(_learner(algorithm), xs, ys)
    rows = np.random.default_rng(1).random((9, 64), dtype=np.float32)
    manifest = save_submission(module, tmp_path / "a", example_data=rows[:4], class_labels=["x", "y", "z"], task="classification")
    assert manifest.model.format == "torch.export"
    loaded = load_submission(tmp_path / "a").predict(rows)
    with torch.no_grad():
        live = torch.softmax(module(torch.from_numpy(rows)), -1).numpy()
    assert loaded.proba is not None
    np.testing.assert_allclose(loaded.proba, live, rtol=1e-5, atol=1e-6)
    assert list(loaded.labels) == [["x", "y", "z"][i] for i in live.argmax(1)]


def test_adapted_classifier_fits_the_support_set_and_scores_each_row_on_its_own() -> None:
    xs, ys = _support()
    learner = _learner("maml")
    module = adapted_module(learner, xs, ys, steps=30)
    with torch.no_grad():
        scores = module(torch.from_numpy(xs))
        alone = torch.cat([module(torch.from_numpy(xs[i : i + 1])) for i in range(len(xs))])
    assert scores.argmax(1).tolist() == ys.tolist()  # 30 steps at lr 0.2 memorise six points
    torch.testing.assert_close(scores, alone, rtol=1e-5, atol=1e-6)  # support-set statistics, not the batch's


def test_batch_statistics_mode_equals_the_learners_own_prediction() -> None:
    xs, ys = _support()
    learner = _learner("fomaml")
    module = adapted_module(learner, xs, ys, batch_norm="batch")
    images = torch.from_numpy(xs).reshape(-1, 1, 8, 8)
    expected = learner.predict(learner.adapt(images, torch.from_numpy(ys)), images)
    with torch.no_grad():
        torch.testing.assert_close(module(torch.from_numpy(xs)), expected)


def test_adapted_regressor_returns_one_value_per_row_and_survives_saving(tmp_path) -> None:
    torch.manual_seed(0)
    learner = MetaLearner(SineMLP(), MetaConfig(algorithm="maml"), "mse")
    x = np.linspace(-5, 5, 10, dtype=np.float32)[:, None]
    module = adapted_module(learner, x, np.sin(x))
    grid = np.linspace(-4, 4, 7, dtype=np.float32)[:, None]
    with torch.no_grad():
        live = module(torch.from_numpy(grid)).numpy()
    assert live.shape == (7,)
    save_submission(module, tmp_path / "r", example_data=grid[:3], task="regression")
    loaded = load_submission(tmp_path / "r").predict(grid)
    np.testing.assert_allclose(np.asarray(loaded.labels, dtype=np.float32), live, rtol=1e-5, atol=1e-6)


def test_bad_support_shape_names_the_field() -> None:
    with pytest.raises(ValueError, match="support_x"):
        adapted_module(_learner("maml"), np.zeros((6, 10), dtype=np.float32), np.zeros(6))


@pytest.mark.parametrize("algorithm", ["reptile", "protonet"])
def test_initialisation_round_trip_restores_weights_config_and_adaptation(algorithm: str, tmp_path) -> None:
    learner = _learner(algorithm)
    learner.iteration = 42
    save_initialisation(learner, tmp_path / "init")
    meta = json.loads((tmp_path / "init" / INIT_JSON).read_text())
    assert meta["net"] == "Conv4" and meta["config"]["algorithm"] == algorithm
    again = load_initialisation(tmp_path / "init")
    assert again.config == learner.config and again.iteration == 42
    for (name, p), q in zip(learner.net.state_dict().items(), again.net.state_dict().values(), strict=True):
        assert torch.equal(p, q), name
    xs, ys = _support()
    images, labels = torch.from_numpy(xs).reshape(-1, 1, 8, 8), torch.from_numpy(ys)
    first, second = learner.adapt(images, labels), again.adapt(images, labels)
    for key in first:
        torch.testing.assert_close(first[key], second[key])


def test_initialisation_never_names_an_arbitrary_class(tmp_path) -> None:
    save_initialisation(_learner("maml"), tmp_path / "init")
    meta = json.loads((tmp_path / "init" / INIT_JSON).read_text())
    (tmp_path / "init" / INIT_JSON).write_text(json.dumps({**meta, "net": "os:system"}))
    with pytest.raises(ValueError, match="unknown network"):
        load_initialisation(tmp_path / "init")
