"""What a tier enforces on every sandboxed process, and whether that is enough for untrusted code.

The enforcement is described guarantee by guarantee."""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass
from typing import Any

from services.sandbox.isolation import BWRAP_USERNS, LANDLOCK_FALLBACK

LANDLOCK_TCP_ABI = 4  # Landlock rules for TCP bind/connect
LANDLOCK_SCOPE_ABI = 6  # abstract Unix sockets and signals scoped to the sandbox


@dataclass(frozen=True)
class Enforcement:
    """Each guarantee of the active mechanism: yes or no, measured at start."""

    mechanism: str
    user_space_kernel: bool  # gVisor stands between the code and the host kernel
    filesystem: bool  # only its work dir writable, only the runtime readable
    network: bool  # no socket reaches anything but the egress proxy
    network_by: str | None
    separate_uid: bool  # a host uid of its own (the service runs as root)
    pid_namespace: bool  # other processes invisible and unreachable
    signals_scoped: bool  # cannot signal the service or other sandboxes
    seccomp: bool
    landlock_abi: int | None
    landlock_tcp: bool
    rlimits: bool
    cgroup_memory: bool = False  # memory.max over the whole sandbox
    cgroup_pids: bool = False  # pids.max over the whole sandbox

    def missing(self) -> list[str]:
        """The guarantees this mechanism does not give, in words."""
        wanted = [
            (self.filesystem, "filesystem isolation"),
            (self.network, "network isolation"),
            (self.separate_uid, "a uid of its own"),
            (self.pid_namespace, "a PID namespace"),
            (self.signals_scoped, "signal scoping"),
            (self.seccomp, "a seccomp filter"),
            (self.cgroup_memory, "a cgroup memory limit"),
            (self.cgroup_pids, "a cgroup pids limit"),
        ]
        return [what for present, what in wanted if not present]

    @property
    def weak(self) -> bool:
        """Whether the tier is weak: without one of the guarantees untrusted code needs.

        Untrusted code needs network and file isolation, and a uid or PID namespace between it
        and the service's processes."""
        separated = self.separate_uid or self.pid_namespace
        return not (self.network and self.filesystem and separated)

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return asdict(self)


def measure(
    mechanism: str,
    *,
    gvisor: bool,
    root: bool,
    seccomp: bool,
    landlock_abi: int,
    cgroups: bool = False,
) -> Enforcement:
    """The guarantees of `mechanism` on this host.

    Running as root gives each sandbox a uid of its own; the fallback tier's seccomp filter
    allows no socket() at all (socketpair only)."""
    report = _mechanism(mechanism, gvisor, root, seccomp, landlock_abi)
    return dataclasses.replace(report, cgroup_memory=cgroups, cgroup_pids=cgroups)


def _mechanism(
    mechanism: str, gvisor: bool, root: bool, seccomp: bool, landlock_abi: int
) -> Enforcement:
    """The guarantees of the mechanism itself."""
    if mechanism == BWRAP_USERNS:
        return Enforcement(
            mechanism=mechanism,
            user_space_kernel=gvisor,
            filesystem=True,
            network=True,
            network_by="network namespace + egress proxy",
            separate_uid=root,
            pid_namespace=True,
            signals_scoped=True,
            seccomp=seccomp,
            landlock_abi=None,
            landlock_tcp=False,
            rlimits=True,
        )
    if mechanism == LANDLOCK_FALLBACK:
        return Enforcement(
            mechanism=mechanism,
            user_space_kernel=gvisor,
            filesystem=landlock_abi >= 1,
            network=seccomp,
            network_by="seccomp" if seccomp else None,
            separate_uid=root,
            pid_namespace=False,
            signals_scoped=root or landlock_abi >= LANDLOCK_SCOPE_ABI,
            seccomp=seccomp,
            landlock_abi=landlock_abi,
            landlock_tcp=landlock_abi >= LANDLOCK_TCP_ABI,
            rlimits=True,
        )
    return Enforcement(
        mechanism=mechanism,
        user_space_kernel=gvisor,
        filesystem=False,
        network=False,
        network_by=None,
        separate_uid=root,
        pid_namespace=False,
        signals_scoped=root,
        seccomp=False,
        landlock_abi=None,
        landlock_tcp=False,
        rlimits=True,
    )
