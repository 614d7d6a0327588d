"""Variables a hosted server may not set: loader, libc and interpreter hooks, in any case."""

from __future__ import annotations

from libs.common.process_env import is_refused, refused_names


def test_loader_libc_and_interpreter_variables_are_refused_in_any_case() -> None:
    for name in (
        "LD_PRELOAD",
        "ld_audit",
        "GLIBC_TUNABLES",
        "PYTHONHOME",
        "PYTHONSTARTUP",
        "PYTHONINSPECT",
        "NODE_OPTIONS",
        "BASH_ENV",
        "BASH_FUNC_x%%",
        "SWITCHBOARD_CONFINE",
    ):
        assert is_refused(name), name


def test_ordinary_variables_pass() -> None:
    env = {"API_TOKEN": "x", "PATH": "/usr/bin", "HOME": "/work", "NODE_ENV": "production"}
    assert refused_names(env) == []
    assert refused_names({**env, "LD_PRELOAD": "/x.so"}) == ["LD_PRELOAD"]
