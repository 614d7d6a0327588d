"""Fallback tier launcher: apply Landlock (files, TCP, signals) and seccomp to itself, then exec.

Runs with the system Python in isolated mode (`-I -S`: standard library only, no PYTHON*
variables) and an empty environment. Its configuration (JSON: ro, rw, seccomp_fd,
landlock_abi_max, env) comes in a memfd named by `--config-fd`; the command gets `env` only
after confinement.
"""

import ctypes
import json
import os
import struct
import sys

SYS_CREATE, SYS_ADD_RULE, SYS_RESTRICT = 444, 445, 446  # the same on x86_64 and aarch64
PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 22, 2  # prctl: no per-architecture syscall number
RULE_PATH_BENEATH = 1
READ = 1 | 4 | 8  # execute, read file, read dir
FILE_RIGHTS = 1 | 2 | 4 | (1 << 14) | (1 << 15)  # rights that apply to a file (not a dir)

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long


def fail(what: str) -> None:
    """Refuse to run unconfined."""
    err = ctypes.get_errno()
    print(f"confine: {what} failed: {os.strerror(err)}", file=sys.stderr)
    os._exit(126)


def handled_fs(abi: int) -> int:
    """Every filesystem right the kernel's Landlock ABI knows."""
    rights = (1 << 13) - 1
    if abi >= 2:
        rights |= 1 << 13  # refer
    if abi >= 3:
        rights |= 1 << 14  # truncate
    if abi >= 5:
        rights |= 1 << 15  # ioctl on devices
    return rights


def landlock(ro: list, rw: list, abi_max: int) -> None:
    """Allow reading `ro` and everything in `rw`; deny every other path, TCP and signals out."""
    abi = libc.syscall(SYS_CREATE, None, 0, 1)
    if abi < 1:
        fail("landlock")
    if abi_max > 0:
        abi = min(abi, abi_max)
    fs = handled_fs(abi)
    if abi >= 6:
        attr = struct.pack("=QQQ", fs, 3, 1 | 2)  # TCP bind+connect; abstract sockets, signals
    elif abi >= 4:
        attr = struct.pack("=QQ", fs, 3)
    else:
        attr = struct.pack("=Q", fs)
    buf = ctypes.create_string_buffer(attr, len(attr))
    ruleset = libc.syscall(SYS_CREATE, buf, len(attr), 0)
    if ruleset < 0:
        fail("landlock_create_ruleset")
    for paths, rights in ((ro, READ), (rw, fs)):
        for path in paths:
            try:
                fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            except OSError:
                continue
            is_dir = os.path.isdir(path)
            allowed = rights if is_dir else rights & FILE_RIGHTS
            rule = ctypes.create_string_buffer(struct.pack("=Qi", allowed & fs, fd), 12)
            if libc.syscall(SYS_ADD_RULE, ruleset, RULE_PATH_BENEATH, rule, 0) != 0:
                fail(f"landlock_add_rule {path}")
            os.close(fd)
    if libc.syscall(SYS_RESTRICT, ruleset, 0) != 0:
        fail("landlock_restrict_self")
    os.close(ruleset)


def seccomp(fd: int) -> None:
    """Load the BPF program read from `fd` with prctl.

    Not the seccomp syscall, whose number differs by architecture."""
    program = os.read(fd, 65536)
    os.close(fd)
    filters = ctypes.create_string_buffer(program, len(program))
    prog = struct.pack("=HxxxxxxQ", len(program) // 8, ctypes.addressof(filters))
    buf = ctypes.create_string_buffer(prog, len(prog))
    if libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, buf, 0, 0) != 0:
        fail("seccomp")


def read_config(fd: int) -> dict:
    """The launcher's configuration from its memfd (closed after reading)."""
    chunks = []
    while chunk := os.read(fd, 1 << 20):
        chunks.append(chunk)
    os.close(fd)
    return json.loads(b"".join(chunks))


def main() -> None:
    """Confine, then exec the command with its own environment."""
    config = read_config(int(sys.argv[sys.argv.index("--config-fd") + 1]))
    argv = sys.argv[sys.argv.index("--") + 1 :]
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        fail("no_new_privs")
    landlock(config["ro"], config["rw"], int(config.get("landlock_abi_max") or 0))
    if config.get("seccomp_fd") is not None:
        seccomp(int(config["seccomp_fd"]))
    try:
        os.execvpe(argv[0], argv, config["env"])
    except OSError as exc:
        print(f"cannot run {argv[0]}: {exc}", file=sys.stderr)
        os._exit(127)


if __name__ == "__main__":
    main()
