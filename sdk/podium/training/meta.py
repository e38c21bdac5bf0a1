"""Few-shot training in the Job: meta-train on a built-in data set's meta-train classes, then adapt the learned
initialisation on the playground's training data (its support set) and return that model to save."""

from __future__ import annotations

from typing import Any

import numpy as np

from podium.api.training import MetaHyperparameters
from podium.training.inputs import TrainingInputError
from podium.training.report import Reporter, load_checkpoint, save_checkpoint
from podium.training.wire import TrainArgs


def _support(features: Any, labels: np.ndarray, class_labels: list[Any], task: str,
             shape: tuple[int, ...]) -> tuple[Any, Any]:
    """The playground's training rows as the support set: images of ``shape`` and class indices."""
    import torch

    rows = np.asarray(features, dtype=np.float32)
    width = int(np.prod(shape))
    if rows.ndim != 2 or rows.shape[1] != width:
        raise TrainingInputError(
            f"the training features have {rows.shape[1] if rows.ndim == 2 else rows.shape} columns, but the meta "
            f"data set's inputs are {'x'.join(map(str, shape))} = {width} values",
            field="data.features", hint="give one flattened input per row, as the meta data set has them "
            "(hyperparameters.metaDataset)")
    if not np.isfinite(rows).all():
        raise TrainingInputError("the training features hold NaN or infinite values", field="data.features",
                                 hint="give finite numbers")
    if task == "regression":
        targets = np.asarray(labels, dtype=np.float32)
        return torch.from_numpy(rows.reshape(-1, *shape)), torch.from_numpy(targets.reshape(-1, 1))
    index = {str(label): i for i, label in enumerate(class_labels)}
    unknown = sorted({str(label) for label in labels} - set(index))
    if unknown:
        raise TrainingInputError(f"labels {unknown[:5]} are not among the playground's classLabels",
                                 field="data.labels", hint="label each row with one of the playground's classes")
    ys = np.array([index[str(label)] for label in labels], dtype=np.int64)
    missing = [str(class_labels[i]) for i in range(len(class_labels)) if i not in set(ys.tolist())]
    if missing:
        raise TrainingInputError(f"no training example of classes {missing[:5]}", field="data.labels",
                                 hint="give at least one example (a shot) of every class")
    return torch.from_numpy(rows.reshape(-1, *shape)), torch.from_numpy(ys)


def train_meta(args: TrainArgs, settings: MetaHyperparameters, features: Any, labels: np.ndarray,
               class_labels: list[Any], reporter: Reporter, device: str) -> tuple[Any, np.ndarray, dict[str, Any]]:
    """The adapted model, an example input and the history (the learning curve)."""
    import torch

    from podium.metalearn.algorithms import MetaConfig, MetaLearner, meta_train
    from podium.metalearn.artifact import adapted_module
    from podium.metalearn.data import BUILTIN, SinusoidTasks, split_classes
    from podium.metalearn.episodes import EpisodeSampler
    from podium.metalearn.nets import Conv4, SineMLP

    torch.manual_seed(settings.seed)
    regression = settings.meta_dataset == "sinusoid"
    if regression != (args.task == "regression"):
        raise TrainingInputError(
            f"metaDataset {settings.meta_dataset} is for {'regression' if regression else 'classification'}, "
            f"but the playground's task is {args.task}", field="hyperparameters.metaDataset",
            hint="use sinusoid for regression playgrounds, rotated-digits or font-glyphs for classification")
    config = MetaConfig(algorithm=args.algorithm, inner_lr=settings.inner_lr, inner_steps=settings.inner_steps,  # type: ignore[arg-type]
                        outer_lr=settings.outer_lr, meta_batch=settings.meta_batch, iterations=settings.iterations,
                        test_steps=settings.test_steps, seed=settings.seed)
    if regression:
        tasks = SinusoidTasks()
        shape: tuple[int, ...] = (1,)
        learner = MetaLearner(SineMLP(), config, "mse", device)

        def sample() -> Any:  # the learner's generator: a resumed run continues its sequence of tasks
            return tasks.sample(settings.meta_batch, settings.k_shot, settings.queries, learner.rng)

        def validate() -> float:
            return float(learner.evaluate(tasks, settings.validation_episodes, k_support=settings.k_shot,
                                          k_query=100, rng=np.random.default_rng(settings.seed + 1))[0])
    else:
        dataset = BUILTIN[settings.meta_dataset]()
        meta_train_set, meta_val_set, _ = split_classes(dataset, seed=settings.seed)
        n_way = len(class_labels)
        train_way = settings.train_way if args.algorithm == "protonet" and settings.train_way else n_way
        if train_way > meta_train_set.n_classes:
            raise TrainingInputError(
                f"{train_way}-way episodes need {train_way} meta-train classes; {settings.meta_dataset} has "
                f"{meta_train_set.n_classes}", field="hyperparameters.metaDataset", hint="use font-glyphs")
        shape = tuple(int(n) for n in dataset.images.shape[1:])
        sampler = EpisodeSampler(meta_train_set, n_way=train_way, k_shot=settings.k_shot,
                                 queries=settings.queries, seed=settings.seed)
        val_sampler = EpisodeSampler(meta_val_set, n_way=min(n_way, meta_val_set.n_classes),
                                     k_shot=settings.k_shot, queries=settings.queries, seed=settings.seed + 1)
        net = Conv4(in_channels=shape[0], n_way=train_way, hidden=settings.hidden, image_size=shape[-1])
        learner = MetaLearner(net, config, "cross_entropy", device)
        sampler.rng = learner.rng  # the learner's generator: a resumed run continues its sequence of episodes

        def sample() -> Any:
            return sampler.sample(settings.meta_batch)

        def validate() -> float:
            return float(learner.evaluate(val_sampler, settings.validation_episodes)[0])
    support_x, support_y = _support(features, labels, class_labels, args.task, shape)

    history: list[dict[str, Any]] = []
    state = load_checkpoint(args.checkpoint)
    if state is not None:
        learner.load_state_dict(state["learner"])
        history = list(state.get("history") or [])
        print(f"resuming from the checkpoint at iteration {learner.iteration}", flush=True)

    def on_progress(point: dict[str, Any]) -> None:
        history.append({k: v for k, v in point.items() if v is not None})
        reporter.update(state="training", iteration=point.get("iteration"), iterations=settings.iterations,
                        loss=point.get("loss"), validation=point.get("validation"))

    def checkpoint(learner_state: dict[str, Any]) -> None:
        save_checkpoint(args.checkpoint_put, {"learner": learner_state, "history": history})

    meta_train(learner, sample, iterations=settings.iterations, on_progress=on_progress, validate=validate,
               validate_every=settings.validate_every, checkpoint=checkpoint,
               checkpoint_every=settings.checkpoint_every)
    if args.initialisation:  # for adapt(support_set) on other tasks: podium.metalearn.artifact.load_initialisation
        _upload_initialisation(learner, args.initialisation)
    module = adapted_module(learner, support_x, support_y)
    example = np.asarray(features, dtype=np.float32)[:5]
    return module, example, {"algorithm": args.algorithm, "device": device, "curve": history}


def _upload_initialisation(learner: Any, url: str) -> None:
    import tempfile
    from pathlib import Path

    from podium import storage
    from podium.artifacts.archive import pack
    from podium.metalearn.artifact import save_initialisation

    with tempfile.TemporaryDirectory(prefix="podium-init-") as scratch:
        save_initialisation(learner, Path(scratch) / "init")
        storage.upload(pack(Path(scratch) / "init", Path(scratch) / "initialisation.tar.gz"), url)
