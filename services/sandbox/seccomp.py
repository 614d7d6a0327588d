"""A hand-assembled seccomp-BPF filter for bwrap's `--seccomp FD`: deny escape-prone syscalls."""

from __future__ import annotations

import errno
import platform
import struct

# classic BPF opcodes
LD_W_ABS = 0x20
JEQ_K = 0x15
JGE_K = 0x35
JSET_K = 0x45
RET_K = 0x06

RET_ALLOW = 0x7FFF0000
RET_ERRNO = 0x00050000
RET_KILL_PROCESS = 0x80000000

AUDIT_ARCH_X86_64 = 0xC000003E
X32_SYSCALL_BIT = 0x40000000
# CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET | NEWTIME
CLONE_NEW_MASK = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000
CLONE_NEW_MASK |= 0x40000000 | 0x00000080

# x86_64 syscall numbers denied with EPERM
DENIED_X86_64: dict[str, int] = {
    "ptrace": 101,
    "syslog": 103,
    "personality": 135,
    "vhangup": 153,
    "pivot_root": 155,
    "adjtimex": 159,
    "chroot": 161,
    "acct": 163,
    "settimeofday": 164,
    "mount": 165,
    "umount2": 166,
    "swapon": 167,
    "swapoff": 168,
    "reboot": 169,
    "iopl": 172,
    "ioperm": 173,
    "init_module": 175,
    "delete_module": 176,
    "quotactl": 179,
    "lookup_dcookie": 212,
    "clock_settime": 227,
    "kexec_load": 246,
    "add_key": 248,
    "request_key": 249,
    "keyctl": 250,
    "unshare": 272,
    "perf_event_open": 298,
    "fanotify_init": 300,
    "name_to_handle_at": 303,
    "open_by_handle_at": 304,
    "setns": 308,
    "process_vm_readv": 310,
    "process_vm_writev": 311,
    "kcmp": 312,
    "finit_module": 313,
    "kexec_file_load": 320,
    "bpf": 321,
    "userfaultfd": 323,
    "io_uring_setup": 425,
    "io_uring_enter": 426,
    "io_uring_register": 427,
    "open_tree": 428,
    "move_mount": 429,
    "fsopen": 430,
    "fsconfig": 431,
    "fsmount": 432,
    "fspick": 433,
    "mount_setattr": 442,
}
CLONE_X86_64 = 56
CLONE3_X86_64 = 435
SOCKET_X86_64 = 41
# socket() families the fallback tier allows: none. Landlock cannot police UDP, TCP before ABI 4,
# raw, netlink or packet sockets, nor connect() to a host service's pathname Unix socket;
# socketpair() (a different syscall, what asyncio and libuv use) stays allowed.
FALLBACK_SOCKET_FAMILIES: frozenset[int] = frozenset()


def supported() -> bool:
    """True on the architectures this filter knows (x86_64)."""
    return platform.machine() in ("x86_64", "AMD64")


def _ins(code: int, jt: int, jf: int, k: int) -> bytes:
    """One `struct sock_filter`."""
    return struct.pack("=HBBI", code, jt, jf, k)


def build_filter(socket_families: frozenset[int] | None = None) -> bytes:
    """The filter program: wrong arch or x32 → kill; denied syscalls and new namespaces → EPERM;
    with `socket_families`, socket() of any other address family → EPERM."""
    eperm = RET_ERRNO | errno.EPERM
    denied = sorted(set(DENIED_X86_64.values()))
    prog = [
        _ins(LD_W_ABS, 0, 0, 4),  # arch
        _ins(JEQ_K, 1, 0, AUDIT_ARCH_X86_64),
        _ins(RET_K, 0, 0, RET_KILL_PROCESS),
        _ins(LD_W_ABS, 0, 0, 0),  # syscall number
        _ins(JGE_K, 0, 1, X32_SYSCALL_BIT),
        _ins(RET_K, 0, 0, RET_KILL_PROCESS),
        # clone3 → ENOSYS so libc falls back to clone, whose flags we can inspect
        _ins(JEQ_K, 0, 1, CLONE3_X86_64),
        _ins(RET_K, 0, 0, RET_ERRNO | errno.ENOSYS),
        _ins(JEQ_K, 0, 3, CLONE_X86_64),
        _ins(LD_W_ABS, 0, 0, 16),  # args[0], low 32 bits: the clone flags
        _ins(JSET_K, 0, 1, CLONE_NEW_MASK),
        _ins(RET_K, 0, 0, eperm),
    ]
    # after the clone block: a plain clone lands here with the accumulator holding flags,
    # so reload the number before the deny list
    prog.append(_ins(LD_W_ABS, 0, 0, 0))
    if socket_families is not None:
        prog += _socket_block(sorted(socket_families), eperm)
    n = len(denied)
    for i, nr in enumerate(denied):
        # jump to the EPERM return that follows the list (n - i - 1 jumps away, then +1 allow)
        prog.append(_ins(JEQ_K, n - i, 0, nr))
    prog.append(_ins(RET_K, 0, 0, RET_ALLOW))
    prog.append(_ins(RET_K, 0, 0, eperm))
    return b"".join(prog)


def _socket_block(families: list[int], eperm: int) -> list[bytes]:
    """socket(family, ...) → allow for `families`, EPERM otherwise; other syscalls skip the
    block with the syscall number still in the accumulator."""
    if not families:
        return [_ins(JEQ_K, 0, 1, SOCKET_X86_64), _ins(RET_K, 0, 0, eperm)]
    k = len(families)
    block = [_ins(JEQ_K, 0, k + 3, SOCKET_X86_64), _ins(LD_W_ABS, 0, 0, 16)]  # args[0]: family
    block += [_ins(JEQ_K, k - j, 0, family) for j, family in enumerate(families)]
    block += [_ins(RET_K, 0, 0, eperm), _ins(RET_K, 0, 0, RET_ALLOW)]
    return block
