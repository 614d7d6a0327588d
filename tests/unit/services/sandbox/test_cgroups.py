"""Reading where the service sits in the cgroup v2 hierarchy."""

from __future__ import annotations

from pathlib import Path

from services.sandbox.cgroups import cgroup2_mount, enter_prefix, own_cgroup

UNIFIED = (
    "25 30 0:22 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw\n"
    "26 30 0:23 / /proc rw,nosuid shared:10 - proc proc rw\n"
)
HYBRID = (
    "31 25 0:26 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
    "32 25 0:27 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n"
)


def test_the_cgroup2_mount_and_our_path_in_it_are_read() -> None:
    assert cgroup2_mount(UNIFIED) == "/sys/fs/cgroup"
    assert cgroup2_mount(HYBRID) == "/sys/fs/cgroup/unified"
    assert cgroup2_mount("26 30 0:23 / /proc rw - proc proc rw\n") is None
    assert own_cgroup("0::/system.slice/switchboard-sandbox.service\n") == (
        "/system.slice/switchboard-sandbox.service"
    )
    assert own_cgroup("4:memory:/x\n1:cpu:/\n") is None


def test_a_sandbox_enters_its_cgroup_by_a_shell_prefix_and_none_without_one() -> None:
    assert enter_prefix(None) == []
    prefix = enter_prefix(Path("/sys/fs/cgroup/x/sandboxes/sb-1"))
    assert prefix[:2] == ["/bin/sh", "-c"] and prefix[-1].endswith("sb-1/cgroup.procs")
