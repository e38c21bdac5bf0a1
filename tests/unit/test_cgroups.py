"""Finding this process's memory cgroup from /proc (pure parsing; real cgroups are tested in tests/local)."""

from __future__ import annotations

from pathlib import Path

from podium_operator.local.cgroups import CgroupTree, own_cgroup
from podium_operator.local.jobrunner.limits import Limits, user_tasks

V1_CGROUP = """9:name=systemd:/
4:memory:/process_api/3e54
1:cpu:/
0::/
"""
V1_MOUNTS = """31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""


def test_cgroup_v1_memory_hierarchy_wins_over_an_unrelated_v2_mount():
    assert own_cgroup(V1_CGROUP, V1_MOUNTS, "memory") == CgroupTree(Path("/sys/fs/cgroup/memory/process_api/3e54"), 1)


def test_cgroup_v2_unified_hierarchy():
    mounts = "29 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n"
    assert own_cgroup("0::/user.slice/session-3.scope\n", mounts, "memory") == CgroupTree(
        Path("/sys/fs/cgroup/user.slice/session-3.scope"), 2)


def test_a_namespaced_mount_root_is_taken_off_the_path():
    mounts = "35 31 0:32 /process_api /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
    assert own_cgroup(V1_CGROUP, mounts, "memory") == CgroupTree(Path("/sys/fs/cgroup/memory/3e54"), 1)


def test_no_visible_memory_cgroup():
    assert own_cgroup(V1_CGROUP, "32 31 0:29 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n", "memory") is None
    outside = "35 31 0:32 /elsewhere /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
    assert own_cgroup(V1_CGROUP, outside, "memory") is None
    assert own_cgroup("", "", "memory") is None


def test_pids_cgroup_v1_and_v2():
    v1 = V1_CGROUP + "8:pids:/process_api/3e54\n"
    mounts = V1_MOUNTS + "39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids\n"
    assert own_cgroup(v1, mounts, "pids") == CgroupTree(Path("/sys/fs/cgroup/pids/process_api/3e54"), 1, "pids")
    # No v1 pids hierarchy: the unified one (whether it delegates pids is checked when probing).
    assert own_cgroup(V1_CGROUP, V1_MOUNTS, "pids") == CgroupTree(Path("/sys/fs/cgroup/unified"), 2, "pids")
    assert CgroupTree(Path("/x"), 2, "pids").name == "cgroup v2 pids"


def test_limits_describe_their_mechanism():
    tree = CgroupTree(Path("/sys/fs/cgroup/pids/podium"), 1, "pids")
    assert Limits(pids=tree, pids_limit=64).pids_mechanism == "cgroup v1 pids (64 per container)"
    assert Limits(pids=tree, pids_limit=64).pids_unsupported is None
    fallback = Limits(pids_limit=64, pids_why="no pids cgroup controller is mounted for this process")
    assert fallback.pids_mechanism.startswith("RLIMIT_NPROC (64 above") and fallback.pids_mechanism.endswith("mounted for this process")
    assert fallback.pids_unsupported == fallback.pids_mechanism
    assert Limits(pids_limit=None).pids_unsupported is None  # nothing asked, nothing missing
    assert Limits(memory_why="memory cgroups turned off").memory_mechanism.startswith("RLIMIT_AS")


def test_user_tasks_counts_threads_of_a_real_user(tmp_path):
    for pid, uid, threads in (("1", 0, 1), ("20", 1000, 3), ("21", 1000, 1), ("30", 1001, 8)):
        (tmp_path / pid).mkdir()
        (tmp_path / pid / "status").write_text(f"Name:\tx\nUid:\t{uid}\t{uid}\t{uid}\t{uid}\nThreads:\t{threads}\n")
    (tmp_path / "self").mkdir()  # not a process directory
    assert user_tasks(1000, tmp_path) == 4 and user_tasks(0, tmp_path) == 1 and user_tasks(7, tmp_path) == 0
