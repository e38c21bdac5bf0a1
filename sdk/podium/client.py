"""The Python SDK: create playgrounds, submit models or predictions, read leaderboards.

    pg = ModelPlayground.create("iris", X_holdout, y_holdout, task="classification", primary_metric="accuracy")
    pg.wait_ready()
    pg.submit_model(model, name="logreg", preprocessor=scale)
    pg.wait_for("logreg")         # evaluated, and on the leaderboard
    pg.get_leaderboard()          # pandas DataFrame (serving: podium.deployments; training: podium.trainings)

Talks to the cluster of the current kubeconfig (local mode included, or ``kubeconfig=``/``context=``), and
finds the object store and its credentials from that cluster (:mod:`podium.discovery`).

What waits: ``wait_ready``, ``wait_for`` (each submission finished and, when evaluated, on the public
leaderboard), ``wait_for_leaderboard``, ``wait_for_private_leaderboard`` and ``close_competition`` (until
the private leaderboard is published; ``wait=False`` not to). ``create`` and ``submit_*`` return once the
API server has accepted the resource: they do not wait for Ready or for an evaluation. ``get`` and
``get_leaderboard`` read the current state. Waits show a status line on a terminal (``progress=False``: never).
Nothing stored is lost by a failed call: a resource is checked (pydantic, then the API server's dry run of
the exact create) before anything is uploaded; uploads go to new keys below the caller's own upload prefix;
when the create still fails, what this call uploaded is deleted. Failures are one-line PodiumErrors."""

from __future__ import annotations

import contextlib
import secrets
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ValidationError

from podium import deployments, discovery, kube, storage, trainings
from podium.api import API_VERSION, GROUP, PLAYGROUND, SUBMISSION, VERSION, ResourceKind
from podium.api.meta import condition_is_true
from podium.api.submission import TERMINAL_PHASES
from podium.data import write_table
from podium.errors import InvalidConfig, WaitTimeout
from podium.progress import Status, Transfer
from podium.uri import ANONYMOUS, upload_prefix

Metadata = dict[str, str | int | float | bool]  # a Submission's custom metadata: JSON scalars
Writer = Callable[[Path], Path]  # writes a file into a scratch directory, returns it


