"""Map a Job's pod template to a plan of local processes (pure: no I/O, no clock).

What a container becomes
    ``command`` + ``args`` → argv, with Kubernetes' ``$(VAR)`` expansion (``$$`` escapes).
    A container without ``command`` cannot run: the image entrypoint is unknown locally.
    ``env`` (``value``, ``secretKeyRef``, ``configMapKeyRef``, ``fieldRef``) and ``envFrom``
    are resolved from objects the caller fetched (see :func:`.manifests.referenced_objects`) on top of
    a small base environment chosen by the caller (the host's environment is not inherited
    wholesale, so that host credentials do not leak into pods).
    ``resources.limits.memory`` → the container's memory limit (a memory cgroup, else
    ``RLIMIT_AS``: see :mod:`podium_operator.local.cgroups`); ``limits.cpu`` is ignored.
    ``HOME`` defaults to the pod's ``tmp/`` directory (the runner's own home stays out).
    ``securityContext`` and the namespace's NetworkPolicies become the container's
    :class:`~.security.Security`, enforced by :mod:`podium_operator.local.sandbox` when it starts.

Volumes
    ``emptyDir`` (a pod directory), ``secret`` and ``configMap`` (files written before the
    containers start; mounted read-only) and ``persistentVolumeClaim``: a directory per claim
    object, shared by every pod of the namespace using it (the caller resolves claims to
    directories, see :class:`PodRefs`; a missing claim fails the pod as a real one would stay
    Pending). ``readOnly`` on the claim or the mount makes the mount read-only.
    A claim's ``resources.requests.storage`` and an emptyDir's ``sizeLimit`` are the volume's
    :attr:`VolumePlan.size_limit`, with room for one file per ``BYTES_PER_INODE`` (a default
    ext4 volume's): the job runner makes them file systems of that size, where it can.

Path-mapping rule (volumes and the termination log)
    Containers see volume directories at their host paths, not at their mount paths (even
    in a private view, see :mod:`podium_operator.local.sandbox.view`). Every occurrence of a ``volumeMount``'s
    ``mountPath`` (and of the container's ``terminationMessagePath``, default
    ``/dev/termination-log``) in ``command``, ``args``, ``env`` values and ``workingDir`` is
    replaced by the host path behind it, on path boundaries only (``/data`` maps ``/data``
    and ``/data/x``, not ``/database``, ``/mnt/data`` or ``$(HOME)/data``; the longest mount
    wins), before ``$(VAR)`` expansion. Substitution rather than symlinks at the mount
    paths, because a symlink at ``/data`` would be global to the host: two concurrent pods
    would share (or fight over) it, and as root it would litter ``/``. The contract: a
    container writing ``<mountPath>/x`` and a later container of the same pod reading
    ``<mountPath>/x`` see the same file, and two pods never do (unless they mount the same
    claim). The limit: a path assembled at run time, or read from a file, is not rewritten
    — such code should read ``PODIUM_TERMINATION_LOG`` or take paths from its arguments.

Pod directory layout (``pod_dir`` = ``<workdir>/<namespace>/<pod>``; claims live elsewhere)::

    <container>.log            stdout and stderr
    volumes/<volume>/          emptyDir, secret and configMap volumes (a sized one: a mount point)
    termination/<container>    the termination-message file
    work/<container>/          the working directory when ``workingDir`` is unset
    tmp/                       TMPDIR
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from podium_operator.local.podspec.manifests import (
    NODE_NAME,
    PlanError,
    parse_quantity,
    pod_labels,
    pod_template_spec,
)
from podium_operator.local.podspec.security import Security, container_security, egress, non_root_violation

POD_IP = "127.0.0.1"
DEFAULT_TERMINATION_PATH = "/dev/termination-log"
DEFAULT_GRACE_SECONDS = 30.0
TERMINATION_LOG_ENV = "PODIUM_TERMINATION_LOG"
PARTIAL_EGRESS = "the egress rules of its NetworkPolicies are not emulated: all egress is allowed"
BYTES_PER_INODE = 16384  # as mkfs.ext4 formats a volume by default
MIN_FILES = 64


@dataclass(frozen=True)
class Mount:
    """A volume as one container mounts it: ``path`` in the container, ``source`` on the host."""

    source: Path
    path: str
    read_only: bool = False


@dataclass(frozen=True)
class ContainerPlan:
    """One process to run; a ``sandbox`` hook may return a rewritten copy."""

    name: str
    image: str
    argv: tuple[str, ...]
    env: Mapping[str, str]
    cwd: Path
    log_path: Path
    termination_log: Path
    fallback_to_logs: bool = False
    memory_limit: int | None = None
    mounts: tuple[Mount, ...] = ()
    security: Security = Security()


@dataclass(frozen=True)
class VolumePlan:
    """A host directory standing for a pod volume, with the files to write into it."""

    path: Path
    files: Mapping[str, bytes] = field(default_factory=dict)
    read_only: bool = False
    size_limit: int | None = None  # bytes: a claim's storage request, an emptyDir's sizeLimit

    @property
    def max_files(self) -> int | None:
        """How many files (and directories) a volume of this size holds."""
        return None if self.size_limit is None else max(self.size_limit // BYTES_PER_INODE, MIN_FILES)


@dataclass(frozen=True)
class PodPlan:
    namespace: str
    name: str
    pod_dir: Path
    volumes: Mapping[str, VolumePlan]
    init_containers: tuple[ContainerPlan, ...]
    containers: tuple[ContainerPlan, ...]
    grace_seconds: float = DEFAULT_GRACE_SECONDS
    fs_group: int | None = None
    warnings: tuple[str, ...] = ()  # what local mode does not emulate for this pod

    @property
    def all_containers(self) -> tuple[ContainerPlan, ...]:
        return (*self.init_containers, *self.containers)

    @property
    def directories(self) -> list[Path]:
        """Directories to create before starting (volumes and subPaths, working dirs, termination files)."""
        dirs = [self.pod_dir / "tmp", *(v.path for v in self.volumes.values())]
        for c in self.all_containers:
            dirs.append(c.termination_log.parent)
            dirs.extend(m.source for m in c.mounts)
            if c.cwd.is_relative_to(self.pod_dir):  # never create directories outside the pod
                dirs.append(c.cwd)
        return dirs


@dataclass(frozen=True)
class PodRefs:
    """What a pod refers to, fetched by the caller (absent = missing).

    Secrets and ConfigMaps as ``{name: {key: bytes}}``; PersistentVolumeClaims as
    ``{name: host directory}`` and ``{name: storage request in bytes}``; the NetworkPolicies
    of the pod's namespace.
    """

    secrets: Mapping[str, Mapping[str, bytes]] = field(default_factory=dict)
    config_maps: Mapping[str, Mapping[str, bytes]] = field(default_factory=dict)
    claims: Mapping[str, Path] = field(default_factory=dict)
    claim_sizes: Mapping[str, int] = field(default_factory=dict)
    network_policies: Sequence[Mapping[str, Any]] = ()


# --- The plan ---------------------------------------------------------------------------------


def plan_pod(
    job: Mapping[str, Any],
    *,
    pod_name: str,
    pod_dir: Path,
    refs: PodRefs = PodRefs(),
    base_env: Mapping[str, str] | None = None,
    runner_uid: int = 0,
) -> PodPlan:
    """Plan the processes of one pod of ``job``; raise :class:`PlanError` if it cannot run.

    ``runner_uid`` is the user containers run as when they do not set ``runAsUser`` (what
    ``runAsNonRoot`` is checked against).
    """
    namespace = job["metadata"].get("namespace", "default")
    spec = pod_template_spec(job)
    if not spec.get("containers"):
        raise PlanError("the pod template has no containers")
    volumes = _plan_volumes(spec.get("volumes", []), pod_dir / "volumes", refs)
    network = egress(refs.network_policies, pod_labels(job))
    fields = {
        "metadata.name": pod_name,
        "metadata.namespace": namespace,
        "spec.nodeName": NODE_NAME,
        "spec.serviceAccountName": spec.get("serviceAccountName", "default"),
        "status.podIP": POD_IP,
        "status.hostIP": POD_IP,
    }
    tmp = str(pod_dir / "tmp")
    pod_env = {"HOME": tmp, **(base_env or {}), "HOSTNAME": pod_name, "TMPDIR": tmp}

    def plan(c: Mapping[str, Any]) -> ContainerPlan:
        security = container_security(spec, c, no_network=network.denied)
        violation = non_root_violation(spec, c, security, runner_uid)
        if violation:
            raise PlanError(f"container {c['name']!r}: {violation}")
        return _plan_container(
            c, pod_dir=pod_dir, volumes=volumes, refs=refs, fields=fields, env=pod_env, security=security
        )

    grace = spec.get("terminationGracePeriodSeconds")
    return PodPlan(
        namespace=namespace,
        name=pod_name,
        pod_dir=pod_dir,
        volumes=volumes,
        init_containers=tuple(plan(c) for c in spec.get("initContainers", [])),
        containers=tuple(plan(c) for c in spec["containers"]),
        grace_seconds=DEFAULT_GRACE_SECONDS if grace is None else float(grace),
        fs_group=(spec.get("securityContext") or {}).get("fsGroup"),
        warnings=(PARTIAL_EGRESS,) if network.partial else (),
    )


def _plan_volumes(volumes: Sequence[Mapping[str, Any]], root: Path, refs: PodRefs) -> dict[str, VolumePlan]:
    plans: dict[str, VolumePlan] = {}
    for volume in volumes:
        name = volume["name"]
        if "emptyDir" in volume:
            limit = (volume["emptyDir"] or {}).get("sizeLimit")
            plans[name] = VolumePlan(root / name, size_limit=None if limit is None else parse_quantity(str(limit)))
        elif "secret" in volume:
            source = volume["secret"]
            data = _lookup(refs.secrets, "Secret", source["secretName"], source.get("optional", False))
            plans[name] = VolumePlan(root / name, _project(data, source.get("items")), read_only=True)
        elif "configMap" in volume:
            source = volume["configMap"]
            data = _lookup(refs.config_maps, "ConfigMap", source["name"], source.get("optional", False))
            plans[name] = VolumePlan(root / name, _project(data, source.get("items")), read_only=True)
        elif "persistentVolumeClaim" in volume:
            source = volume["persistentVolumeClaim"]
            claim = source["claimName"]
            if claim not in refs.claims:
                raise PlanError(f'persistentvolumeclaim "{claim}" not found')
            read_only = bool(source.get("readOnly", False))
            plans[name] = VolumePlan(refs.claims[claim], read_only=read_only, size_limit=refs.claim_sizes.get(claim))
        else:
            kinds = sorted(set(volume) - {"name"})
            raise PlanError(
                f"volume {name!r}: unsupported type {kinds} "
                "(local mode: emptyDir, secret, configMap, persistentVolumeClaim)"
            )
    return plans


def _project(data: Mapping[str, bytes], items: Sequence[Mapping[str, str]] | None) -> dict[str, bytes]:
    if items is None:
        return dict(data)
    return {item["path"]: data[item["key"]] for item in items if item["key"] in data}


def _lookup(
    objects: Mapping[str, Mapping[str, bytes]], kind: str, name: str, optional: bool
) -> Mapping[str, bytes]:
    if name in objects:
        return objects[name]
    if optional:
        return {}
    raise PlanError(f'{kind.lower()} "{name}" not found')


def _plan_container(
    c: Mapping[str, Any],
    *,
    pod_dir: Path,
    volumes: Mapping[str, VolumePlan],
    refs: PodRefs,
    fields: Mapping[str, str],
    env: Mapping[str, str],
    security: Security,
) -> ContainerPlan:
    name, image = c["name"], c.get("image", "")
    if not c.get("command"):
        raise PlanError(
            f"container {name!r} has no command: local mode cannot know the entrypoint of image "
            f"{image!r}; set the container's command"
        )
    termination_log = pod_dir / "termination" / name
    paths = {posixpath.normpath(c.get("terminationMessagePath", DEFAULT_TERMINATION_PATH)): termination_log}
    mounts = []
    for mount in c.get("volumeMounts", []):
        volume = volumes.get(mount["name"])
        if volume is None:
            raise PlanError(f"container {name!r}: volume {mount['name']!r} is not defined in the pod")
        mount_path = posixpath.normpath(mount["mountPath"])
        if mount_path == "/":
            raise PlanError(f"container {name!r}: cannot mount a volume at /")
        sub_path = posixpath.normpath(mount.get("subPath") or ".")
        if posixpath.isabs(sub_path) or sub_path.split("/")[0] == "..":
            raise PlanError(f"container {name!r}: subPath {mount['subPath']!r} leaves its volume")
        source = volume.path / sub_path if sub_path != "." else volume.path
        paths[mount_path] = source
        mounts.append(Mount(source, mount_path, volume.read_only or bool(mount.get("readOnly", False))))
    map_paths = path_mapper(paths)

    # Map literal text first, then expand: expanded values are host paths already.
    full_env = _container_env(c, refs, fields, dict(env), map_paths)
    full_env[TERMINATION_LOG_ENV] = str(termination_log)
    argv = tuple(expand_vars(map_paths(a), full_env) for a in (*c["command"], *c.get("args", [])))
    working_dir = c.get("workingDir")
    memory = c.get("resources", {}).get("limits", {}).get("memory")
    return ContainerPlan(
        name=name,
        image=image,
        argv=argv,
        env=full_env,
        cwd=Path(map_paths(working_dir)) if working_dir else pod_dir / "work" / name,
        log_path=pod_dir / f"{name}.log",
        termination_log=termination_log,
        fallback_to_logs=c.get("terminationMessagePolicy") == "FallbackToLogsOnError",
        memory_limit=None if memory is None else parse_quantity(str(memory)),
        mounts=tuple(mounts),
        security=security,
    )


def _container_env(
    c: Mapping[str, Any],
    refs: PodRefs,
    fields: Mapping[str, str],
    env: dict[str, str],
    map_paths: Callable[[str], str],
) -> dict[str, str]:
    """``env`` updated with ``envFrom``, then ``env`` (in order, ``$(VAR)``-expanded, path-mapped)."""
    for source in c.get("envFrom", []):
        prefix = source.get("prefix", "")
        if "secretRef" in source:
            ref = source["secretRef"]
            data = _lookup(refs.secrets, "Secret", ref["name"], ref.get("optional", False))
        else:
            ref = source["configMapRef"]
            data = _lookup(refs.config_maps, "ConfigMap", ref["name"], ref.get("optional", False))
        env.update({prefix + k: map_paths(v.decode(errors="replace")) for k, v in data.items()})
    for var in c.get("env", []):
        value = _env_value(var, refs, fields, env, map_paths)
        if value is not None:
            env[var["name"]] = value
    return env


def _env_value(
    var: Mapping[str, Any],
    refs: PodRefs,
    fields: Mapping[str, str],
    env: Mapping[str, str],
    map_paths: Callable[[str], str],
) -> str | None:
    source = var.get("valueFrom")
    if source is None:
        return expand_vars(map_paths(str(var.get("value", ""))), env)
    if "fieldRef" in source:
        path = source["fieldRef"]["fieldPath"]
        if path not in fields:
            raise PlanError(f"env {var['name']!r}: fieldRef {path!r} is not supported locally")
        return fields[path]
    for key, kind, objects in (
        ("secretKeyRef", "Secret", refs.secrets),
        ("configMapKeyRef", "ConfigMap", refs.config_maps),
    ):
        if key in source:
            ref = source[key]
            optional = ref.get("optional", False)
            data = _lookup(objects, kind, ref["name"], optional)
            if ref["key"] in data:
                return map_paths(data[ref["key"]].decode(errors="replace"))
            if optional:
                return None
            raise PlanError(f"couldn't find key {ref['key']} in {kind} {ref['name']}")
    raise PlanError(f"env {var['name']!r}: unsupported valueFrom {sorted(source)}")


# --- Small pure helpers -------------------------------------------------------------------------

_VAR_REF = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.\-]*)\)")


def expand_vars(text: str, env: Mapping[str, str]) -> str:
    """Kubernetes' ``$(VAR)`` expansion: unknown references stay as they are, ``$$`` → ``$``."""

    def replace(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        return env.get(m.group(1), m.group(0))

    return _VAR_REF.sub(replace, text)


def path_mapper(paths: Mapping[str, Path]) -> Callable[[str], str]:
    """Rewrite container paths to host paths on path boundaries (see the module docstring)."""
    if not paths:
        return lambda text: text
    keys = sorted(paths, key=len, reverse=True)  # the most specific mount wins
    pattern = re.compile(r"(?<![\w.\-/)}])(" + "|".join(map(re.escape, keys)) + r")(?![\w.\-])")
    return lambda text: pattern.sub(lambda m: str(paths[m.group(1)]), text)
