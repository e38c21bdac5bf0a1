"""KServe's ``ModelServer`` as the predictor runs it: its host, its per-request logs, and 400 for every bad input.

uvicorn's config and the FastAPI app are built inside ``ModelServer.start()``; ``setup_event_loop`` is the one
hook between building the config and serving, and ``RESTServer.create_application`` builds the app before the
first request, so the settings go there. Nothing of KServe's request path is replaced.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import kserve
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from kserve import model_server
from kserve.errors import InvalidInput, invalid_input_handler

from podium.serving.model import CountedInvalidInput, PodiumModel

_V2_HINT = 'send {"inputs": [{"name": "input", "shape": [n, d], "datatype": "FP32", "data": [...]}]}'


class Server(kserve.ModelServer):
    """KServe's server on ``host``, with or without per-request logs."""

    def __init__(self, host: str, request_logs: bool, **kwargs: Any):
        super().__init__(**kwargs)
        self._host, self._request_logs = host, request_logs
        server_ready = self.dataplane.ready

        async def ready() -> bool:
            """OIP server readiness (``/v2/health/ready``): KServe says yes at once; Podium once its model is loaded."""
            return await server_ready() and all(model.ready for model in self.registered_models.get_models().values())

        self.dataplane.ready = ready  # type: ignore[method-assign]

    def setup_event_loop(self) -> None:
        super().setup_event_loop()
        rest = self._rest_server or getattr(self._rest_multiprocess_server, "_rest_server", None)
        if not self._request_logs:  # what uvicorn does for access_log=False (it reads that in Config() only)
            access = logging.getLogger("uvicorn.access")
            access.handlers, access.propagate = [], False
            logging.getLogger("kserve.trace").setLevel(logging.WARNING)
        if rest is not None:
            rest.config.host = self._host
            rest.create_application = _adapted(rest.create_application, self, timing=self._request_logs)


def _adapted(create_application: Any, server: kserve.ModelServer, *, timing: bool) -> Any:
    def create() -> None:
        create_application()
        app = model_server.app
        if not timing:
            # timing_asgi's TimingMiddleware only writes two kserve.trace lines (after two getrusage calls) per
            # request; with those logs off it is pure cost
            app.user_middleware = [entry for entry in app.user_middleware if entry.cls.__name__ != "TimingMiddleware"]
        app.add_exception_handler(RequestValidationError, _refusal(server, _validation_message))
        app.add_exception_handler(InvalidInput, _refusal(server, None))

    return create


def _refusal(server: kserve.ModelServer, message: Any) -> Any:
    """A 400 for input refused before it reached the model (a V2 body FastAPI cannot validate, JSON KServe
    cannot parse), counted as outcome="invalid" like the refusals of the model itself."""

    async def handle(request: Request, error: Exception) -> JSONResponse:
        if not isinstance(error, CountedInvalidInput):
            model = server.registered_models.get_model(str(request.path_params.get("model_name", "")))
            if isinstance(model, PodiumModel):
                model.metrics.count("invalid")
        if message is None:
            return await invalid_input_handler(request, error)
        return JSONResponse(status_code=400, content={"error": message(error)})

    return handle


def _validation_message(error: Exception) -> str:
    """FastAPI's list of problems as one line: the first problem's field (``inputs[0].shape``) and a fix."""
    problems = error.errors() if isinstance(error, RequestValidationError) else []
    problem = next((p for p in problems if "InferenceRequest" in p.get("loc", ())), problems[0] if problems else {})
    where = [part for part in problem.get("loc", ()) if part not in ("body", "InferenceRequest")]
    field = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in where).lstrip(".") or "body"
    return f"{field}: {problem.get('msg', 'the request body is not a V2 inference request')}. Fix: {_V2_HINT}"


def use_uvloop(choice: str) -> None:
    """KServe runs a single worker with ``asyncio.run``, which ignores ``--event-loop auto|uvloop`` (uvicorn
    applies it only when it creates the loop itself); install uvloop's policy so that the flag holds."""
    if choice == "asyncio":
        return
    try:
        import uvloop
    except ImportError:
        if choice == "uvloop":
            raise
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    asyncio.set_event_loop(asyncio.new_event_loop())  # kserve's setup_event_loop asks for a current loop
