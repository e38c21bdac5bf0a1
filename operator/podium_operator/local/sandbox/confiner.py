"""Local mode's sandbox: enforce on each container what a cluster would, or refuse to run it.

What a pod spec asks for (:mod:`podium_operator.local.podspec.security`) and how it is enforced:

=================  ================================================  ==================
restriction        enforcement                                        needs
=================  ================================================  ==================
``user``           ``runAsUser``/``runAsGroup``, groups ``fsGroup``   root, or a user
                   + ``supplementalGroups``: setgroups/setgid/setuid  namespace
``mounts``         private mount, PID and IPC namespaces and a root   CAP_SYS_ADMIN (as
                   file system built from nothing (``root_fs``),      root, or in that
                   holding only what an image would and the           user namespace)
                   container's own directories (:mod:`.view`); a
                   fresh ``/proc`` showing only its processes
``readonly_root``  ``readOnlyRootFilesystem``: that root read-only,   ``mounts``
                   but for the container's writable volumes
``network``        a NetworkPolicy denying the pod's egress: a fresh  as ``mounts``
                   network namespace (a down loopback, nothing else)
=================  ================================================  ==================

A container that does not set ``runAsUser`` runs as local mode's image user (``nobody`` under
a root runner, see :func:`~podium_operator.local.podspec.security.run_as`), confined like any
other non-root container; only ``runAsUser: 0`` runs as root (on a runner that is not root: as
the runner's user).

How (:func:`sandbox_support`'s ``mode``): as ``root``; in ``userns`` mode, for a runner that is
not root, each sandbox starts with an unprivileged user namespace mapping the container's user
to the runner's (supplementary groups cannot be set there; every pod's files belong to the
runner, and only the new root keeps pods apart); ``none``: neither is possible.

Fail closed: a container asking for a restriction this machine cannot enforce does not run;
its pod fails, naming what is missing. Only the image user is best effort: where it cannot be
switched to, a container that asks for nothing runs as the runner (the runner log says so),
unless it has ``runAsNonRoot``.

Always, without privileges: no service-account token exists in local mode, whatever
``automountServiceAccountToken`` says (nothing is mounted at
``/var/run/secrets/kubernetes.io/serviceaccount``); the environment is the container's own
plus the runner's small base (credentials such as ``AWS_*`` never pass, see
:class:`~podium_operator.local.jobrunner.runner.JobRunner`); ``allowPrivilegeEscalation: false`` sets ``no_new_privs``;
directories get owners and modes that keep pods apart (:mod:`.fs`).

Not emulated: capabilities of root containers (``drop: [ALL]``), seccomp and AppArmor
profiles, ingress policies, egress rules (a policy with rules allows everything), CPU limits.
Without ``network``, a pod shares the host's abstract unix sockets (those have no path).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import os
import socket
import subprocess
import sys
import sysconfig
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from podium_operator.local.podspec.plan import ContainerPlan, PodPlan
from podium_operator.local.podspec.security import IMAGE_UID, Security, run_as
from podium_operator.local.sandbox.fs import prepare_pod
from podium_operator.local.sandbox.view import (
    Bind,
    Dir,
    File,
    Image,
    Link,
    Tmpfs,
    blocked_ancestor,
    host_image,
    plan_view,
)

log = logging.getLogger(__name__)

RESTRICTIONS = ("user", "network", "mounts", "readonly_root")
CHECKS = (*RESTRICTIONS, "root_fs", "userns")  # what the probe reports, besides the mode
MODES = {
    "root": "as root: namespaces, a root file system of its own, the pod's user",
    "userns": "unprivileged user namespaces, the runner not being root",
    "none": "no confinement: the runner is not root and may not create user namespaces",
}
EXEC_SCRIPT = Path(__file__).with_name("enter.py")
_STRANGER = -1  # a user owning nothing, in no group: what "other users" may do


def sandbox_support(workdir: Path | None = None) -> dict[str, str | None]:
    """``{check: None}`` when this machine can enforce it, else ``{check: why not}``, and ``mode``.

    The checks are :data:`RESTRICTIONS`, ``root_fs`` (building a root file system from nothing,
    which ``mounts`` needs) and ``userns`` (unprivileged user namespaces); ``mode`` says how they
    are enforced (a key of :data:`MODES`). With a runner's ``workdir``, switching users
    without private mounts also requires that other users can reach it.
    """
    support = dict(_probe())
    if support["user"] is None and support["mounts"] is not None:
        for path in (*runtime_dirs(), *([workdir] if workdir else [])):
            blocked = blocked_ancestor(path, _STRANGER, ())
            if blocked is not None:
                support["user"] = (
                    f"without private mounts, other users cannot reach {path} ({blocked} is closed)"
                )
                break
    return support


def describe(support: Mapping[str, str | None]) -> str:
    """One line saying how this runner confines pods (what ``podium local up`` prints)."""
    mode = support.get("mode") or "none"
    missing = [r for r in RESTRICTIONS if support.get(r, "not probed") is not None]
    verdict = f"pods asking for {', '.join(missing)} fail" if missing else "every restriction is enforced"
    return f"sandbox mode {mode} ({MODES.get(mode, mode)}): {verdict}"


@functools.cache
def _probe() -> tuple[tuple[str, str | None], ...]:
    command = [sys.executable, "-I", "-S", str(EXEC_SCRIPT), "--probe"]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=30, check=True)
        found: dict[str, str | None] = json.loads(done.stdout)
    except (OSError, subprocess.SubprocessError, ValueError) as e:
        found = {**dict.fromkeys(CHECKS, f"the sandbox probe failed: {e}"), "mode": "none"}
    return (*((r, found.get(r, "not probed")) for r in CHECKS), ("mode", found.get("mode") or "none"))


class SandboxUnavailable(PermissionError):
    """A container asks for a restriction this machine cannot enforce: it must not run."""


@dataclass(frozen=True)
class Decision:
    """How one container runs: as whom, under which restrictions, or why not at all."""

    uid: int
    gid: int
    enforced: tuple[str, ...]
    refused: str | None = None
    note: str | None = None  # what the runner log should say


class Confiner:
    """Prepares pods' directories and wraps containers' commands in their sandbox."""

    def __init__(
        self, workdir: Path, support: Mapping[str, str | None] | None = None, *, runner: tuple[int, int] | None = None
    ) -> None:
        self.workdir = workdir
        #: The runner's user and group (this process's, unless told otherwise).
        self.runner = runner or (os.geteuid(), os.getegid())
        found = dict(sandbox_support(workdir) if support is None else support)
        self.support = {**dict.fromkeys(CHECKS, "not probed"), **found}
        #: How containers are confined: a key of :data:`MODES`.
        self.mode = str(found.get("mode") or ("root" if self.runner[0] == 0 else "none"))
        self.support["mode"] = self.mode
        log.info("Local %s", describe(self.support))
        for restriction in RESTRICTIONS:
            if self.support[restriction] is not None:
                log.warning("Local sandbox: %s cannot be enforced on this machine (pods asking for it fail): %s",
                            restriction, self.support[restriction])  # fmt: skip

    def describe(self) -> str:
        """One line: how this runner confines pods."""
        return describe(self.support)

    def prepare(self, plan: PodPlan) -> None:
        """Create the pod's directories (owners and modes included, see :mod:`.fs`); refuse a pod
        that asks for what this machine cannot enforce (:class:`SandboxUnavailable`)."""
        for warning in plan.warnings:
            log.warning("Pod %s/%s: %s", plan.namespace, plan.name, warning)
        for c in plan.all_containers:
            decision = self.decide(c.security)
            if decision.refused is not None:
                raise SandboxUnavailable(f"container {c.name!r}: {decision.refused}")
        prepare_pod(plan, self.workdir, chown=self.mode == "root" and self.support["user"] is None)

    def command(self, c: ContainerPlan, pod: PodPlan) -> tuple[tuple[str, ...], Path]:
        """The argv and working directory that start ``c`` in its sandbox."""
        return self.wrap(c, self.sandbox_spec(c, pod))

    @staticmethod
    def wrap(c: ContainerPlan, spec: dict[str, Any] | None) -> tuple[tuple[str, ...], Path]:
        """The argv and working directory that start ``c`` in the sandbox ``spec`` (None: as it is)."""
        if spec is None:
            return c.argv, c.cwd
        if spec.get("refuse"):
            raise SandboxUnavailable(spec["refuse"])
        return (sys.executable, "-I", "-S", str(EXEC_SCRIPT), json.dumps(spec), "--", *c.argv), Path("/")

    def decide(self, s: Security) -> Decision:
        """As whom and how ``s`` runs on this runner, or why it must not."""
        runner = self.runner
        uid, gid = run_as(s, *runner)
        note = None
        if uid == 0 and runner[0] != 0:
            uid, gid = runner
            note = f"runAsUser 0 runs as the runner's user ({runner[0]}): local mode cannot grant root"
        missing = self._missing(dataclasses.replace(s, uid=uid, gid=gid), runner)
        if missing and s.uid is None and s.gid is None and (uid, gid) != runner:  # the image user: best effort
            reasons = "; ".join(f"{r}: {self.support[r]}" for r in missing)
            if s.non_root and runner[0] == 0:
                return Decision(uid, gid, (), refused=f"runAsNonRoot, but this runner cannot run it as another user ({reasons})")
            uid, gid = runner
            note = f"runs as the runner's user ({uid}), not as uid {IMAGE_UID}: {reasons}"
            missing = self._missing(dataclasses.replace(s, uid=uid, gid=gid), runner)
        if missing:
            what = "; ".join(f"{r} ({self.support[r]})" for r in missing)
            return Decision(uid, gid, (), refused=f"this machine cannot enforce what it asks for, so it does not run: {what}")
        wanted = requested(dataclasses.replace(s, uid=uid, gid=gid), *runner)
        return Decision(uid, gid, tuple(wanted), note=note)

    def _missing(self, s: Security, runner: tuple[int, int]) -> list[str]:
        return [r for r in requested(s, *runner) if self.support[r] is not None]

    def sandbox_spec(self, c: ContainerPlan, pod: PodPlan) -> dict[str, Any] | None:
        """What :func:`.enter.enter` sets up for ``c``; None when it needs no sandbox."""
        decision = self.decide(c.security)
        if decision.note:
            log.warning("Pod %s/%s, container %s: %s", pod.namespace, pod.name, c.name, decision.note)
        if decision.refused is not None:
            return {"refuse": f"container {c.name!r}: {decision.refused}"}
        if not decision.enforced and not c.security.no_new_privileges:
            return None
        return self._spec(c, pod, decision)

    def _spec(self, c: ContainerPlan, pod: PodPlan, d: Decision) -> dict[str, Any]:
        s, enforced = c.security, d.enforced
        userns = self.mode == "userns" and bool({"network", "mounts"} & set(enforced))
        spec: dict[str, Any] = {
            "network": "network" in enforced,
            "isolate": "mounts" in enforced,
            "userns": list(self.runner) if userns else None,
            "root": [],
            "read_only_root": "readonly_root" in enforced,
            "user": [d.uid, d.gid, list(s.groups)] if "user" in enforced else None,
            "no_new_privileges": s.no_new_privileges,
            "cwd": str(c.cwd),
        }
        if "mounts" in enforced:
            view = plan_view(c, pod_dir=pod.pod_dir, workdir=self.workdir, image=image(),
                             user=(d.uid, d.gid, s.groups), hostname=_hostname())  # fmt: skip
            spec["root"] = [_entry(e) for e in view.entries]
        return spec



def requested(s: Security, runner_uid: int, runner_gid: int) -> list[str]:
    """The restrictions ``s`` needs, for a runner running as ``runner_uid``/``runner_gid``."""
    uid, gid = run_as(s, runner_uid, runner_gid)
    other_user = (uid, gid) != (runner_uid, runner_gid)
    wanted = []
    if other_user:
        wanted.append("user")
    if s.no_network:
        wanted.append("network")
    if other_user and uid != 0 or s.read_only_root:
        wanted.append("mounts")  # (not for root: it could undo them, unless to make / read-only)
    if s.read_only_root:
        wanted.append("readonly_root")
    return wanted


def runtime_dirs() -> list[Path]:
    """What the image holds of this interpreter: its prefixes and library directories, and the
    directories of Podium's own packages (an editable install maps them, not the checkout)."""
    import podium
    import podium_operator

    paths = [sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
             *(sysconfig.get_paths().get(k, "") for k in ("stdlib", "platstdlib", "purelib", "platlib")),
             *(os.path.dirname(p.__file__) for p in (podium, podium_operator) if p.__file__)]  # fmt: skip
    found = [Path(p) for p in paths if p]
    return list(dict.fromkeys([*found, *(p.resolve() for p in found)]))


@functools.cache
def image() -> Image:
    return host_image(runtime_dirs())


@functools.cache
def _hostname() -> str:
    return socket.gethostname()


def _entry(e: Tmpfs | Bind | Link | File | Dir) -> list[Any]:
    if isinstance(e, Tmpfs):
        return ["tmpfs", str(e.path), e.mode, e.writable]
    if isinstance(e, Bind):
        return ["bind", str(e.source), str(e.target), e.writable, str(e.below) if e.below else None]
    if isinstance(e, Link):
        return ["link", str(e.path), e.to]
    if isinstance(e, File):
        return ["file", str(e.path), e.text, e.mode]
    return ["dir", str(e.path)]
