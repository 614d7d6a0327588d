"""Pure logic of the sandbox: validation, egress parsing, command building."""

from __future__ import annotations

import json
import os
from pathlib import Path

from services.sandbox import isolation, launchers
from services.sandbox.egress import parse_target
from services.sandbox.layout import Layout
from services.sandbox.settings import SandboxSettings
from services.sandbox.validation import check_arguments, validate_code


def test_validation_finds_forbidden_imports_calls_and_a_missing_entry_point() -> None:
    report = validate_code("import os\nx = eval('1')", {"type": "object"}, [])
    kinds = [p["kind"] for p in report["problems"]]
    assert report["valid"] is False
    assert kinds.count("import") == 1 and "forbidden" in kinds and "entry_point" in kinds
    ok = validate_code("import json\nasync def main(a: int):\n  return a", {"type": "object"}, [])
    assert ok["valid"] is True and ok["imports"] == ["json"]


def test_arguments_are_checked_against_the_schema() -> None:
    schema = {
        "type": "object",
        "properties": {"n": {"type": "integer"}, "s": {"type": "string"}},
        "required": ["n"],
        "additionalProperties": False,
    }
    assert check_arguments(schema, {"n": 1, "s": "x"}) == {}
    assert check_arguments(schema, {"n": True, "zz": 1}) == {
        "n": "must be of type integer",
        "zz": "is not an allowed argument",
    }
    assert check_arguments(schema, {}) == {"n": "is required"}


def test_proxy_targets_are_parsed_from_connect_and_absolute_uri_lines() -> None:
    assert parse_target("CONNECT api.example.com:443 HTTP/1.1") == (
        "CONNECT",
        "api.example.com",
        443,
        "",
    )
    assert parse_target("GET http://h:8080/a?b HTTP/1.1") == ("GET", "h", 8080, "/a?b")
    assert parse_target("GET http://h HTTP/1.1") == ("GET", "h", 80, "/")
    assert parse_target("GET /relative HTTP/1.1") is None
    assert parse_target("CONNECT nohost HTTP/1.1") is None


def options_of(cmd: isolation.Command) -> list[str]:
    """The bwrap options a command passes in its --args memfd."""
    fd = int(cmd.argv[cmd.argv.index("--args") + 1])
    assert fd in cmd.pass_fds
    return os.pread(fd, 1 << 20, 0).decode().split("\0")[:-1]


def test_the_bwrap_command_isolates_everything_and_passes_the_seccomp_fd(tmp_path: Path) -> None:
    settings = SandboxSettings(work_root=str(tmp_path))
    layout = Layout(tmp_path, tmp_path / "inside", None, (), None)
    limits = isolation.Limits(256, 5, 64, 16, 1)
    env = {"API_TOKEN": "s3cret-value", "LD_PRELOAD": "/work/evil.so"}
    conf = isolation.Confinement(key="k", workdir=tmp_path, limits=limits, env=env)
    cmd = launchers.build_command(settings, layout, isolation.BWRAP_USERNS, conf, ["python3", "x"])
    try:
        argv, options = cmd.argv, options_of(cmd)
        prlimit = next(i for i, a in enumerate(argv) if a.endswith("/prlimit"))
        assert "--as=268435456" in argv and "--nproc=16" in argv
        assert argv[prlimit + 1 :].index("--") < argv.index("--args")
        assert all(os.path.isabs(a) for a in argv[: argv.index("--args")] if not a[0] == "-")
        for flag in ("--unshare-all", "--die-with-parent", "--disable-userns", "--clearenv"):
            assert flag in options
        assert int(options[options.index("--seccomp") + 1]) in cmd.pass_fds
        assert argv[-2:] == ["python3", "x"]
        assert cmd.env == {}
        assert "s3cret-value" not in " ".join(argv) and "s3cret-value" in options
        assert "LD_PRELOAD" not in options
        assert "/etc/shadow" not in options
    finally:
        for fd in cmd.pass_fds:
            os.close(fd)


def test_the_fallback_launcher_starts_isolated_with_an_empty_environment(tmp_path: Path) -> None:
    settings = SandboxSettings(work_root=str(tmp_path))
    layout = Layout(tmp_path, tmp_path / "inside", None, (), None)
    env = {"PYTHONHOME": "/work/home", "PATH": "/work/bin", "API_TOKEN": "s3cret-value"}
    conf = isolation.Confinement(
        key="k", workdir=tmp_path, limits=isolation.Limits(256, 5, 64, 16, 1), env=env
    )
    argv = ["python3", "x"]
    cmd = launchers.build_command(settings, layout, isolation.LANDLOCK_FALLBACK, conf, argv)
    try:
        launcher = cmd.argv.index("-I") - 1
        assert os.path.isabs(cmd.argv[launcher]) and cmd.argv[launcher + 2] == "-S"
        assert cmd.env == {}
        assert "s3cret-value" not in " ".join(cmd.argv)
        fd = int(cmd.argv[cmd.argv.index("--config-fd") + 1])
        config = json.loads(os.pread(fd, 1 << 20, 0))
        assert config["env"]["API_TOKEN"] == "s3cret-value"
        assert config["env"]["PATH"] == "/work/bin"  # applied after confinement only
        assert "PYTHONHOME" not in config["env"]
    finally:
        for fd in cmd.pass_fds:
            os.close(fd)


GVISOR_PROC_VERSION = "Linux version 4.4.0 #1 SMP Sun Jan 10 15:06:54 PST 2016\n"
DEBIAN_PROC_VERSION = (
    "Linux version 6.1.0-18-amd64 (debian-kernel@lists.debian.org) (gcc-12 (Debian 12.2.0-14)"
    " 12.2.0, GNU ld (GNU Binutils for Debian) 2.40) #1 SMP PREEMPT_DYNAMIC Debian 6.1.76-1\n"
)


def test_gvisors_fixed_kernel_string_and_a_runsc_version_are_detected() -> None:
    assert isolation.is_gvisor_version(GVISOR_PROC_VERSION)
    assert isolation.is_gvisor_version("Linux version 5.10.0 (runsc release-20240101.0)")
    assert not isolation.is_gvisor_version(DEBIAN_PROC_VERSION)
    assert not isolation.is_gvisor_version("")


def test_gvisor_detection_follows_the_setting_before_proc_version() -> None:
    assert isolation.detect_gvisor("auto", GVISOR_PROC_VERSION)[0] is True
    assert isolation.detect_gvisor("auto", DEBIAN_PROC_VERSION) == (False, "")
    assert isolation.detect_gvisor("true", DEBIAN_PROC_VERSION)[0] is True
    assert isolation.detect_gvisor("false", GVISOR_PROC_VERSION) == (False, "")


def test_proc_version_reading_is_separate_and_tolerates_a_missing_file(tmp_path: Path) -> None:
    version = tmp_path / "version"
    version.write_text(GVISOR_PROC_VERSION)
    assert isolation.read_proc_version(str(version)) == GVISOR_PROC_VERSION
    assert isolation.read_proc_version(str(tmp_path / "absent")) == ""
