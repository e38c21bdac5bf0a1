"""The Python SDK: create playgrounds, submit models or predictions, read leaderboards.

    pg = ModelPlayground.create("iris", X_holdout, y_holdout, task="classification", primary_metric="accuracy")
    pg.submit_model(model, name="logreg", preprocessor=scale)
    pg.wait_for("logreg")
    pg.get_leaderboard()          # pandas DataFrame

Talks to the cluster of the current kubeconfig (local mode included) and to the object store named by
``PODIUM_S3_ENDPOINT`` / ``AWS_*`` (``podium local up`` prints both).
"""

from __future__ import annotations

import os
import secrets
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from podium import storage
from podium.api import API_VERSION, GROUP, PLAYGROUND, SUBMISSION, VERSION, PlaygroundSpec, SubmissionSpec
from podium.api.meta import condition_is_true
from podium.api.submission import TERMINAL_PHASES
from podium.data import write_table
from podium.uri import ANONYMOUS, upload_prefix


def _custom_objects(kubeconfig: str | None = None, context: str | None = None) -> Any:
    """A client for ``kubeconfig`` (default: ``$KUBECONFIG``, else ``~/.kube/config``) as its ``context``
    (default: the current one), e.g. ``context="alice"`` for a local-mode user (``podium local up --users``)."""
    import kubernetes

    client = kubernetes.config.new_client_from_config(config_file=kubeconfig or os.environ.get("KUBECONFIG"),
                                                      context=context)
    return kubernetes.client.CustomObjectsApi(client)


def default_bucket() -> str:
    return os.environ.get("PODIUM_S3_BUCKET", "podium")


