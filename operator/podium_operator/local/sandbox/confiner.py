"""Local mode's sandbox: enforce on each container what a cluster would, as far as the OS allows.

What a pod spec asks for (:mod:`podium_operator.local.podspec.security`) and how it is enforced:

=================  ================================================  ==================
restriction        enforcement                                        needs
=================  ================================================  ==================
``user``           ``runAsUser``/``runAsGroup``, groups ``fsGroup``   root
                   + ``supplementalGroups``: setgroups/setgid/setuid
``mounts``         private mount, PID and IPC namespaces: a view      root (CAP_SYS_ADMIN)
                   hiding the workdir, ``/tmp``, ``/dev/shm`` (and
                   unreachable dirs on the way to the runtime),
                   with only the container's own directories put
                   back (:mod:`.view`); a fresh ``/proc``
                   showing only the container's processes
``readonly_root``  ``readOnlyRootFilesystem``: every mount but the    ``mounts``
                   container's writable volumes read-only
``network``        a NetworkPolicy denying the pod's egress: a fresh  root (CAP_SYS_ADMIN)
                   network namespace (a down loopback, nothing else)
=================  ================================================  ==================

Always, without privileges: no service-account token exists in local mode, whatever
``automountServiceAccountToken`` says (nothing is mounted at
``/var/run/secrets/kubernetes.io/serviceaccount``); the environment is the container's own
plus the runner's small base (credentials such as ``AWS_*`` never pass, see
:class:`~podium_operator.local.jobrunner.runner.JobRunner`); ``allowPrivilegeEscalation: false`` sets ``no_new_privs``;
directories get owners and modes that keep pods apart (:mod:`.fs`).

:func:`sandbox_support` says which restrictions this machine allows. A container asking for
one that it does not still runs, and the runner log says what was not enforced (once per
runner, and for each such container).

Not emulated: capabilities of root containers (``drop: [ALL]``), seccomp and AppArmor
profiles, ingress policies, egress rules (a policy with rules allows everything), CPU limits.
Without ``mounts``, pods sharing a user (or group) can reach each other's directories by path.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from podium_operator.local.podspec.plan import ContainerPlan, PodPlan
from podium_operator.local.podspec.security import Security
from podium_operator.local.sandbox.fs import prepare_pod
from podium_operator.local.sandbox.view import blocked_ancestor, plan_view

log = logging.getLogger(__name__)

RESTRICTIONS = ("user", "network", "mounts", "readonly_root")
EXEC_SCRIPT = Path(__file__).with_name("enter.py")
_STRANGER = -1  # a user owning nothing, in no group: what "other users" may do


def sandbox_support(workdir: Path | None = None) -> dict[str, str | None]:
    """``{restriction: None}`` when this machine can enforce it, else ``{restriction: why not}``.

    With a runner's ``workdir``, switching users also requires that, without private mounts,
    other users can reach it (as they must reach the Python runtime).
    """
    support = dict(_probe())
    if support["user"] is None and support["mounts"] is not None:
        for path in (*_runtime_prefixes(), *([workdir] if workdir else [])):
            blocked = blocked_ancestor(path, _STRANGER, ())
            if blocked is not None:
                support["user"] = (
                    f"without private mounts, other users cannot reach {path} ({blocked} is closed)"
                )
                break
    return support


@functools.cache
def _probe() -> tuple[tuple[str, str | None], ...]:
    command = [sys.executable, "-I", "-S", str(EXEC_SCRIPT), "--probe"]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=30, check=True)
        found: dict[str, str | None] = json.loads(done.stdout)
    except (OSError, subprocess.SubprocessError, ValueError) as e:
        found = dict.fromkeys(RESTRICTIONS, f"the sandbox probe failed: {e}")
    return tuple((r, found.get(r, "not probed")) for r in RESTRICTIONS)


class Confiner:
    """Prepares pods' directories and wraps containers' commands in their sandbox."""

    def __init__(self, workdir: Path, support: Mapping[str, str | None] | None = None) -> None:
        self.workdir = workdir
        self.support = dict(sandbox_support(workdir) if support is None else support)
        for restriction, reason in self.support.items():
            if reason is not None:
                log.warning("Local sandbox: %s is not enforced on this machine: %s", restriction, reason)

    def prepare(self, plan: PodPlan) -> None:
        """Create the pod's directories (owners and modes included); see :mod:`.fs`."""
        for warning in plan.warnings:
            log.warning("Pod %s/%s: %s", plan.namespace, plan.name, warning)
        prepare_pod(plan, self.workdir, chown=self.support["user"] is None)

    def command(self, c: ContainerPlan, pod: PodPlan) -> tuple[tuple[str, ...], Path]:
        """The argv and working directory that start ``c`` in its sandbox."""
        return self.wrap(c, self.sandbox_spec(c, pod))

    @staticmethod
    def wrap(c: ContainerPlan, spec: dict[str, Any] | None) -> tuple[tuple[str, ...], Path]:
        """The argv and working directory that start ``c`` in the sandbox ``spec`` (None: as it is)."""
        if spec is None:
            return c.argv, c.cwd
        return (sys.executable, "-I", "-S", str(EXEC_SCRIPT), json.dumps(spec), "--", *c.argv), Path("/")

    def sandbox_spec(self, c: ContainerPlan, pod: PodPlan) -> dict[str, Any] | None:
        """What :func:`.enter.enter` sets up for ``c``; None when it needs no sandbox."""
        s = c.security
        wanted = requested(s, os.geteuid(), os.getegid())
        enforced = [r for r in wanted if self.support[r] is None]
        for r in wanted:
            if r not in enforced:
                log.warning(
                    "Pod %s/%s, container %s: %s not enforced: %s",
                    pod.namespace, pod.name, c.name, r, self.support[r],
                )  # fmt: skip
        if not enforced and not s.no_new_privileges:
            return None
        return self._spec(c, pod, enforced)

    def _spec(self, c: ContainerPlan, pod: PodPlan, enforced: list[str]) -> dict[str, Any]:
        s = c.security
        if "user" in enforced:
            uid, gid = _or(s.uid, os.geteuid()), _or(s.gid, os.getegid())
            gids: set[int] = {gid, *s.groups}
        else:
            uid, gid, gids = os.geteuid(), os.getegid(), {os.getegid(), *os.getgroups()}
        spec: dict[str, Any] = {
            "network": "network" in enforced,
            "isolate": "mounts" in enforced,
            "tmpfs": [],
            "binds": [],
            "read_only_root": "readonly_root" in enforced,
            "user": [uid, gid, list(s.groups)] if "user" in enforced else None,
            "no_new_privileges": s.no_new_privileges,
            "cwd": str(c.cwd),
        }
        if "mounts" in enforced:
            view = plan_view(
                c, pod_dir=pod.pod_dir, workdir=self.workdir, runtime=runtime_paths(c.env), uid=uid, gids=gids
            )
            spec["tmpfs"] = [[str(t.path), t.mode, t.writable] for t in view.tmpfs]
            spec["binds"] = [[str(b.source), str(b.target), b.writable] for b in view.binds]
        return spec