class ModelPlayground:
    def __init__(self, name: str, *, namespace: str = "default", kubeconfig: str | None = None,
                 bucket: str | None = None, context: str | None = None, access_key: str | None = None,
                 secret_key: str | None = None, progress: bool | None = None) -> None:
        self.name = name
        self.namespace = namespace
        self.progress = progress  # None: a status line when stderr is a terminal
        self.api = kube.custom_objects(kubeconfig, context)
        self._where = {"kubeconfig": kubeconfig, "context": context, "access_key": access_key, "secret_key": secret_key}
        self._bucket = bucket
        self._store: storage.Store | None = None
        self._user: str | None = None

    @property
    def store(self) -> storage.Store:
        """The object store, found from the cluster (ConfigMap podium-system/podium-client) on first use."""
        if self._store is None:
            published = kube.published_store(self.api.api_client)
            self._store, bucket = discovery.object_store(published, **self._where)
            self._bucket = self._bucket or bucket
        return self._store

    @property
    def bucket(self) -> str:
        if self._bucket is None:
            _ = self.store
        assert self._bucket is not None
        return self._bucket

    # --- playgrounds -------------------------------------------------------------------------------
    @classmethod
    def create(cls, name: str, features: Any, labels: Any, *, task: str, primary_metric: str,
               class_labels: list[str] | None = None, namespace: str = "default", kubeconfig: str | None = None,
               context: str | None = None, bucket: str | None = None, access_key: str | None = None,
               secret_key: str | None = None, progress: bool | None = None,
               training_data: tuple[Any, Any] | None = None, **spec: Any) -> ModelPlayground:
        """Create the Playground with this holdout (extra camelCase spec fields pass through); no wait for Ready.

        The holdout (and ``training_data``, ``(features, labels)`` participants and training submissions get)
        goes to new keys below the creator's upload prefix: CSV, or ``.npy`` for N-d features (images).
        Nothing is uploaded unless the API server would accept the Playground.
        """
        playground = cls(name, namespace=namespace, kubeconfig=kubeconfig, context=context, bucket=bucket,
                         access_key=access_key, secret_key=secret_key, progress=progress)
        features_format = "npy" if np.ndim(features) > 2 else "csv"
        token = secrets.token_hex(6)
        holdout = f"{playground._prefix()}holdout/"
        features_uri, labels_uri = f"{holdout}features-{token}.{features_format}", f"{holdout}labels-{token}.csv"
        if task == "classification" and class_labels is None:
            class_labels = [str(label) for label in np.unique(np.asarray(labels))]
        body = {"task": task, "primaryMetric": primary_metric, "holdout": {"features": features_uri,
                                                                           "labels": labels_uri}, **spec}
        if class_labels is not None:
            body["classLabels"] = class_labels
        files = [(features, f"features.{features_format}", features_uri), (np.asarray(labels), "labels.csv", labels_uri)]
        if training_data is not None:
            kind = "npy" if np.ndim(training_data[0]) > 2 else "csv"
            data = body["trainingData"] = {"features": f"{holdout}train-x-{token}.{kind}", "labels": f"{holdout}train-y-{token}.csv"}
            files += [(training_data[0], f"x.{kind}", data["features"]), (np.asarray(training_data[1]), "y.csv", data["labels"])]
        playground._create(PLAYGROUND, name, body, [
            ((lambda scratch, table=table, file=file: write_table(table, scratch / file)), uri)  # type: ignore[misc]
            for table, file, uri in files])
        return playground

    def get(self) -> dict[str, Any]:
        with kube.translated(self.namespace):
            obj: dict[str, Any] = self.api.get_namespaced_custom_object(GROUP, VERSION, self.namespace,
                                                                        PLAYGROUND.plural, self.name)
        return obj

    def wait_ready(self, timeout: float = 60.0, *, progress: bool | None = None) -> dict[str, Any]:
        """Wait until the Playground is Ready; a WaitTimeout says the Ready condition's last reason and message."""
        last: dict[str, Any] = {}

        def ready(line: Status) -> dict[str, Any] | None:
            obj = self.get()
            last.update(_ready_condition(obj))
            line.set(str(last.get("reason") or "not reconciled yet"))
            return obj if condition_is_true(obj) else None

        try:
            found: dict[str, Any] = self._poll(ready, timeout, f"waiting for playground {self.name} to become Ready",
                                               progress)
            return found
        except WaitTimeout as error:
            if last:
                error.problem += f" (Ready={last.get('status')} {last.get('reason')}: {last.get('message')})"
            raise

    def close_competition(self, *, wait: bool = True, timeout: float = 120.0) -> list[dict[str, Any]] | None:
        """Close the competition; with ``wait``, until the private leaderboard is published (its rows).

        Submissions still being evaluated join the private leaderboard when they finish.
        """
        if not (self.get().get("spec") or {}).get("competition"):
            raise InvalidConfig(f"playground {self.name} has no competition track to close", field="spec.competition",
                                hint="only a playground created with competition={...} has a private leaderboard")
        with kube.translated(self.namespace):
            self.api.patch_namespaced_custom_object(GROUP, VERSION, self.namespace, PLAYGROUND.plural, self.name,
                                                    {"spec": {"competition": {"closed": True}}})
        return self.wait_for_private_leaderboard(timeout) if wait else None

    # --- submissions -------------------------------------------------------------------------------
    def submit_model(self, model: Any, *, name: str, preprocessor: Any = None, example_data: Any = None,
                     track: str = "experiment", description: str | None = None, metadata: Metadata | None = None,
                     preprocessor_uri: str | None = None) -> dict[str, Any]:
        """Package ``model`` (with ``preprocessor`` bundled) and create the Submission; no wait for its evaluation.

        ``preprocessor_uri`` (from :meth:`upload_preprocessor`) names one preprocessor shared by many
        submissions instead; it replaces any bundled one. ``metadata`` (JSON scalars) become leaderboard columns.
        """
        from podium.artifacts import pack, save_submission

        spec = self.get()["spec"]

        def packed(scratch: Path) -> Path:
            save_submission(model, scratch / name, preprocessor=preprocessor, example_data=example_data,
                            class_labels=spec.get("classLabels"), task=spec["task"])
            return pack(scratch / name)

        uri = self._upload_uri(name, "tar.gz")
        source: dict[str, Any] = {"uri": uri, **({"preprocessorUri": preprocessor_uri} if preprocessor_uri else {})}
        return self._create(SUBMISSION, name, self._submission_spec(track, {"model": source}, description, metadata),
                            [(packed, uri)])

    def upload_preprocessor(self, preprocessor: Any, *, name: str) -> str:
        """Store a preprocessor once, for ``submit_model(..., preprocessor_uri=...)``; returns its URI."""
        from podium.artifacts import pack, save_preprocessor

        with tempfile.TemporaryDirectory() as scratch:
            directory = Path(scratch) / name
            save_preprocessor(preprocessor, directory)
            return self._upload(pack(directory), self._upload_uri(f"preprocessors/{name}", "tar.gz"))

    def submit_predictions(self, predictions: Any, *, name: str, proba: Any = None, classes: Any = None,
                           track: str = "experiment", description: str | None = None,
                           metadata: Metadata | None = None) -> dict[str, Any]:
        """Create a predictions-only Submission (scored, marked unverified); no wait for its evaluation."""
        from podium.predictions import Predictions, save_predictions

        def saved(scratch: Path) -> Path:
            return save_predictions(Predictions(np.asarray(predictions), proba, classes), scratch / "predictions.npz")

        uri = self._upload_uri(name, "npz")
        return self._create(SUBMISSION, name,
                            self._submission_spec(track, {"predictions": {"uri": uri}}, description, metadata),
                            [(saved, uri)])

    def submit(self, *, name: str, track: str, source: dict[str, Any], description: str | None = None,
               metadata: Metadata | None = None) -> dict[str, Any]:
        """Create a Submission naming objects already uploaded (``source``: ``{"model": {"uri": ...}}``, ...)."""
        return self._create(SUBMISSION, name, self._submission_spec(track, source, description, metadata))

    def _submission_spec(self, track: str, source: dict[str, Any], description: str | None,
                         metadata: Metadata | None) -> dict[str, Any]:
        spec: dict[str, Any] = {"playground": self.name, "track": track, **source}
        if description:
            spec["description"] = description
        if metadata:
            spec["metadata"] = metadata
        return spec

    def whoami(self) -> str:
        """The user the cluster authenticates this client as (a SelfSubjectReview), else ``anonymous``.

        Uploads go below that user's own prefix: the operator admits a Submission only when every object
        it names is there (see podium.uri.upload_prefix). A server that cannot review (an older one) means
        ``anonymous``; one that refuses the client (401, 403) raises, as every later call would fail too.
        """
        if self._user is None:
            from kubernetes.client import ApiException, AuthenticationV1Api, V1SelfSubjectReview

            try:
                with kube.translated(self.namespace):
                    review = AuthenticationV1Api(self.api.api_client).create_self_subject_review(V1SelfSubjectReview())
                self._user = (review.status.user_info.username if review.status and review.status.user_info
                              else None) or ANONYMOUS
            except ApiException as error:
                if error.status not in (404, 405, 422):
                    raise
                self._user = ANONYMOUS  # the server has no SelfSubjectReview: nobody authenticated
        return self._user

    def _prefix(self) -> str:
        return upload_prefix(self.bucket, self.namespace, self.name, self.whoami())

    def _upload_uri(self, name: str, extension: str) -> str:
        """A key never used before, below this user's upload prefix (a failed call never replaces an upload)."""
        return f"{self._prefix()}{name}-{secrets.token_hex(6)}.{extension}"

    def _upload(self, path: Path, uri: str) -> str:
        with Transfer(f"uploading {uri.rsplit('/', 1)[-1]}", show=self.progress) as line:
            return storage.upload(path, uri, store=self.store, progress=line)

    def _create(self, resource: ResourceKind, name: str, spec: dict[str, Any],
                files: Iterable[tuple[Writer, str]] = ()) -> dict[str, Any]:
        """Check ``spec`` (pydantic, then a dry run of this exact create), upload ``files`` (each written into a
        scratch directory) to their new keys, create; if anything fails, delete what was uploaded."""
        _validated(resource, name, spec)
        files = list(files)
        manifest = {"apiVersion": API_VERSION, "kind": resource.kind, "metadata": {"name": name}, "spec": spec}
        if files:
            self._api_create(resource, manifest, dry_run=True)
        uploaded: list[str] = []
        try:
            with tempfile.TemporaryDirectory() as scratch:
                for write, uri in files:
                    path = write(Path(scratch))
                    uploaded.append(uri)  # before: an upload that fails midway may have left a part
                    self._upload(path, uri)
            return self._api_create(resource, manifest)
        except BaseException as error:
            left = [uri for uri in uploaded if not _removed(uri, self.store)]
            if left:
                error.add_note(f"could not delete what this call uploaded: {', '.join(left)}")
            raise

    def _api_create(self, resource: ResourceKind, manifest: dict[str, Any], *, dry_run: bool = False) -> dict[str, Any]:
        with kube.translated(self.namespace):
            created: dict[str, Any] = self.api.create_namespaced_custom_object(
                GROUP, VERSION, self.namespace, resource.plural, manifest, dry_run="All" if dry_run else None,
                field_validation="Strict")
        return created

    def submission(self, name: str) -> dict[str, Any]:
        with kube.translated(self.namespace):
            obj: dict[str, Any] = self.api.get_namespaced_custom_object(GROUP, VERSION, self.namespace,
                                                                        SUBMISSION.plural, name)
        return obj

    def wait_for(self, *names: str, timeout: float = 300.0, leaderboard: bool = True,
                 progress: bool | None = None) -> list[dict[str, Any]]:
        """Wait until each submission is Evaluated, Failed or Rejected; returns them in the order asked.

        With ``leaderboard``, also until each one Evaluated is on the public leaderboard (or the board is full),
        so ``get_leaderboard()`` right after shows them. One LIST, then a WATCH (relisting if that expired).
        """
        deadline = time.monotonic() + timeout
        wanted, phases = set(names), dict.fromkeys(names, "Pending")
        found: dict[str, dict[str, Any]] = {}
        shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")

        with Status(f"waiting for {shown}", show=self.progress if progress is None else progress) as line:
            def take(item: dict[str, Any]) -> None:
                name = item.get("metadata", {}).get("name")
                if name in wanted:
                    phases[name] = (status := item.get("status") or {}).get("phase") or "Pending"
                    if phases[name] in TERMINAL_PHASES:
                        found.setdefault(name, item)
                    training = (status.get("training") or {}).get("progress") if phases[name] == "Training" else None
                    line.set(", ".join(f"{n} {p}" for p, n in sorted(Counter(phases.values()).items()))
                             + (f" ({name}: {training})" if training else ""))  # e.g. "iter 200/2000 loss 0.41"

            with kube.translated(self.namespace):
                done = kube.watch_until(self.api, self.namespace, SUBMISSION.plural, take,
                                        lambda: len(found) == len(wanted), deadline)
            if not done:
                waiting = ", ".join(f"{n} ({phases[n]})" for n in names if n not in found)
                raise WaitTimeout(f"timed out after {timeout:.0f}s waiting for submissions to finish: {waiting}",
                                  hint="wait longer (timeout=...), or look at `kubectl describe sub NAME`")
            if leaderboard:
                line.set("finished; waiting for the leaderboard to show them")
                self._poll(lambda _: self._on_leaderboard(found.values()), max(1.0, deadline - time.monotonic()),
                           "waiting for the leaderboard to show them", False)
        return [found[name] for name in names]

    def _on_leaderboard(self, submissions: Iterable[dict[str, Any]]) -> bool:
        playground = self.get()
        board = (playground.get("status") or {}).get("leaderboard") or []
        if len(board) >= int((playground.get("spec") or {}).get("leaderboardSize") or 20):
            return True  # full: a submission may rank below what is kept
        versions = {row.get("version") for row in board}
        return all(s["status"].get("version") in versions for s in submissions
                   if s["status"].get("phase") == "Evaluated" and s["status"].get("score") is not None)

    def wait_for_leaderboard(self, rows: int, timeout: float = 60.0) -> None:
        self._poll(lambda _: len((self.get().get("status") or {}).get("leaderboard") or []) >= rows, timeout,
                   f"waiting for {rows} leaderboard rows")

    def wait_for_private_leaderboard(self, timeout: float = 60.0) -> list[dict[str, Any]]:
        """Wait until the private leaderboard is published (the competition closed); returns its rows."""
        def published(_: Status) -> tuple[list[dict[str, Any]]] | None:
            board = (self.get().get("status") or {}).get("privateLeaderboard")
            return None if board is None else (board,)  # a tuple: an empty board is published too

        (rows,) = self._poll(published, timeout, f"waiting for the private leaderboard of {self.name}")
        return list(rows)

    def get_leaderboard(self, *, private: bool = False) -> pd.DataFrame:
        """The current board, one row per submission: metrics, key model metadata and each ``customMetadata``
        entry are columns (a custom key that clashes with another column is ``custom.<key>``). No wait."""
        status = self.get().get("status") or {}
        rows = status.get("privateLeaderboard" if private else "leaderboard") or []
        return pd.DataFrame([_flat(row) for row in rows])

    # Serving (podium.deployments), training (podium.trainings): the functions themselves (their signatures).
    deploy_model = deployments.deploy  # a ModelDeployment of this playground; waits until it serves
    update_runtime_model = deployments.update  # a canary swap per the rollout policy; waits until done
    get_deployment = deployments.get_deployment  # stable, canary, traffic, analysis, shadow, history
    shadow = deployments.shadow  # mirror live traffic to a candidate; shadow(None) stops
    predict = deployments.predict  # labels (and probabilities) from the served model, V1 or V2
    submit_training, submit_recommendation = trainings.submit_training, trainings.submit_recommendation
    get_recommendations = trainings.get_recommendations
    wait_for_recommendations = trainings.wait_for_recommendations

    def _poll(self, check: Callable[[Status], Any], timeout: float, what: str, progress: bool | None = None,
              interval: float = 0.2) -> Any:
        deadline = time.monotonic() + timeout
        with Status(what, show=self.progress if progress is None else progress) as line:
            while True:
                value = check(line)
                if value:
                    line.close("done")
                    return value
                if time.monotonic() >= deadline:
                    raise WaitTimeout(f"timed out after {timeout:.0f}s {what}",
                                      hint="wait longer (timeout=...), or look at `kubectl describe` for why")
                time.sleep(interval)


