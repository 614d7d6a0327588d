"""The command of each tier: setpriv → prlimit → bwrap, the fallback's confine.py, or plain."""

from __future__ import annotations

import json
import os
import shutil

import structlog

from libs.common import process_env
from services.sandbox import cgroups, seccomp
from services.sandbox.isolation import (
    LANDLOCK_FALLBACK,
    NONE,
    Command,
    Confinement,
    host_uid,
    identity_prefix,
)
from services.sandbox.layout import Layout
from services.sandbox.settings import SandboxSettings

SANDBOX_UID = 65534  # the uid the process sees inside its namespace
SITE_PACKAGES = "/opt/switchboard/site-packages"
TOOL_PACKAGES = "/opt/switchboard/tool-packages"
PROXY_SOCKET = "/run/switchboard/proxy.sock"
SUPPORT_DIR = "/opt/switchboard/support"
WORK = "/work"
PROXY_PORT = 3128

log = structlog.get_logger()


def executable(program: str) -> str:
    """The absolute path of a program, found on the service's own PATH (OSError if none)."""
    found = shutil.which(program)
    if found is None or not os.path.isabs(found):
        raise OSError(f"{program} not found")
    return found


def inside_env(conf: Confinement) -> dict[str, str]:
    """The environment of the confined process: ours, then the server's own, minus some names.

    Dropped are the names that steer loaders and interpreters (the registry refuses them;
    dropped here in case)."""
    refused = process_env.refused_names(conf.env)
    if refused:
        log.warning("sandbox_env_dropped", key=conf.key, names=refused)
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": WORK,
        "TMPDIR": "/tmp",
        "LANG": "C.UTF-8",
        "PYTHONPATH": SITE_PACKAGES,
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1",
        **{k: v for k, v in conf.env.items() if k not in refused},
    }
    if conf.proxy_socket is not None:
        proxy = f"http://127.0.0.1:{PROXY_PORT}"
        env.update(HTTP_PROXY=proxy, HTTPS_PROXY=proxy, http_proxy=proxy, https_proxy=proxy)
    return env


def build_command(
    settings: SandboxSettings, layout: Layout, tier: str, conf: Confinement, argv: list[str]
) -> Command:
    """The full command: setpriv (as root) → prlimit → bwrap (namespaces, mounts, seccomp).

    Every launcher is an absolute path started with an empty environment; the server's env
    and the mount options (secrets included) travel in a memfd, never in argv or environ.
    """
    uid = host_uid(settings, conf.key)
    env = inside_env(conf)
    prlimit = [
        *cgroups.enter_prefix(conf.cgroup),
        *identity_prefix(uid),
        executable("prlimit"),
        *conf.limits.prlimit_args(),
        "--",
    ]
    if tier == NONE:
        env = {**env, "HOME": str(conf.workdir)}
        if conf.service_packages and layout.packages is not None:
            env["PYTHONPATH"] = str(layout.packages)
        elif not conf.service_packages:
            env["PYTHONPATH"] = conf.python_path
        return Command([*prlimit, *argv], (), uid, uid, env, str(conf.workdir))
    if tier == LANDLOCK_FALLBACK:
        return _fallback_command(settings, layout, conf, env, prlimit, argv, uid)
    args = [
        "--unshare-all",
        "--unshare-user",
        "--disable-userns",
        "--die-with-parent",
        "--new-session",
        "--uid",
        str(SANDBOX_UID),
        "--gid",
        str(SANDBOX_UID),
        "--hostname",
        "sandbox",
        "--ro-bind",
        "/usr",
        "/usr",
        "--symlink",
        "usr/bin",
        "/bin",
        "--symlink",
        "usr/sbin",
        "/sbin",
        "--symlink",
        "usr/lib",
        "/lib",
        "--symlink",
        "usr/lib64",
        "/lib64",
        "--ro-bind-try",
        "/etc/ld.so.cache",
        "/etc/ld.so.cache",
        "--ro-bind-try",
        "/etc/alternatives",
        "/etc/alternatives",
        "--ro-bind-try",
        "/etc/ssl",
        "/etc/ssl",
        "--ro-bind-try",
        "/etc/ca-certificates",
        "/etc/ca-certificates",
        "--ro-bind-try",
        "/etc/localtime",
        "/etc/localtime",
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        "--tmpfs",
        "/tmp",
        "--bind",
        str(conf.workdir),
        WORK,
        "--chdir",
        WORK,
        "--clearenv",
    ]
    if not conf.service_packages:
        env["PYTHONPATH"] = conf.python_path
    elif layout.packages is not None:
        args += ["--ro-bind", str(layout.packages), SITE_PACKAGES]
    args += ["--ro-bind", str(layout.support), SUPPORT_DIR]
    for source, dest in layout.ro_paths:
        args += ["--ro-bind-try", source, dest]
    for src, dest in conf.ro_binds:
        args += ["--ro-bind", src, dest]
    if conf.proxy_socket is not None:
        args += ["--ro-bind", str(conf.proxy_socket), PROXY_SOCKET]
    args += ["--remount-ro", "/"]  # the root tmpfs too: only /work and /tmp are writable
    for name, value in env.items():
        args += ["--setenv", name, value]
    fds: list[int] = []
    if seccomp.supported():
        fd = _memfd(seccomp.build_filter())
        args += ["--seccomp", str(fd)]
        fds.append(fd)
    options = _memfd(b"".join(a.encode() + b"\0" for a in args))
    fds.append(options)
    if conf.proxy_socket is not None:
        argv = [settings.python, f"{SUPPORT_DIR}/bridge.py", "--", *argv]
    bwrap = [executable(settings.bwrap), "--args", str(options)]
    return Command([*prlimit, *bwrap, *argv], tuple(fds), uid, uid, {})


