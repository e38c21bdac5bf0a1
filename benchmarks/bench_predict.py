"""Benchmark the untrusted predict step against each framework's own in-memory predict.

    python benchmarks/bench_predict.py [--rows 100000] [--features 20] [--frameworks sklearn,keras,pytorch,onnx]
    taskset -c 0 python benchmarks/bench_predict.py --clock cpu    # steady figures on a shared machine

For every framework a small classifier is trained on synthetic data, saved with
``save_submission`` and run through ``run_predict`` on a ``--rows`` x ``--features`` holdout
stored as ``.npy`` (or ``--format csv``). The baseline is the framework's native in-memory
prediction of class probabilities on the same array (Keras and PyTorch in batches of ``--batch-rows``,
as Podium runs them), so ``ratio = podium / native`` shows the
step's overhead: loading the artifact, reading the file, batching, converting outputs and
writing ``predictions.npz``; the next columns split Podium's time into those stages. The last two
run the same step on the artifact's ONNX export (``run_predict(..., runtime="onnx")``), where it has one.
Each figure is the best of ``--repeat`` runs, native and Podium interleaved so both see the same load;
both sides follow the predict Job's thread rule (:func:`~podium.evaluation.predict.fit_threads_to_cpu_limit`).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from podium.artifacts import save_submission
from podium.evaluation.predict import DEFAULT_BATCH_ROWS, fit_threads_to_cpu_limit, run_predict
from podium.frameworks.base import limited_cpus

FRAMEWORKS = ("sklearn", "keras", "pytorch", "onnx")
TRAIN_ROWS = 5_000
CLASSES = ["a", "b", "c"]
BATCH_ROWS = DEFAULT_BATCH_ROWS  # --batch-rows: Podium's batches and the native Keras/PyTorch ones

Native = Callable[[np.ndarray], Any]


def data(rows: int, features: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.datasets import make_classification

    x, y = make_classification(
        n_samples=TRAIN_ROWS + rows,
        n_features=features,
        n_informative=min(10, features),
        n_classes=3,
        random_state=0,
    )
    x = x.astype(np.float32)
    return x[:TRAIN_ROWS], y[:TRAIN_ROWS], x[TRAIN_ROWS:]


def sklearn_model(x: np.ndarray, y: np.ndarray) -> tuple[Any, Native]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=300)).fit(x, y)
    return model, model.predict_proba


def keras_model(x: np.ndarray, y: np.ndarray) -> tuple[Any, Native]:
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((x.shape[1],)),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=1, batch_size=256, verbose=0)
    return model, lambda rows: model.predict(rows, batch_size=BATCH_ROWS, verbose=0)


def torch_model(x: np.ndarray, y: np.ndarray) -> tuple[Any, Native]:
    import torch

    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(x.shape[1], 64),
        torch.nn.ReLU(),
        torch.nn.Linear(64, 32),
        torch.nn.ReLU(),
        torch.nn.Linear(32, 3),
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    inputs, targets = torch.from_numpy(x), torch.from_numpy(y)
    for _ in range(30):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(inputs), targets).backward()
        optimizer.step()
    model.eval()

    def native(rows: np.ndarray) -> np.ndarray:
        # in batches, as Keras' predict and Podium run: on a large array that is faster than one call
        inputs = torch.from_numpy(rows)
        with torch.inference_mode():
            parts = [torch.softmax(model(batch), dim=1) for batch in inputs.split(BATCH_ROWS)]
            return torch.cat(parts).numpy()

    return model, native


def onnx_model(x: np.ndarray, y: np.ndarray) -> tuple[Any, Native]:
    import onnxruntime
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    fitted, _ = sklearn_model(x, y)
    proto = convert_sklearn(
        fitted, initial_types=[("input", FloatTensorType([None, x.shape[1]]))], options={"zipmap": False}
    )
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = limited_cpus() or 0  # the thread rule Podium's own sessions follow
    session = onnxruntime.InferenceSession(
        proto.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    return proto, lambda rows: session.run(None, {"input": rows})[1]


BUILDERS = {"sklearn": sklearn_model, "keras": keras_model, "pytorch": torch_model, "onnx": onnx_model}


def paired(
    repeat: int,
    runs: dict[str, Callable[[], Any]],
    clock: Callable[[], float] = time.perf_counter,
    between: Callable[[], None] = lambda: None,
) -> dict[str, tuple[float, Any]]:
    """The fastest of ``repeat`` runs of each, interleaved (native, podium, native, ...) so that every
    contender sees the same machine load: {name: (seconds, its return value)}. ``between`` runs untimed
    after every run."""
    best: dict[str, tuple[float, Any]] = {name: (float("inf"), None) for name in runs}
    for _ in range(repeat):
        for name, run in runs.items():
            started = clock()
            value = run()
            elapsed = clock() - started
            between()
            if elapsed < best[name][0]:
                best[name] = (elapsed, value)
    return best


def bench(
    framework: str, args: argparse.Namespace, workdir: Path, split: tuple[np.ndarray, ...]
) -> dict[str, Any]:
    x_train, y_train, holdout = split
    model, native = BUILDERS[framework](x_train, y_train)
    class_labels = None if framework == "sklearn" else [0, 1, 2]
    artifact = workdir / f"{framework}-artifact"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        manifest = save_submission(model, artifact, example_data=x_train[:64], class_labels=class_labels)
    features = workdir / f"features.{args.format}"
    if not features.exists():
        if args.format == "npy":
            np.save(features, holdout)
        else:
            import pandas as pd

            pd.DataFrame(holdout, columns=[f"x{i}" for i in range(holdout.shape[1])]).to_csv(
                features, index=False
            )
    # Every run writes into a new directory, as each predict Job does (overwriting the last run's
    # predictions would add the cost of freeing a file no Job has); old ones are removed untimed.
    out = workdir / f"{framework}-out"
    runs: dict[str, Callable[[], Any]] = {
        "native": lambda: native(holdout),
        "podium": lambda: run_predict(artifact, features, out, batch_rows=args.batch_rows),
    }
    if manifest.onnx.available and framework != "onnx":  # an ONNX model's own runtime is the native one
        runs["onnx"] = lambda: run_predict(artifact, features, out, batch_rows=args.batch_rows, runtime="onnx")

    def clear() -> None:
        shutil.rmtree(out, ignore_errors=True)

    for run in runs.values():  # warm-up: first calls build graphs and thread pools
        run()
        clear()
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    best = paired(args.repeat, runs, clock, between=clear)
    return {
        "framework": framework,
        "native_s": best["native"][0],
        "podium_s": best["podium"][0],
        "timings": best["podium"][1].timings,
        "onnx_s": best["onnx"][0] if "onnx" in best else None,
    }


def table(results: list[dict[str, Any]], rows: int) -> str:
    header = (
        f"{'framework':<10} {'rows':>7} {'native s':>9} {'native rows/s':>14} {'podium s':>9} {'podium rows/s':>14} "
        f"{'ratio':>6}   {'load':>6} {'read':>6} {'predict':>7} {'write':>6}   {'via onnx s':>10} {'onnx ratio':>10}"
    )
    lines = [header, "-" * len(header)]
    for result in results:
        native, podium, timings, onnx = result["native_s"], result["podium_s"], result["timings"], result["onnx_s"]
        via_onnx = f"{onnx:>10.4f} {onnx / native:>10.2f}" if onnx is not None else f"{'-':>10} {'-':>10}"
        lines.append(
            f"{result['framework']:<10} {rows:>7} {native:>9.4f} {rows / native:>14,.0f} "
            f"{podium:>9.4f} {rows / podium:>14,.0f} {podium / native:>6.2f}   "
            f"{timings.load:>6.3f} {timings.read:>6.3f} {timings.predict:>7.3f} {timings.write:>6.3f}   {via_onnx}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--frameworks", default=",".join(FRAMEWORKS))
    parser.add_argument("--format", choices=["npy", "csv"], default="npy")
    parser.add_argument("--batch-rows", type=int, default=DEFAULT_BATCH_ROWS)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                        help="cpu: process CPU time, steadier on a shared machine (run under taskset -c 0)")
    args = parser.parse_args(argv)
    global BATCH_ROWS
    BATCH_ROWS = args.batch_rows
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    # Both sides get the predict Job's thread rule (pools sized to the CPUs this process may use),
    # set before torch or TensorFlow is imported.
    limit = fit_threads_to_cpu_limit()
    split = data(args.rows, args.features)
    with tempfile.TemporaryDirectory(prefix="podium-bench-") as scratch:
        results = [bench(name, args, Path(scratch), split) for name in args.frameworks.split(",")]
    print(
        f"run_predict vs native in-memory predict_proba; {args.features} features, {args.format} holdout, "
        f"batch {args.batch_rows}, best of {args.repeat} ({args.clock} clock); "
        f"{limit or os.cpu_count()} of {os.cpu_count()} CPUs"
    )
    print(table(results, args.rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