class ModelPlayground:
    def __init__(self, name: str, *, namespace: str = "default", kubeconfig: str | None = None,
                 bucket: str | None = None, context: str | None = None) -> None:
        self.name = name
        self.namespace = namespace
        self.bucket = bucket or default_bucket()
        self.api = _custom_objects(kubeconfig, context)
        self._user: str | None = None

    # --- playgrounds -------------------------------------------------------------------------------
    @classmethod
    def create(cls, name: str, features: Any, labels: Any, *, task: str, primary_metric: str,
               class_labels: list[str] | None = None, namespace: str = "default", kubeconfig: str | None = None,
               context: str | None = None, **spec: Any) -> ModelPlayground:
        """Upload the holdout and create the Playground (extra camelCase spec fields pass through)."""
        playground = cls(name, namespace=namespace, kubeconfig=kubeconfig, context=context)
        prefix = f"s3://{playground.bucket}/playgrounds/{namespace}/{name}/holdout"
        with tempfile.TemporaryDirectory() as scratch:
            features_uri = storage.upload(write_table(features, Path(scratch) / "features.csv"),
                                          f"{prefix}/features.csv")
            labels_uri = storage.upload(write_table(np.asarray(labels), Path(scratch) / "labels.csv"),
                                        f"{prefix}/labels.csv")
        if task == "classification" and class_labels is None:
            class_labels = [str(label) for label in np.unique(np.asarray(labels))]
        body = {"task": task, "primaryMetric": primary_metric, "holdout": {"features": features_uri,
                                                                           "labels": labels_uri}, **spec}
        if class_labels is not None:
            body["classLabels"] = class_labels
        PlaygroundSpec.model_validate(body)  # fail here, with field names, rather than in the operator
        playground.api.create_namespaced_custom_object(GROUP, VERSION, namespace, PLAYGROUND.plural, {
            "apiVersion": API_VERSION, "kind": PLAYGROUND.kind, "metadata": {"name": name}, "spec": body})
        return playground

    def get(self) -> dict[str, Any]:
        obj: dict[str, Any] = self.api.get_namespaced_custom_object(GROUP, VERSION, self.namespace, PLAYGROUND.plural,
                                                                    self.name)
        return obj

    def wait_ready(self, timeout: float = 60.0) -> dict[str, Any]:
        def ready() -> dict[str, Any] | None:
            obj = self.get()
            return obj if condition_is_true(obj) else None

        return _poll(ready, timeout, f"playground {self.name} to become Ready")

    def close_competition(self) -> None:
        self.api.patch_namespaced_custom_object(GROUP, VERSION, self.namespace, PLAYGROUND.plural, self.name,
                                                {"spec": {"competition": {"closed": True}}})

    # --- submissions -------------------------------------------------------------------------------
    def submit_model(self, model: Any, *, name: str, preprocessor: Any = None, example_data: Any = None,
                     track: str = "experiment", description: str | None = None,
                     metadata: dict[str, str] | None = None, preprocessor_uri: str | None = None) -> dict[str, Any]:
        """Package and upload ``model`` (with ``preprocessor`` bundled), then create the Submission.

        ``preprocessor_uri`` (from :meth:`upload_preprocessor`) names one preprocessor shared by many
        submissions instead; it replaces any bundled one.
        """
        from podium.artifacts import pack, save_submission

        spec = self.get()["spec"]
        with tempfile.TemporaryDirectory() as scratch:
            directory = Path(scratch) / name
            save_submission(model, directory, preprocessor=preprocessor, example_data=example_data,
                            class_labels=spec.get("classLabels"), task=spec["task"])
            uri = storage.upload(pack(directory), self._upload_uri(name, "tar.gz"))
        source: dict[str, Any] = {"uri": uri, **({"preprocessorUri": preprocessor_uri} if preprocessor_uri else {})}
        return self.submit(name=name, track=track, source={"model": source}, description=description,
                           metadata=metadata)

    def upload_preprocessor(self, preprocessor: Any, *, name: str) -> str:
        """Store a preprocessor once, for ``submit_model(..., preprocessor_uri=...)``; returns its URI."""
        from podium.artifacts import pack, save_preprocessor

        with tempfile.TemporaryDirectory() as scratch:
            directory = Path(scratch) / name
            save_preprocessor(preprocessor, directory)
            return storage.upload(pack(directory), self._upload_uri(f"preprocessors/{name}", "tar.gz"))

    def submit_predictions(self, predictions: Any, *, name: str, proba: Any = None, classes: Any = None,
                           track: str = "experiment") -> dict[str, Any]:
        from podium.predictions import Predictions, save_predictions

        with tempfile.TemporaryDirectory() as scratch:
            path = save_predictions(Predictions(np.asarray(predictions), proba, classes),
                                    Path(scratch) / "predictions.npz")
            uri = storage.upload(path, self._upload_uri(name, "npz"))
        return self.submit(name=name, track=track, source={"predictions": {"uri": uri}})

    def submit(self, *, name: str, track: str, source: dict[str, Any], description: str | None = None,
               metadata: dict[str, str] | None = None) -> dict[str, Any]:
        spec: dict[str, Any] = {"playground": self.name, "track": track, **source}
        if description:
            spec["description"] = description
        if metadata:
            spec["metadata"] = metadata
        SubmissionSpec.model_validate(spec)
        created: dict[str, Any] = self.api.create_namespaced_custom_object(
            GROUP, VERSION, self.namespace, SUBMISSION.plural,
            {"apiVersion": API_VERSION, "kind": SUBMISSION.kind, "metadata": {"name": name}, "spec": spec})
        return created

    def whoami(self) -> str:
        """The user the cluster authenticates this client as (a SelfSubjectReview), else ``anonymous``.

        Uploads go below that user's own prefix: the operator admits a Submission only when every object
        it names is there (see podium.uri.upload_prefix). A server that cannot review (an older one) means
        ``anonymous``; one that refuses the client (401, 403) raises, as every later call would fail too.
        """
        if self._user is None:
            from kubernetes.client import ApiException, AuthenticationV1Api, V1SelfSubjectReview

            try:
                review = AuthenticationV1Api(self.api.api_client).create_self_subject_review(V1SelfSubjectReview())
                self._user = (review.status.user_info.username if review.status and review.status.user_info
                              else None) or ANONYMOUS
            except ApiException as error:
                if error.status not in (404, 405, 422):
                    raise
                self._user = ANONYMOUS  # the server has no SelfSubjectReview: nobody authenticated
        return self._user

    def _upload_uri(self, name: str, extension: str) -> str:
        """A key never used before, below this user's upload prefix (a failed call never replaces an upload)."""
        prefix = upload_prefix(self.bucket, self.namespace, self.name, self.whoami())
        return f"{prefix}{name}-{secrets.token_hex(6)}.{extension}"

    def submission(self, name: str) -> dict[str, Any]:
        obj: dict[str, Any] = self.api.get_namespaced_custom_object(GROUP, VERSION, self.namespace, SUBMISSION.plural,
                                                                    name)
        return obj

    def wait_for(self, *names: str, timeout: float = 300.0) -> list[dict[str, Any]]:
        """Wait until each submission is Evaluated, Failed or Rejected; returns them in the order asked.

        One LIST, then a WATCH from its resourceVersion (relisting if that expired): the cost does not
        grow with how long the wait is, nor with how many submissions are awaited.
        """
        from kubernetes.client import ApiException

        deadline = time.monotonic() + timeout
        wanted = set(names)
        found: dict[str, dict[str, Any]] = {}

        def take(item: dict[str, Any]) -> None:
            name = item.get("metadata", {}).get("name")
            if name in wanted and (item.get("status") or {}).get("phase") in TERMINAL_PHASES:
                found.setdefault(name, item)

        def done() -> bool:
            return len(found) == len(wanted)

        while not done():
            listed = self.api.list_namespaced_custom_object(GROUP, VERSION, self.namespace, SUBMISSION.plural)
            for item in listed["items"]:
                take(item)
            try:
                self._watch_submissions(listed["metadata"]["resourceVersion"], take, done, deadline)
            except ApiException as error:
                if error.status != 410:  # 410 Gone: the version expired, list again
                    raise
            except TimeoutError:
                shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
                raise TimeoutError(f"timed out after {timeout:.0f}s waiting for submissions {shown} to finish") from None
        return [found[name] for name in names]

    def _watch_submissions(self, version: str, take: Callable[[dict[str, Any]], None], done: Callable[[], bool],
                           deadline: float) -> None:
        """Feed watch events to ``take`` until ``done()``; TimeoutError at ``deadline``."""
        import json

        from kubernetes.client import ApiException

        while not done():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            response = self.api.list_namespaced_custom_object(
                GROUP, VERSION, self.namespace, SUBMISSION.plural, watch=True, resource_version=version,
                allow_watch_bookmarks=True, timeout_seconds=max(1, min(int(remaining) + 1, 60)),
                _preload_content=False)
            try:
                for line in response:  # urllib3 yields whole lines: one event each
                    if not line.strip():
                        continue
                    event = json.loads(line)
                    obj = event.get("object") or {}
                    if event.get("type") == "ERROR":
                        raise ApiException(status=obj.get("code", 500), reason=obj.get("message", "watch error"))
                    version = obj.get("metadata", {}).get("resourceVersion", version)
                    if event.get("type") in ("ADDED", "MODIFIED"):
                        take(obj)
                    if done():
                        return
            finally:
                response.close()
                response.release_conn()

    # --- leaderboards ------------------------------------------------------------------------------
    def wait_for_leaderboard(self, rows: int, timeout: float = 60.0) -> None:
        _poll(lambda: len((self.get().get("status") or {}).get("leaderboard") or []) >= rows, timeout,
              f"{rows} leaderboard rows")

    def wait_for_private_leaderboard(self, timeout: float = 60.0) -> None:
        _poll(lambda: (self.get().get("status") or {}).get("privateLeaderboard") is not None, timeout,
              "the private leaderboard")

    def get_leaderboard(self, *, private: bool = False) -> pd.DataFrame:
        status = self.get().get("status") or {}
        rows = status.get("privateLeaderboard" if private else "leaderboard") or []
        flat = [{**{k: v for k, v in row.items() if k not in ("metrics", "metadata")}, **row.get("metrics", {}),
                 **row.get("metadata", {})} for row in rows]
        return pd.DataFrame(flat)


def _poll(check: Any, timeout: float, what: str, interval: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
