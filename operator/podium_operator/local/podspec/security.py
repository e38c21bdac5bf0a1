"""What a cluster would enforce on a container, read from its pod spec (pure functions).

The job runner emulates the parts of a pod's security that matter for untrusted code (see
:mod:`podium_operator.local.sandbox` for how they are enforced and what is not):

- ``securityContext.runAsUser`` / ``runAsGroup`` (container over pod), pod ``fsGroup`` and
  ``supplementalGroups`` (added to the process's groups, as the kubelet does). Without
  ``runAsGroup`` the group is the user's number (images usually pair them; the kubelet would
  read the image's ``/etc/passwd``, which local mode does not have).
- Without ``runAsUser``, a container runs as the user of local mode's "image": ``nobody``
  (:data:`IMAGE_UID`) when the runner is root, else the runner's own (non-root) user. Only an
  explicit ``runAsUser: 0`` runs as root. See :func:`run_as`.
- ``readOnlyRootFilesystem`` and ``allowPrivilegeEscalation: false`` (container level).
- ``runAsNonRoot``: a container that would run as root does not start, as in a cluster.
- NetworkPolicies (``networking.k8s.io/v1``): a pod selected by a policy listing ``Egress``
  gets no network when no selecting policy allows any egress.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

IMAGE_UID = IMAGE_GID = 65534  # nobody / nogroup: the user of local mode's "image" under a root runner


@dataclass(frozen=True)
class Security:
    """One container's restrictions; the default asks for nothing (local mode's image user, see :func:`run_as`)."""

    uid: int | None = None  # None: the image's user
    gid: int | None = None
    groups: tuple[int, ...] = ()  # supplementary groups (fsGroup first)
    read_only_root: bool = False
    no_new_privileges: bool = False
    no_network: bool = False
    non_root: bool = False  # runAsNonRoot


def run_as(s: Security, runner_uid: int, runner_gid: int) -> tuple[int, int]:
    """The user and group ``s`` runs as under a runner running as ``runner_uid``/``runner_gid``.

    Unset, they are the image's: ``nobody`` for a root runner (a pod asking for nothing gets no
    privileges), else the runner's own user.
    """
    image_uid, image_gid = (IMAGE_UID, IMAGE_GID) if runner_uid == 0 else (runner_uid, runner_gid)
    uid = image_uid if s.uid is None else s.uid
    gid = s.gid if s.gid is not None else (image_gid if s.uid is None else s.uid)
    return uid, gid


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
        non_root=bool(_first(ctx.get("runAsNonRoot"), pod_ctx.get("runAsNonRoot"))),
    )


def non_root_violation(
    pod_spec: Mapping[str, Any], container: Mapping[str, Any], security: Security, runner_uid: int
) -> str | None:
    """The kubelet's refusal for ``runAsNonRoot``.

    Local mode's image user is never root (see :func:`run_as`), so only an explicit
    ``runAsUser: 0`` is refused here; a runner that cannot switch to that user refuses the
    container when it starts (:mod:`podium_operator.local.sandbox.confiner`). (``runner_uid``
    no longer matters here.)
    """
    ctx = container.get("securityContext") or {}
    pod_ctx = pod_spec.get("securityContext") or {}
    if not _first(ctx.get("runAsNonRoot"), pod_ctx.get("runAsNonRoot")):
        return None
    if security.uid == 0:
        return "container's runAsUser breaks non-root policy"
    return None


def pod_group(fs_group: int | None, securities: Iterable[Security]) -> int | None:
    """The group that owns a pod's directories: ``fsGroup``, else its containers' only group.

    A container without ``runAsGroup`` counts with the image's group (that of a root runner:
    the directories' owners change only when the runner is root).
    """
    if fs_group is not None:
        return fs_group
    gids = {run_as(s, 0, 0)[1] for s in securities}
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
