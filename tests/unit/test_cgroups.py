"""Finding this process's memory cgroup from /proc (pure parsing; real cgroups are tested in tests/local)."""

from __future__ import annotations

from pathlib import Path

from podium_operator.local.cgroups import MemoryTree, own_memory_cgroup

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
    assert own_memory_cgroup(V1_CGROUP, V1_MOUNTS) == MemoryTree(Path("/sys/fs/cgroup/memory/process_api/3e54"), 1)


def test_cgroup_v2_unified_hierarchy():
    mounts = "29 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n"
    assert own_memory_cgroup("0::/user.slice/session-3.scope\n", mounts) == MemoryTree(
        Path("/sys/fs/cgroup/user.slice/session-3.scope"), 2)


def test_a_namespaced_mount_root_is_taken_off_the_path():
    mounts = "35 31 0:32 /process_api /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
    assert own_memory_cgroup(V1_CGROUP, mounts) == MemoryTree(Path("/sys/fs/cgroup/memory/3e54"), 1)


def test_no_visible_memory_cgroup():
    assert own_memory_cgroup(V1_CGROUP, "32 31 0:29 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n") is None
    outside = "35 31 0:32 /elsewhere /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
    assert own_memory_cgroup(V1_CGROUP, outside) is None
    assert own_memory_cgroup("", "") is None
