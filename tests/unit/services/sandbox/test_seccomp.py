"""The seccomp policy built with libseccomp: each decision, for x86_64 and for aarch64."""

from __future__ import annotations

import errno
import struct
from pathlib import Path

import pytest

from services.sandbox import libseccomp, seccomp

AUDIT_ARCH_X86_64 = 0xC000003E
AUDIT_ARCH_I386 = 0x40000003
AUDIT_ARCH_AARCH64 = 0xC00000B7
AUDIT_ARCH_ARM = 0x40000028
X32_SYSCALL_BIT = 0x40000000
ALLOW = 0x7FFF0000
KILL_PROCESS = 0x80000000
EPERM = 0x00050000 | errno.EPERM
ENOSYS = 0x00050000 | errno.ENOSYS
CLONE_NEWNET, SIGCHLD, CLONE_VM_THREAD = 0x40000000, 17, 0x00000100 | 0x00010000
# the numbers the hand-assembled x86_64 filter denied with EPERM (clone, clone3 and socket aside)
OLD_DENIED_X86_64 = {
    101, 103, 135, 153, 155, 159, 161, 163, 164, 165, 166, 167, 168, 169, 172, 173, 175, 176,
    179, 212, 227, 246, 248, 249, 250, 272, 298, 300, 303, 304, 308, 310, 311, 312, 313, 320,
    321, 323, 425, 426, 427, 428, 429, 430, 431, 432, 433, 442,
}  # fmt: skip
CLONE_X86_64, CLONE3, SOCKET_X86_64 = 56, 435, 41
CLONE_AARCH64, SOCKET_AARCH64, SOCKETPAIR_AARCH64 = 220, 198, 199


def decide(prog: bytes, nr: int, arch: int, *args: int) -> int:
    """Run a classic BPF seccomp program on one syscall, as the kernel would: its action."""
    data = struct.pack("=iIQ6Q", nr, arch, 0, *(list(args) + [0] * 6)[:6])
    ins = [struct.unpack("=HBBI", prog[i : i + 8]) for i in range(0, len(prog), 8)]
    pc = acc = 0
    while True:
        code, jt, jf, k = ins[pc]
        pc += 1
        if code == 0x20:  # ld [k]
            acc = struct.unpack_from("=I", data, k)[0]
        elif code == 0x06:  # ret k
            return k
        elif code == 0x05:  # ja k
            pc += k
        elif code in (0x15, 0x25, 0x35, 0x45):  # jeq, jgt, jge, jset
            ops = {0x15: acc == k, 0x25: acc > k, 0x35: acc >= k, 0x45: bool(acc & k)}
            pc += jt if ops[code] else jf
        elif code == 0x54:  # and k
            acc &= k
        else:
            raise AssertionError(f"an instruction the test does not know: {code:#x}")


def number(arch: str, name: str) -> int:
    """A syscall's number on an architecture, as libseccomp knows it."""
    lib = libseccomp.load().module
    assert lib is not None, libseccomp.load().reason
    return lib.resolve_syscall(getattr(lib.Arch, seccomp.ARCHES[arch]), name)


def test_the_x86_64_filter_decides_every_syscall_as_the_hand_assembled_one_did() -> None:
    prog = seccomp.build_filter(arch="x86_64")
    for nr in range(600):
        want = EPERM if nr in OLD_DENIED_X86_64 else ENOSYS if nr == CLONE3 else ALLOW
        assert decide(prog, nr, AUDIT_ARCH_X86_64) == want, nr
        assert decide(prog, nr | X32_SYSCALL_BIT, AUDIT_ARCH_X86_64) == KILL_PROCESS
        assert decide(prog, nr, AUDIT_ARCH_I386) == KILL_PROCESS


def test_clone_making_a_namespace_is_denied_and_a_plain_fork_or_thread_is_not() -> None:
    prog = seccomp.build_filter(arch="x86_64")
    for flag in seccomp.CLONE_NEW_FLAGS:
        assert decide(prog, CLONE_X86_64, AUDIT_ARCH_X86_64, flag | SIGCHLD) == EPERM
    assert decide(prog, CLONE_X86_64, AUDIT_ARCH_X86_64, SIGCHLD) == ALLOW
    assert decide(prog, CLONE_X86_64, AUDIT_ARCH_X86_64, CLONE_VM_THREAD) == ALLOW


def test_the_fallback_filter_refuses_every_socket_family_but_not_socketpair() -> None:
    prog = seccomp.build_filter(socket_families=seccomp.FALLBACK_SOCKET_FAMILIES, arch="x86_64")
    for family in (0, 1, 2, 10, 16, 17, 1 << 32 | 1):
        assert decide(prog, SOCKET_X86_64, AUDIT_ARCH_X86_64, family) == EPERM
    assert decide(prog, 53, AUDIT_ARCH_X86_64, 1) == ALLOW  # socketpair(AF_UNIX, ...)
    assert decide(seccomp.build_filter(arch="x86_64"), SOCKET_X86_64, AUDIT_ARCH_X86_64) == ALLOW


def test_allowed_socket_families_pass_and_every_other_value_is_refused() -> None:
    prog = seccomp.build_filter(socket_families=frozenset({1, 10}), arch="x86_64")
    allowed = {f for f in range(64) if decide(prog, SOCKET_X86_64, AUDIT_ARCH_X86_64, f) == ALLOW}
    assert allowed == {1, 10}
    assert decide(prog, SOCKET_X86_64, AUDIT_ARCH_X86_64, 1 << 32 | 1) == EPERM


def test_a_filter_for_aarch64_can_be_exported_and_denies_the_same_names() -> None:
    prog = seccomp.build_filter(arch="aarch64")
    assert prog and len(prog) % 8 == 0
    denied = {number("aarch64", name) for name in seccomp.DENIED}
    for nr in range(500):
        want = EPERM if nr in denied else ENOSYS if nr == CLONE3 else ALLOW
        assert decide(prog, nr, AUDIT_ARCH_AARCH64) == want, nr
    assert decide(prog, number("aarch64", "ptrace"), AUDIT_ARCH_AARCH64) == EPERM
    assert decide(prog, CLONE_AARCH64, AUDIT_ARCH_AARCH64, CLONE_NEWNET) == EPERM
    assert decide(prog, CLONE_AARCH64, AUDIT_ARCH_AARCH64, SIGCHLD) == ALLOW
    assert decide(prog, 0, AUDIT_ARCH_ARM) == KILL_PROCESS
    assert decide(prog, 0, AUDIT_ARCH_X86_64) == KILL_PROCESS
    fallback = seccomp.build_filter(socket_families=frozenset(), arch="aarch64")
    assert decide(fallback, SOCKET_AARCH64, AUDIT_ARCH_AARCH64, 1) == EPERM
    assert decide(fallback, SOCKETPAIR_AARCH64, AUDIT_ARCH_AARCH64, 1) == ALLOW


def test_an_architecture_without_a_policy_is_refused() -> None:
    with pytest.raises(ValueError):
        seccomp.build_filter(arch="s390x")


def test_the_binding_is_missing_when_no_file_fits_this_interpreter(tmp_path: Path) -> None:
    (tmp_path / "seccomp.cpython-39-x86_64-linux-gnu.so").write_bytes(b"")
    binding = libseccomp.find((tmp_path,))
    assert binding.module is None
    assert binding.reason and libseccomp.PACKAGE in binding.reason


def test_debian_s_binding_loads_into_this_interpreter() -> None:
    binding = libseccomp.load()
    assert binding.module is not None, binding.reason
    assert hasattr(binding.module, "SyscallFilter")
