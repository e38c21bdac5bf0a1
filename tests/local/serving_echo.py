"""A tiny real KServe predictor for the serving controller's tests (same CLI as ``python -m podium.serving``).

Its artifact directory says what it does: ``label.txt`` (the label it predicts for every row, default
``a``), ``delay.txt`` (seconds to wait in ``load``), ``slow.txt`` (seconds each prediction takes), ``fail.txt`` (exit with its text on stderr before getting
ready). It counts ``podium_predictor_requests_total`` as the contract names it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import kserve
from kserve import InferRequest, InferResponse, Model, ModelServer
from kserve.model_server import parser as kserve_parser
from prometheus_client import Counter

REQUESTS = Counter("podium_predictor_requests", "Predictions", ["model_name", "submission", "version", "outcome"])


class Echo(Model):
    def __init__(self, name: str, model_dir: Path) -> None:
        super().__init__(name)
        self.model_dir = model_dir
        self.label = "a"
        self.slow = 0.0

    def load(self) -> bool:
        files = {p.name: p.read_text().strip() for p in self.model_dir.rglob("*.txt")}
        if "fail.txt" in files:
            print(f"cannot load the model: {files['fail.txt']}", file=sys.stderr, flush=True)
            sys.exit(3)
        time.sleep(float(files.get("delay.txt", "0")))
        self.label = files.get("label.txt", "a")
        self.slow = float(files.get("slow.txt", "0"))
        labels = (os.environ.get("PODIUM_SUBMISSION", ""), os.environ.get("PODIUM_VERSION", ""))
        REQUESTS.labels(self.name, *labels, "ok")  # the series exists at 0 before the first request, as podium's
        self.ready = True
        return True

    async def predict(self, payload: Any, headers: dict[str, str] | None = None) -> Any:
        if self.slow:
            await asyncio.sleep(self.slow)
        labels = (os.environ.get("PODIUM_SUBMISSION", ""), os.environ.get("PODIUM_VERSION", ""))
        REQUESTS.labels(self.name, *labels, "ok").inc()
        if isinstance(payload, InferRequest):
            rows = payload.inputs[0].shape[0]
            output = kserve.InferOutput("label", [rows], "BYTES", data=[self.label] * rows)
            return InferResponse(payload.id or "0", self.name, [output])
        body = json.loads(payload) if isinstance(payload, bytes | str) else payload
        return {"predictions": [self.label] * len(body["instances"])}


if __name__ == "__main__":
    cli = argparse.ArgumentParser(parents=[kserve_parser])
    cli.add_argument("--model_dir", type=Path, required=True)
    args, _ = cli.parse_known_args()
    model = Echo(args.model_name, args.model_dir)
    model.load()
    ModelServer(http_port=args.http_port, enable_grpc=False, workers=1,
                enable_latency_logging=args.enable_latency_logging).start([model])
