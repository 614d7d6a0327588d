"""The exported seccomp filter, loaded by bwrap for a real process.

It denies what the hand-assembled x86_64 filter denied, on the node's own architecture."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from typing import Any

from services.sandbox import isolation, libseccomp, seccomp
from services.sandbox.settings import SandboxSettings

CLONE_NEWUSER, SIGCHLD = 0x10000000, 17
# zero arguments are harmless for each denied call, ptrace aside: PTRACE_ATTACH to pid 1
ARGS = {"ptrace": [16, 1]}
PROBE = r"""
import ctypes, json, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
calls = json.loads(sys.argv[1])
out = {}
for name, (nr, args) in calls.items():
    ctypes.set_errno(0)
    rc = libc.syscall(nr, *(ctypes.c_long(a) for a in args))
    out[name] = ctypes.get_errno() if rc == -1 else "ok"
status = open("/proc/self/status").read()
out["seccomp_mode"] = next(l.split()[1] for l in status.splitlines() if l.startswith("Seccomp:"))
print(json.dumps(out))
"""


def native(name: str) -> int:
    """A syscall's number on this node (negative when the architecture lacks it)."""
    lib = libseccomp.load().module
    assert lib is not None, libseccomp.load().reason
    return lib.resolve_syscall(lib.Arch.NATIVE, name)


def probe(calls: dict[str, tuple[int, list[int]]], program: bytes | None) -> dict[str, Any]:
    """Make each call in a process under bwrap (with `program` as its filter); errno or 'ok'."""
    fds: list[int] = []
    args = ["--unshare-all", "--unshare-user", "--die-with-parent", "--new-session"]
    args += ["--ro-bind", "/usr", "/usr", "--symlink", "usr/lib", "/lib"]
    args += ["--symlink", "usr/lib64", "/lib64", "--symlink", "usr/bin", "/bin"]
    args += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
    if program is not None:
        fd = os.memfd_create("seccomp-test", os.MFD_CLOEXEC)
        os.write(fd, program)
        os.lseek(fd, 0, os.SEEK_SET)
        fds.append(fd)
        args += ["--seccomp", str(fd)]
    uid = isolation.host_uid(SandboxSettings(), "seccomp-test")
    bwrap = shutil.which("bwrap") or "/usr/bin/bwrap"
    argv = [*isolation.identity_prefix(uid), bwrap, *args, "/usr/bin/python3", "-I", "-S"]
    try:
        done = subprocess.run(
            [*argv, "-c", PROBE, json.dumps(calls)],
            pass_fds=tuple(fds),
            capture_output=True,
            timeout=60,
            env={},
        )
    finally:
        for fd in fds:
            os.close(fd)
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    return json.loads(done.stdout)


def test_every_denied_syscall_answers_eperm_under_bwrap_and_clone3_enosys() -> None:
    denied = {name: native(name) for name in seccomp.DENIED}
    calls = {n: (nr, ARGS.get(n, [0] * 6)) for n, nr in denied.items() if nr >= 0}
    calls["clone_newuser"] = (native("clone"), [CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0])
    calls["clone3"] = (native("clone3"), [0, 0])
    calls["getppid"] = (native("getppid"), [])
    got = probe(calls, seccomp.build_filter())
    eperm = {name: 1 for name in calls if name not in ("clone3", "getppid")}
    assert {n: got[n] for n in eperm} == eperm
    assert got["clone3"] == 38  # ENOSYS: libc falls back to clone()
    assert got["getppid"] == "ok"
    assert got["seccomp_mode"] == "2"


def test_without_the_filter_the_same_calls_reach_the_kernel() -> None:
    calls = {
        "unshare": (native("unshare"), [0]),  # no flags: a no-op the kernel allows
        "personality": (native("personality"), [0xFFFFFFFF]),  # a query
        "process_vm_readv": (native("process_vm_readv"), [os.getpid(), 0, 0, 0, 0, 0]),
        "setns": (native("setns"), [-1, 0]),
    }
    plain = probe(calls, None)
    assert plain["unshare"] == "ok" and plain["personality"] == "ok"
    assert plain["setns"] == 9  # EBADF
    assert plain["seccomp_mode"] == "0"
    filtered = probe(calls, seccomp.build_filter())
    assert {n: filtered[n] for n in calls} == dict.fromkeys(calls, 1)


def test_the_fallback_filter_also_refuses_socket_but_not_socketpair() -> None:
    calls = {
        "socket": (native("socket"), [1, 1, 0]),  # AF_UNIX, SOCK_STREAM
        "socketpair": (native("socketpair"), [1, 1, 0, 0]),  # NULL sv: EFAULT, not EPERM
    }
    got = probe(calls, seccomp.build_filter(socket_families=seccomp.FALLBACK_SOCKET_FAMILIES))
    assert got["socket"] == 1 and got["socketpair"] == 14