def _ready_condition(obj: dict[str, Any]) -> dict[str, Any]:
    conditions = (obj.get("status") or {}).get("conditions") or []
    return next((dict(c) for c in conditions if isinstance(c, dict) and c.get("type") == "Ready"), {})


def _flat(row: dict[str, Any]) -> dict[str, Any]:
    flat = {k: v for k, v in row.items() if k not in ("metrics", "metadata", "customMetadata")}
    flat.update(row.get("metrics") or {})
    flat.update(row.get("metadata") or {})
    for key, value in (row.get("customMetadata") or {}).items():
        flat[f"custom.{key}" if key in flat else key] = value
    return flat


def _validated(resource: ResourceKind, name: str, spec: dict[str, Any]) -> None:
    """Fail here, naming the fields, rather than at the API server or in the operator."""
    model: type[BaseModel] = resource.spec_model
    try:
        model.model_validate(spec)
    except ValidationError as error:
        problems = "; ".join(
            (f"spec.{'.'.join(map(str, e['loc']))}: " if e["loc"] else "") + str(e["msg"]).removeprefix("Value error, ")
            for e in error.errors())
        raise InvalidConfig(f"{resource.kind.lower()} {name} is invalid: {problems}",
                            hint="correct the named fields; nothing was uploaded") from None


def _removed(uri: str, store: storage.Store) -> bool:
    with contextlib.suppress(Exception):
        storage.delete(uri, store=store)
        return True
    return False
