"""Deployment artefacts: docker-compose.yml, its config overrides, and the daemon image.

- The Compose file validates with whichever Compose tool exists (`docker compose` or Debian's
  `docker-compose`; scripts/ensure-compose.sh installs the latter) and wires the services as
  docs/deploy.md says, above all the data dir at the same path on the host and in the daemon.
- The compose copies of the Prometheus config and the Grafana data source differ from the shared
  ones only in the addresses.
- The daemon image builds offline from the local base image and the wheelhouse, and
  `docker run IMAGE --help` prints the CLI's usage. Test images carry the label `vwe.test=1`
  and are removed afterwards; their parent layers stay as the build cache for the next run.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = [pytest.mark.integration]

ROOT = Path(__file__).resolve().parents[3]
COMPOSE_FILE = ROOT / "docker-compose.yml"
BASE_IMAGE = os.environ.get("VWE_BASE_IMAGE", "vwe-base:bookworm")
TEST_LABEL = ("vwe.test", "1")
DEFAULT_DATA_DIR = "/var/lib/vwe"

# Variables docker-compose.yml interpolates; the tests set them explicitly or not at all.
COMPOSE_VARS = ("VWE_", "DOCKER_GID", "DOCKER_SOCKET", "GRAFANA_", "PROMETHEUS_", "COMPOSE_")


def _run(cmd: list[str], *, timeout: float = 60, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kwargs)


def _works(cmd: list[str]) -> bool:
    try:
        return _run([*cmd, "version"], timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


# --------------------------------------------------------------------------- compose


@pytest.fixture(scope="module")
def compose() -> list[str]:
    for cmd in (["docker", "compose"], ["docker-compose"]):
        if shutil.which(cmd[0]) and _works(cmd):
            return cmd
    pytest.skip(
        "no Compose tool: neither `docker compose` nor `docker-compose` works "
        "(scripts/ensure-compose.sh installs Debian's docker-compose)"
    )


def _compose_run(
    compose: list[str], tmp_path: Path, *args: str, **env: str
) -> subprocess.CompletedProcess[str]:
    """Run Compose on the repo's file, isolated from the caller's environment and `.env`."""
    empty_env_file = tmp_path / "compose.env"
    empty_env_file.write_text("")
    environ = {k: v for k, v in os.environ.items() if not k.startswith(COMPOSE_VARS)}
    environ.update(env)
    cmd = [
        *compose,
        "--env-file",
        str(empty_env_file),
        "--project-directory",
        str(ROOT),
        "-f",
        str(COMPOSE_FILE),
        "--profile",
        "build",
        *args,
    ]
    return _run(cmd, env=environ, cwd=ROOT)


def _compose_config(compose: list[str], tmp_path: Path, **env: str) -> dict[str, Any]:
    result = _compose_run(compose, tmp_path, "config", **env)
    assert result.returncode == 0, f"`{' '.join(compose)} config` failed:\n{result.stderr}"
    config = yaml.safe_load(result.stdout)
    assert isinstance(config, dict)
    return config


def _mounts(service: dict[str, Any]) -> dict[str, str]:
    """target -> source of a service's volumes, from either Compose's output format."""
    mounts: dict[str, str] = {}
    for volume in service.get("volumes", []):
        if isinstance(volume, str):  # docker-compose 1.x: "source:target[:mode]"
            source, target = volume.split(":")[:2]
        else:  # docker compose 2.x: {type, source, target, read_only, ...}
            source, target = volume["source"], volume["target"]
        mounts[target] = source
    return mounts


def _env(service: dict[str, Any]) -> dict[str, str | None]:
    env = service.get("environment", {})
    if isinstance(env, list):
        return {k: v for k, _, v in (item.partition("=") for item in env)}
    return dict(env)


def _port_targets(service: dict[str, Any]) -> set[str]:
    targets = set()
    for port in service.get("ports", []):
        if isinstance(port, dict):
            targets.add(str(port["target"]))
        else:
            targets.add(str(port).rsplit(":", 1)[-1].split("/")[0])
    return targets


def test_compose_file_validates(compose: list[str], tmp_path: Path) -> None:
    result = _compose_run(compose, tmp_path, "config", "--quiet")
    assert result.returncode == 0, f"docker-compose.yml is invalid:\n{result.stderr}"


@pytest.mark.parametrize("data_dir", [None, "/srv/vwe-deploy-test/data"])
def test_compose_daemon_wiring(compose: list[str], tmp_path: Path, data_dir: str | None) -> None:
    env = {"VWE_HOST_DATA_DIR": data_dir} if data_dir else {}
    expected_dir = data_dir or DEFAULT_DATA_DIR
    services = _compose_config(compose, tmp_path, **env)["services"]
    assert set(services) >= {
        "daemon",
        "data-init",
        "worker-image",
        "redis",
        "prometheus",
        "grafana",
    }

    daemon = services["daemon"]
    assert daemon["build"]["args"]["BASE_IMAGE"] == "python:3.11-slim"
    assert Path(daemon["build"]["context"]).resolve() == ROOT
    daemon_env = _env(daemon)
    assert daemon_env["VWE_REDIS_URL"] == "redis://redis:6379/0"
    assert daemon_env["VWE_API_HOST"] == "0.0.0.0"
    assert daemon_env["VWE_WORKER_IMAGE"] == services["worker-image"]["image"]
    # The daemon bind-mounts folders of its data dir into workers by host path: the path must
    # be the same on the host and in the daemon container, and VWE_DATA_DIR must be that path.
    assert daemon_env["VWE_DATA_DIR"] == expected_dir
    mounts = _mounts(daemon)
    assert mounts.get(expected_dir) == expected_dir, mounts
    assert mounts.get("/var/run/docker.sock") == "/var/run/docker.sock", mounts
    assert "8080" in _port_targets(daemon)
    assert daemon.get("group_add"), "the socket's group must be added for the non-root daemon"
    assert set(daemon["depends_on"]) >= {"redis", "data-init"}

    init = services["data-init"]
    assert _mounts(init).get(expected_dir) == expected_dir
    assert _env(init)["DIR"] == expected_dir


def test_compose_supporting_services(compose: list[str], tmp_path: Path) -> None:
    services = _compose_config(compose, tmp_path)["services"]

    worker = services["worker-image"]
    assert worker["image"] == "vwe-worker:latest"
    assert worker["build"]["dockerfile"] == "worldgen/Dockerfile"
    assert worker.get("profiles") == ["build"], "the worker image is build-only"

    redis = services["redis"]
    assert redis["image"].startswith("redis:7")
    assert "--appendonly" in redis["command"]
    assert "/data" in _mounts(redis)

    prometheus = _mounts(services["prometheus"])
    assert Path(prometheus["/etc/prometheus/prometheus.yml"]) == (
        ROOT / "config" / "prometheus.compose.yml"
    )
    assert Path(prometheus["/etc/prometheus/alerts.yml"]) == ROOT / "config" / "alerts.yml"

    grafana = _mounts(services["grafana"])
    grafana_dir = ROOT / "config" / "grafana"
    assert Path(grafana["/etc/grafana/provisioning/datasources"]) == (
        grafana_dir / "provisioning-compose" / "datasources"
    )
    assert Path(grafana["/etc/grafana/provisioning/dashboards"]) == (
        grafana_dir / "provisioning" / "dashboards"
    )
    assert Path(grafana["/var/lib/grafana/dashboards"]) == grafana_dir / "dashboards"


def _load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def test_prometheus_compose_config_tracks_the_shared_one() -> None:
    shared = _load_yaml(ROOT / "config" / "prometheus.yml")
    ours = _load_yaml(ROOT / "config" / "prometheus.compose.yml")
    assert [c["static_configs"] for c in ours["scrape_configs"]] == [[{"targets": ["daemon:8080"]}]]
    expected = copy.deepcopy(shared)
    for job in expected["scrape_configs"]:
        for static in job["static_configs"]:
            static["targets"] = [
                t.replace("localhost:", "daemon:").replace("127.0.0.1:", "daemon:")
                for t in static["targets"]
            ]
    expected.pop("alerting", None)
    assert ours == expected, "config/prometheus.compose.yml drifted from config/prometheus.yml"

    if shutil.which("promtool"):
        result = _run(["promtool", "check", "config", str(ROOT / "config/prometheus.compose.yml")])
        assert result.returncode == 0, result.stdout + result.stderr


def test_grafana_compose_datasource_tracks_the_shared_one() -> None:
    name = "prometheus.yml"
    shared = _load_yaml(ROOT / "config/grafana/provisioning/datasources" / name)
    ours = _load_yaml(ROOT / "config/grafana/provisioning-compose/datasources" / name)
    assert [d["url"] for d in ours["datasources"]] == ["http://prometheus:9090"]
    expected = copy.deepcopy(shared)
    for source in expected["datasources"]:
        source["url"] = "http://prometheus:9090"
    assert ours == expected, "the compose data source drifted from the shared one"


# --------------------------------------------------------------------------- daemon image


@pytest.fixture(scope="module")
def daemon_image() -> Iterator[str]:
    if not shutil.which("docker") or _run(["docker", "info"]).returncode != 0:
        pytest.skip("no Docker engine answers (scripts/ensure-docker.sh starts one)")
    if _run(["docker", "image", "inspect", BASE_IMAGE]).returncode != 0:
        pytest.skip(f"no base image {BASE_IMAGE} (scripts/base-image.sh builds it)")

    wheelhouse = _run([str(ROOT / "scripts" / "wheelhouse.sh")], timeout=600)
    assert wheelhouse.returncode == 0, f"scripts/wheelhouse.sh failed:\n{wheelhouse.stderr}"

    tag = f"vwe-pool:test-{uuid.uuid4().hex[:10]}"
    build = _run(
        [
            "docker",
            "build",
            "--force-rm",
            "--build-arg",
            f"BASE_IMAGE={BASE_IMAGE}",
            "--label",
            "=".join(TEST_LABEL),
            "-t",
            tag,
            str(ROOT),
        ],
        timeout=900,
    )
    try:
        assert build.returncode == 0, (
            f"docker build failed:\n{build.stdout[-4000:]}\n{build.stderr[-4000:]}"
        )
        yield tag
    finally:
        # --no-prune keeps the untagged parent layers: the next run's build reuses them.
        _run(["docker", "rmi", "--force", "--no-prune", tag])


def _docker_run(
    image: str, *args: str, entrypoint: str | None = None
) -> subprocess.CompletedProcess[str]:
    cmd = ["docker", "run", "--rm", "--network", "none", "--label", "=".join(TEST_LABEL)]
    if entrypoint:
        cmd += ["--entrypoint", entrypoint]
    return _run([*cmd, image, *args], timeout=120)


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_daemon_image_runs_the_cli(daemon_image: str) -> None:
    result = _docker_run(daemon_image, "--help")
    assert result.returncode == 0, result.stderr
    assert "usage: vwe-pool" in result.stdout
    for command in ("serve", "generate", "status"):
        assert command in result.stdout


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_daemon_image_config(daemon_image: str) -> None:
    inspect = _run(["docker", "image", "inspect", daemon_image])
    assert inspect.returncode == 0, inspect.stderr
    config = json.loads(inspect.stdout)[0]["Config"]
    assert config["Entrypoint"] == ["vwe-pool"]
    assert config["Cmd"] == ["serve"]
    assert "8080/tcp" in config["ExposedPorts"]
    assert "VWE_API_HOST=0.0.0.0" in config["Env"]
    assert config["User"] and not config["User"].startswith(("0", "root"))
    assert config["Labels"][TEST_LABEL[0]] == TEST_LABEL[1]
    assert config.get("Healthcheck", {}).get("Test"), "the image has a HEALTHCHECK"


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_daemon_image_has_the_packages(daemon_image: str) -> None:
    script = (
        "import os, api, pool, worldgen, apscheduler, docker, fastapi, httpx, numpy, "
        "prometheus_client, pydantic_settings, redis, structlog, uvicorn\n"
        "assert os.getuid() != 0, 'runs as root'\n"
        "assert os.access(os.environ['VWE_DATA_DIR'], os.W_OK), 'data dir not writable'\n"
        "print('ok')\n"
    )
    result = _docker_run(daemon_image, "-c", script, entrypoint="python3")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_daemon_image_serves_the_viewers_map_library(daemon_image: str) -> None:
    # GET / loads Leaflet from VWE_VIEWER_LEAFLET_DIR; the image has no network to fetch it.
    check = ("import os, pathlib; d = pathlib.Path(os.environ['VWE_VIEWER_LEAFLET_DIR']); "
             "print(sorted(p.relative_to(d).as_posix() for p in d.rglob('*') if p.is_file()))")
    result = _docker_run(daemon_image, "-c", check, entrypoint="python3")
    assert result.returncode == 0, result.stderr
    files = result.stdout
    for name in ("leaflet.min.js", "leaflet.css", "images/layers.png"):
        assert f"'{name}'" in files, files
    assert "pyproject.toml" not in files
