"""``python -m podium.serving --model_name NAME --model_dir DIR [--http_port 8080] [kserve flags]``

Serves one submission artifact with KServe's own ``ModelServer``. The server answers liveness at once and
readiness (``GET /v1/models/NAME``, ``/v2/health/ready``) with 503 until the artifact is loaded, which
happens in the background so that a slow TensorFlow import does not fail a liveness probe. A load that
fails ends the process (exit 1) with its one-line reason on stderr and in the termination log.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kserve import model_server

from podium.serving.model import PodiumModel, Settings
from podium.serving.server import Server, use_uvloop

_ENV = {"submission": "PODIUM_SUBMISSION", "version": "PODIUM_VERSION", "task": "PODIUM_TASK",
        "class_labels": "PODIUM_CLASS_LABELS"}


def parser() -> argparse.ArgumentParser:
    parse = argparse.ArgumentParser(prog="python -m podium.serving", description=__doc__.split("\n\n")[1],
                                    parents=[model_server.parser])
    parse.add_argument("--model_dir", required=True, type=Path, help="the artifact as the storage initializer left it")
    for name, env in _ENV.items():
        parse.add_argument(f"--{name}", default=None, help=f"overrides ${env}")
    parse.add_argument("--runtime", choices=["native", "onnx", "auto"], default="auto",
                       help="auto: the ONNX export where the artifact records it as equivalent, else native")
    parse.add_argument("--http_host", default=os.environ.get("PODIUM_HTTP_HOST", "0.0.0.0"),
                       help="address to listen on (KServe's is 0.0.0.0; local mode uses 127.0.0.1)")
    parse.add_argument("--request_logs", default=False, type=_true,
                       help="log a line per request (uvicorn's access log, KServe's kserve.trace timings); "
                       "off by default: it costs more than a small model's predict, and the metrics count requests")
    # gRPC is not part of the serving contract, and a fixed 8081 would collide between local predictors
    parse.set_defaults(enable_grpc=False)
    # a log line per request costs more than a small model's predict; podium_predictor_request_seconds has it
    parse.set_defaults(enable_latency_logging=False)
    return parse


def settings(args: argparse.Namespace, environ: dict[str, str] | Any = os.environ) -> Settings:
    values = {name: getattr(args, name) if getattr(args, name) is not None else environ.get(env)
              for name, env in _ENV.items()}
    labels = values["class_labels"]
    if labels:
        try:
            labels = json.loads(labels)
        except json.JSONDecodeError as error:
            raise SystemExit(f"class_labels: {error}. Fix: pass a JSON list such as '[\"cat\", \"dog\"]'") from None
        if not isinstance(labels, list):
            raise SystemExit("class_labels: is not a JSON list. Fix: pass a JSON list such as '[\"cat\", \"dog\"]'")
    return Settings(model_dir=args.model_dir, submission=values["submission"] or "", version=values["version"] or "",
                    task=values["task"] or None, class_labels=labels or None, runtime=args.runtime)


def _true(text: str) -> bool:
    return text.strip().lower() in ("1", "true", "yes", "on")


def _load_or_exit(model: PodiumModel) -> None:
    try:
        model.load()
        # the frameworks' modules and the model are permanent: keep the collector from rescanning them,
        # a full collection over TensorFlow's or torch's objects is a latency spike on some request
        gc.freeze()
    except Exception as error:  # any failure to load: the pod must fail and say why
        from podium.evaluation.predict import failure_message
        from podium.evaluation.wire import termination_log_path

        message = failure_message(error).replace("predict failed", f"model {model.name} failed to load", 1)
        print(message, file=sys.stderr, flush=True)
        log = termination_log_path()
        if log is not None:
            with contextlib.suppress(OSError):
                log.write_text(message)
        sys.stdout.flush()
        os._exit(1)


def main(argv: Sequence[str] | None = None) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = parser().parse_args(argv)
    model = PodiumModel(args.model_name, settings(args))
    server = Server(
        args.http_host, args.request_logs, http_port=args.http_port, grpc_port=args.grpc_port, workers=args.workers,
        max_threads=args.max_threads, max_asyncio_workers=args.max_asyncio_workers, enable_grpc=args.enable_grpc,
        enable_docs_url=args.enable_docs_url, enable_latency_logging=args.enable_latency_logging,
        access_log_format=args.access_log_format, event_loop=args.event_loop,
        timeout_keep_alive=args.timeout_keep_alive, ssl_certfile=args.ssl_certfile, ssl_keyfile=args.ssl_keyfile,
    )
    model.enable_latency_logging = args.enable_latency_logging
    server.register_model(model)  # registered unready: readiness answers 503 until load() sets ready
    if args.workers > 1:  # worker processes fork from this one: they must inherit a loaded model
        _load_or_exit(model)
    else:
        threading.Thread(target=_load_or_exit, args=(model,), name="podium-load", daemon=True).start()
    use_uvloop(args.event_loop)
    server.start([])


if __name__ == "__main__":
    main()
