"""Deterministic child names and labels: a restarted operator finds, never duplicates, its children."""

from __future__ import annotations

import hashlib

from podium.api.common import GROUP

MANAGED_BY = {"app.kubernetes.io/managed-by": "podium"}
SUBMISSION_LABEL = f"{GROUP}/submission"
PLAYGROUND_LABEL = f"{GROUP}/playground"
STEP_LABEL = f"{GROUP}/step"
SANDBOX_LABEL = f"{GROUP}/sandbox"


def child_name(parent: str, suffix: str, limit: int = 63) -> str:
    """``<parent>-<suffix>``, shortened with a stable hash when it would exceed a DNS label."""
    name = f"{parent}-{suffix}"
    if len(name) <= limit:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    keep = limit - len(suffix) - len(digest) - 2
    return f"{parent[:keep].rstrip('-')}-{digest}-{suffix}"


def owner_reference(owner: dict) -> dict:
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def owned_by(obj: dict, uid: str) -> bool:
    """Whether ``obj`` belongs to the owner with ``uid`` (children are named after their owner, not its uid)."""
    return any(ref.get("uid") == uid for ref in (obj.get("metadata") or {}).get("ownerReferences") or [])