def requested(s: Security, runner_uid: int, runner_gid: int) -> list[str]:
    """The restrictions ``s`` needs, for a runner running as ``runner_uid``/``runner_gid``."""
    other_user = _or(s.uid, runner_uid) != runner_uid or _or(s.gid, runner_gid) != runner_gid
    wanted = []
    if other_user:
        wanted.append("user")
    if s.no_network:
        wanted.append("network")
    if other_user and _or(s.uid, runner_uid) != 0 or s.read_only_root:
        wanted.append("mounts")  # (not for root: it could undo them, unless to make / read-only)
    if s.read_only_root:
        wanted.append("readonly_root")
    return wanted


def runtime_paths(env: Mapping[str, str]) -> list[Path]:
    """What a container needs to run Python: this interpreter's prefixes, its PATH and PYTHONPATH."""
    entries = [*env.get("PATH", "").split(os.pathsep), *env.get("PYTHONPATH", "").split(os.pathsep)]
    return [*_runtime_prefixes(), *(Path(e) for e in entries if e)]


def _runtime_prefixes() -> list[Path]:
    # Podium's own packages too: an editable install (a source checkout under /tmp, say) lives
    # outside the interpreter's prefix, and the job commands run `python -m podium...`.
    import podium
    import podium_operator

    sources = [Path(package.__file__).resolve().parent.parent for package in (podium, podium_operator)
               if package.__file__]
    return [Path(sys.prefix), Path(sys.base_prefix), *sources]


def _or(value: int | None, default: int) -> int:
    return default if value is None else value
