"""The Job controller's side of a pod spec (pure): the Pod a Job gets, and the objects a pod spec refers to."""

from __future__ import annotations

import base64
import copy
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

NODE_NAME = "podium-local"
DEFAULT_BACKOFF_LIMIT = 6


class PlanError(ValueError):
    """The pod cannot be run locally (its message ends up in the pod status)."""


def pod_template_spec(job: Mapping[str, Any]) -> dict[str, Any]:
    return dict(job.get("spec", {}).get("template", {}).get("spec", {}))


def backoff_limit(job_spec: Mapping[str, Any]) -> int:
    limit = job_spec.get("backoffLimit")
    return DEFAULT_BACKOFF_LIMIT if limit is None else int(limit)


def pod_labels(job: Mapping[str, Any]) -> dict[str, str]:
    """The labels of the Job's pods: the template's plus those the Job controller adds."""
    meta = job["metadata"]
    uid = meta.get("uid", "")
    return {
        **job.get("spec", {}).get("template", {}).get("metadata", {}).get("labels", {}),
        "job-name": meta["name"],
        "batch.kubernetes.io/job-name": meta["name"],
        "controller-uid": uid,
        "batch.kubernetes.io/controller-uid": uid,
    }


def pod_manifest(job: Mapping[str, Any], pod_name: str) -> dict[str, Any]:
    """The Pod the Job controller would create for ``job`` (without status)."""
    meta = job["metadata"]
    template = job.get("spec", {}).get("template", {})
    template_meta = template.get("metadata", {})
    uid = meta.get("uid", "")
    labels = pod_labels(job)
    spec = copy.deepcopy(template.get("spec", {}))
    spec["nodeName"] = NODE_NAME  # "scheduled" onto the local machine
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": pod_name,
            "namespace": meta.get("namespace", "default"),
            "labels": labels,
            "annotations": dict(template_meta.get("annotations", {})),
            "ownerReferences": [
                {
                    "apiVersion": "batch/v1",
                    "kind": "Job",
                    "name": meta["name"],
                    "uid": uid,
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": spec,
    }


# --- Referenced objects -----------------------------------------------------------------------


def referenced_objects(pod_spec: Mapping[str, Any]) -> tuple[set[str], set[str]]:
    """Names of the Secrets and ConfigMaps the pod's env, envFrom and volumes refer to."""
    secrets: set[str] = set()
    config_maps: set[str] = set()
    for c in _all_containers(pod_spec):
        for var in c.get("env", []):
            source = var.get("valueFrom", {})
            if "secretKeyRef" in source:
                secrets.add(source["secretKeyRef"]["name"])
            if "configMapKeyRef" in source:
                config_maps.add(source["configMapKeyRef"]["name"])
        for source in c.get("envFrom", []):
            if "secretRef" in source:
                secrets.add(source["secretRef"]["name"])
            if "configMapRef" in source:
                config_maps.add(source["configMapRef"]["name"])
    for volume in pod_spec.get("volumes", []):
        if "secret" in volume:
            secrets.add(volume["secret"]["secretName"])
        if "configMap" in volume:
            config_maps.add(volume["configMap"]["name"])
    return secrets, config_maps


def referenced_claims(pod_spec: Mapping[str, Any]) -> set[str]:
    """Names of the PersistentVolumeClaims the pod's volumes refer to."""
    return {
        v["persistentVolumeClaim"]["claimName"]
        for v in pod_spec.get("volumes", [])
        if "persistentVolumeClaim" in v
    }


def secret_data(secret: Mapping[str, Any]) -> dict[str, bytes]:
    """Decoded ``data`` plus ``stringData`` (which a real API server folds into ``data``)."""
    data = {k: base64.b64decode(v) for k, v in (secret.get("data") or {}).items()}
    data.update({k: v.encode() for k, v in (secret.get("stringData") or {}).items()})
    return data


def config_map_data(config_map: Mapping[str, Any]) -> dict[str, bytes]:
    data = {k: base64.b64decode(v) for k, v in (config_map.get("binaryData") or {}).items()}
    data.update({k: v.encode() for k, v in (config_map.get("data") or {}).items()})
    return data


def _all_containers(pod_spec: Mapping[str, Any]) -> Iterable[Mapping[str, Any]]:
    return (*pod_spec.get("initContainers", []), *pod_spec.get("containers", []))


# --- Quantities -------------------------------------------------------------------------------

_QUANTITY = re.compile(r"^([0-9.]+(?:[eE][+-]?[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|P|E)?$")
_SUFFIXES: dict[str | None, float] = {
    None: 1,
    "m": 1e-3,
    **{s: 1000**i for i, s in enumerate("kMGTPE", 1)},
    **{s + "i": 1024**i for i, s in enumerate("KMGTPE", 1)},
}


def parse_quantity(quantity: str) -> int:
    """A Kubernetes resource quantity (``512Mi``, ``1G``, ``1e9``) as a whole number, rounded up."""
    m = _QUANTITY.match(quantity.strip())
    if m is None:
        raise PlanError(f"invalid quantity {quantity!r}")
    return math.ceil(float(m.group(1)) * _SUFFIXES[m.group(2)])


def claim_storage(claim: Mapping[str, Any]) -> int | None:
    """A PersistentVolumeClaim's size: ``spec.resources.requests.storage`` in bytes (None if unset)."""
    storage = ((claim.get("spec") or {}).get("resources") or {}).get("requests", {}).get("storage")
    return None if storage is None else parse_quantity(str(storage))