def _fallback_command(
    settings: SandboxSettings,
    layout: Layout,
    conf: Confinement,
    env: dict[str, str],
    prlimit: list[str],
    argv: list[str],
    uid: int | None,
) -> Command:
    """Host paths, Landlock rules for them, seccomp, no network (the pod's policy adds egress).

    The launcher is the system Python in isolated mode (-I: no PYTHON* variables, no user
    site, no script dir on sys.path) with an empty environment; it confines itself, then
    executes the command with the server's environment.
    """
    support = str(layout.support)
    tmp = conf.workdir / ".tmp"
    tmp.mkdir(exist_ok=True)
    if uid is not None:
        os.chown(tmp, uid, uid)
    ro = [
        "/usr",
        "/bin",
        "/sbin",
        "/lib",
        "/lib64",
        "/etc/ld.so.cache",
        "/etc/alternatives",
        "/etc/ssl",
        "/etc/ca-certificates",
        "/etc/localtime",
        "/proc",
        "/dev/urandom",
        "/dev/random",
        "/dev/zero",
        support,
        *(dest for _, dest in layout.ro_paths),
        *(s for s, _ in conf.ro_binds),
    ]
    env = {**env, "HOME": str(conf.workdir), "TMPDIR": str(tmp)}
    if conf.service_packages and layout.packages is not None:
        ro.append(str(layout.packages))
        env["PYTHONPATH"] = str(layout.packages)
    else:
        env["PYTHONPATH"] = conf.python_path
    seccomp_fd = _memfd(seccomp.build_filter(socket_families=seccomp.FALLBACK_SOCKET_FAMILIES))
    config = {
        "ro": ro,
        "rw": [str(conf.workdir), "/dev/null"],
        "seccomp_fd": seccomp_fd,
        "landlock_abi_max": settings.landlock_abi_max,
        "env": env,
    }
    config_fd = _memfd(json.dumps(config).encode())
    launcher = [
        executable(settings.python),
        "-I",
        "-S",
        f"{support}/confine.py",
        "--config-fd",
        str(config_fd),
        "--",
    ]
    fds = (seccomp_fd, config_fd)
    return Command([*prlimit, *launcher, *argv], fds, uid, uid, {}, str(conf.workdir))


def _memfd(data: bytes) -> int:
    """An fd holding `data` at offset 0 (what --seccomp reads); the child gets it by pass_fds."""
    fd = os.memfd_create("switchboard-seccomp", os.MFD_CLOEXEC)
    os.write(fd, data)
    os.lseek(fd, 0, os.SEEK_SET)
    return fd
