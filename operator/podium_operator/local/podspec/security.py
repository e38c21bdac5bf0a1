"""What a cluster would enforce on a container, read from its pod spec (pure functions).

The job runner emulates the parts of a pod's security that matter for untrusted code (see
:mod:`podium_operator.local.sandbox` for how they are enforced and what is not):

- ``securityContext.runAsUser`` / ``runAsGroup`` (container over pod), pod ``fsGroup`` and
  ``supplementalGroups`` (added to the process's groups, as the kubelet does). Without
  ``runAsGroup`` the group is the user's number (images usually pair them; the kubelet would
  read the image's ``/etc/passwd``, which local mode does not have).
- ``readOnlyRootFilesystem`` and ``allowPrivilegeEscalation: false`` (container level).
- ``runAsNonRoot``: a container that would run as root does not start, as in a cluster.
- NetworkPolicies (``networking.k8s.io/v1``): a pod selected by a policy listing ``Egress``
  gets no network when no selecting policy allows any egress.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Security:
    """One container's restrictions; the default restricts nothing (a plain local process)."""

    uid: int | None = None  # None: the runner's own user
    gid: int | None = None
    groups: tuple[int, ...] = ()  # supplementary groups (fsGroup first)
    read_only_root: bool = False
    no_new_privileges: bool = False
    no_network: bool = False


def container_security(
    pod_spec: Mapping[str, Any], container: Mapping[str, Any], *, no_network: bool = False
) -> Security:
    pod_ctx = pod_spec.get("securityContext") or {}
    ctx = container.get("securityContext") or {}
    uid = _first(ctx.get("runAsUser"), pod_ctx.get("runAsUser"))
    gid = _first(ctx.get("runAsGroup"), pod_ctx.get("runAsGroup"), uid)
    fs_group = pod_ctx.get("fsGroup")
    groups = ([] if fs_group is None else [fs_group]) + list(pod_ctx.get("supplementalGroups") or [])
    return Security(
        uid=None if uid is None else int(uid),
        gid=None if gid is None else int(gid),
        groups=tuple(dict.fromkeys(int(g) for g in groups)),
        read_only_root=bool(ctx.get("readOnlyRootFilesystem", False)),
        no_new_privileges=ctx.get("allowPrivilegeEscalation") is False,
        no_network=no_network,
    )


def non_root_violation(
    pod_spec: Mapping[str, Any], container: Mapping[str, Any], security: Security, runner_uid: int
) -> str | None:
    """The kubelet's refusal for ``runAsNonRoot`` (the image's user is the runner's, locally)."""
    ctx = container.get("securityContext") or {}
    pod_ctx = pod_spec.get("securityContext") or {}
    if not _first(ctx.get("runAsNonRoot"), pod_ctx.get("runAsNonRoot")):
        return None
    if security.uid == 0:
        return "container's runAsUser breaks non-root policy"
    if security.uid is None and runner_uid == 0:
        return "container has runAsNonRoot and image will run as root"
    return None


def pod_group(fs_group: int | None, securities: Iterable[Security]) -> int | None:
    """The group that owns a pod's directories: ``fsGroup``, else its containers' only group."""
    if fs_group is not None:
        return fs_group
    gids = {s.gid for s in securities if s.gid is not None}
    return gids.pop() if len(gids) == 1 else None


def selects(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """A ``LabelSelector`` (``matchLabels`` and ``matchExpressions``); empty selects everything."""
    selector = selector or {}
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        present = key in labels
        ok = {
            "In": present and labels[key] in values,
            "NotIn": not present or labels[key] not in values,
            "Exists": present,
            "DoesNotExist": not present,
        }.get(op, False)
        if not ok:
            return False
    return True


@dataclass(frozen=True)
class EgressDecision:
    denied: bool
    partial: bool = False  # some selecting policy allows some egress: not emulated, all allowed


def egress(policies: Sequence[Mapping[str, Any]], labels: Mapping[str, str]) -> EgressDecision:
    """Whether the NetworkPolicies of the pod's namespace deny its egress.

    Policies are additive allows: egress is isolated once one selecting policy has ``Egress``
    in ``policyTypes`` (implied by an ``egress`` field), and then allowed only by their rules.
    Local mode cannot filter by destination, so any rule at all lets everything out.
    """
    isolating = [
        p.get("spec") or {}
        for p in policies
        if selects((p.get("spec") or {}).get("podSelector"), labels) and "Egress" in _policy_types(p)
    ]
    if not isolating:
        return EgressDecision(denied=False)
    if any(spec.get("egress") for spec in isolating):
        return EgressDecision(denied=False, partial=True)
    return EgressDecision(denied=True)


def _policy_types(policy: Mapping[str, Any]) -> list[str]:
    spec = policy.get("spec") or {}
    if spec.get("policyTypes"):
        return list(spec["policyTypes"])
    return ["Ingress", "Egress"] if spec.get("egress") else ["Ingress"]


def _first(*values: Any) -> Any:
    return next((v for v in values if v is not None), None)
