"""The seccomp policy of every sandboxed process, built with libseccomp as BPF for `--seccomp FD`.

The filter holds one architecture, the node's own (x86_64 or aarch64): a syscall made through
any other ABI the kernel offers (i386 or x32 on x86_64, 32-bit arm on aarch64) kills the
process, as those compat entry points are where escapes have hidden. Escape-prone syscalls and
clone() with a CLONE_NEW* flag answer EPERM; clone3() answers ENOSYS, so libc falls back to
clone(), whose flags the filter can read. Without libseccomp (`supported()` is False, with
`unavailable_reason()`), bwrap runs without a filter and the fallback tier is not offered: the
status report then lists "a seccomp filter" as missing.
"""

from __future__ import annotations

import errno
import functools
import os
import platform
from typing import Any

from services.sandbox import libseccomp

# denied with EPERM, by name: each architecture gets its own numbers from libseccomp
DENIED: tuple[str, ...] = (
    "ptrace",
    "syslog",
    "personality",
    "vhangup",
    "pivot_root",
    "adjtimex",
    "chroot",
    "acct",
    "settimeofday",
    "mount",
    "umount2",
    "swapon",
    "swapoff",
    "reboot",
    "iopl",
    "ioperm",
    "init_module",
    "delete_module",
    "quotactl",
    "lookup_dcookie",
    "clock_settime",
    "kexec_load",
    "add_key",
    "request_key",
    "keyctl",
    "unshare",
    "perf_event_open",
    "fanotify_init",
    "name_to_handle_at",
    "open_by_handle_at",
    "setns",
    "process_vm_readv",
    "process_vm_writev",
    "kcmp",
    "finit_module",
    "kexec_file_load",
    "bpf",
    "userfaultfd",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "open_tree",
    "move_mount",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "mount_setattr",
)
# CLONE_NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET, NEWTIME: clone() flags that
# make a namespace (clone's first argument is its flags on both architectures)
CLONE_NEW_FLAGS: tuple[int, ...] = (
    0x00020000,
    0x02000000,
    0x04000000,
    0x08000000,
    0x10000000,
    0x20000000,
    0x40000000,
    0x00000080,
)
# socket() families the fallback tier allows: none. Landlock cannot police UDP, TCP before ABI 4,
# raw, netlink or packet sockets, nor connect() to a host service's pathname Unix socket;
# socketpair() (a different syscall, what asyncio and libuv use) stays allowed.
FALLBACK_SOCKET_FAMILIES: frozenset[int] = frozenset()
# the architectures whose syscall arguments this policy was checked against, by uname name
ARCHES: dict[str, str] = {
    "x86_64": "X86_64",
    "amd64": "X86_64",
    "aarch64": "AARCH64",
    "arm64": "AARCH64",
}


def native_arch() -> str:
    """The node's architecture, as uname names it (lower case)."""
    return platform.machine().lower()


def unavailable_reason() -> str | None:
    """Why no filter can be built here (None when one can)."""
    binding = libseccomp.load()
    if binding.module is None:
        return f"libseccomp's Python binding is missing: {binding.reason}"
    if native_arch() not in ARCHES:
        return f"no seccomp policy for the {native_arch()} architecture"
    return None


def supported() -> bool:
    """True when a filter for this node can be built (libseccomp, and a known architecture)."""
    return unavailable_reason() is None


@functools.cache
def build_filter(socket_families: frozenset[int] | None = None, arch: str | None = None) -> bytes:
    """The BPF program for `arch` (default: this node's): see the module docstring.

    With `socket_families`, socket() of any other address family answers EPERM too.
    """
    lib = libseccomp.load().module
    if lib is None:
        raise RuntimeError(unavailable_reason())
    arch = (arch or native_arch()).lower()
    if arch not in ARCHES:
        raise ValueError(f"no seccomp policy for the {arch} architecture")
    filt = _filter_for(lib, getattr(lib.Arch, ARCHES[arch]))
    eperm = lib.ERRNO(errno.EPERM)
    for name in DENIED:
        filt.add_rule(eperm, name)  # a name the arch lacks (iopl on aarch64) adds no rule
    filt.add_rule(lib.ERRNO(errno.ENOSYS), "clone3")
    for flag in CLONE_NEW_FLAGS:
        filt.add_rule(eperm, "clone", lib.Arg(0, lib.MASKED_EQ, flag, flag))
    if socket_families is not None:
        _deny_sockets(lib, filt, eperm, sorted(socket_families))
    return _export(filt)


def _filter_for(lib: Any, arch: int) -> Any:
    """An allow-by-default filter holding `arch` alone; any other ABI kills the process."""
    filt = lib.SyscallFilter(lib.ALLOW)
    filt.set_attr(lib.Attr.ACT_BADARCH, lib.KILL_PROCESS)
    native = lib.system_arch()
    if arch & 0xFFFFFFFF != native & 0xFFFFFFFF:  # the binding mixes signed and unsigned tokens
        filt.add_arch(arch)
        filt.remove_arch(lib.Arch.NATIVE)
    return filt


def _deny_sockets(lib: Any, filt: Any, action: Any, families: list[int]) -> None:
    """socket(family, ...) → `action` unless the family is one of `families`.

    libseccomp has no "not in" test: deny every family above the highest allowed one (which
    also catches values with high bits set) and each gap below it.
    """
    if not families:
        filt.add_rule(action, "socket")
        return
    allowed = set(families)
    filt.add_rule(action, "socket", lib.Arg(0, lib.GT, max(families)))
    for family in range(max(families)):
        if family not in allowed:
            filt.add_rule(action, "socket", lib.Arg(0, lib.EQ, family))


def _export(filt: Any) -> bytes:
    """The filter's BPF program, as `bwrap --seccomp` and seccomp(2) read it."""
    fd = os.memfd_create("switchboard-seccomp-export", os.MFD_CLOEXEC)
    with os.fdopen(fd, "w+b") as fh:
        filt.export_bpf(fh)
        fh.seek(0)
        return fh.read()
