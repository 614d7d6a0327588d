"""deploy/k8s's generated files equal what the code renders, and nats-server accepts the users."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from libs.common.bus_access import SERVICES, permissions
from libs.devstack import k8s_config, nats

ROOT = Path(__file__).resolve().parents[3]
NATS_DIR = ROOT / k8s_config.NATS_AUTH.parent


def test_the_committed_files_are_what_the_code_renders() -> None:
    for path, text in k8s_config.rendered(ROOT).items():
        assert (ROOT / path).read_text() == text, f"run python -m libs.devstack.k8s_config ({path})"


def test_nginx_routes_each_prefix_to_its_service_and_listens_unprivileged() -> None:
    text = (ROOT / k8s_config.NGINX_CONF).read_text()
    for service, settings in k8s_config.SETTINGS.items():
        assert f"upstream {service} {{ server {service}:{settings.default_port} " in text
    assert "listen 8080;" in text
    assert "${" not in text


def test_each_service_user_has_the_permissions_bus_access_gives_it() -> None:
    text = (ROOT / k8s_config.NATS_AUTH).read_text()
    for service in SERVICES:
        assert f'"user": "{service}"' in text
        assert f"${k8s_config.password_variable(service)}" in text
    assert k8s_config.render_nats_auth().count('"publish"') == len(SERVICES)
    rendered = k8s_config.render_nats_auth()
    for subject in permissions("gateway")["publish"]["allow"]:
        assert f'"{subject}"' in rendered


def nats_test(config_dir: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    binary = nats.find_binary()
    assert binary is not None
    argv = [str(binary), "-c", str(config_dir / "nats.conf"), "-t"]
    return subprocess.run(argv, env=env, capture_output=True, text=True, check=False)


@pytest.mark.parametrize("cluster", [False, True], ids=["one-node", "prod-cluster"])
def test_nats_server_accepts_the_config_with_the_passwords_and_refuses_it_without(
    tmp_path: Path, cluster: bool
) -> None:
    for name in ("nats.conf", "auth.conf", "cluster.conf"):
        shutil.copy(NATS_DIR / name, tmp_path / name)
    if cluster:
        shutil.copy(ROOT / "deploy" / "k8s" / "overlays" / "prod" / "cluster.conf", tmp_path)
    conf = tmp_path / "nats.conf"
    conf.write_text(conf.read_text().replace("/data/jetstream", str(tmp_path / "js")))
    base = {"PATH": os.environ.get("PATH", ""), "POD_NAME": "nats-0"}
    passwords = {k8s_config.password_variable(s): f"pw-{s}" for s in SERVICES}
    assert nats_test(tmp_path, {**base, **passwords}).returncode == 0
    missing = nats_test(tmp_path, base)
    assert missing.returncode != 0
    assert "AUTH_NATS_PASSWORD" in missing.stdout + missing.stderr
