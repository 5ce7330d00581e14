"""The `vwe-pool` command line against a running daemon, as a user would type it."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from apiclient import eventually
from conftest import ROOT, DaemonProcess

pytestmark = pytest.mark.e2e

CLI = str(ROOT / ".venv/bin/vwe-pool")


def run(*args: str, env: dict[str, str] | None = None,
        timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CLI, *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def test_generate_wait_out_writes_the_files_of_the_record(
    daemon_factory: Callable[..., DaemonProcess], tmp_path: Path,
) -> None:
    d = daemon_factory().start(wait_warm=1)
    out = tmp_path / "world"
    result = run("generate", "MWd8eV6svz", "--out", str(out), "--api", d.url)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout[result.stdout.index("{"):])
    assert summary["status"] == "succeeded" and summary["seed_hash"] == -1772362158
    job = httpx.get(f"{d.url}/v1/jobs/{summary['job_id']}").json()
    for artifact in job["artifacts"]:
        data = (out / artifact["name"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == artifact["sha256"]
    assert (out / "worlds_local").is_dir()


def test_generate_refuses_a_bad_seed_with_the_reason(
    daemon_factory: Callable[..., DaemonProcess],
) -> None:
    d = daemon_factory().start(role="api")
    result = run("generate", "far-too-long-seed", "--api", d.url)
    assert result.returncode == 1
    assert "at most 10 characters" in result.stderr


def test_status_and_pool_set(daemon_factory: Callable[..., DaemonProcess]) -> None:
    d = daemon_factory(VWE_API_TOKEN="tok").start(wait_warm=1)
    status = run("status", "--api", d.url)
    assert status.returncode == 0, status.stderr
    names = [c["name"] for c in httpx.get(f"{d.url}/v1/pool").json()["containers"]]
    assert names and all(name in status.stdout for name in names)
    refused = run("pool", "set", "--size", "2", "--api", d.url, env={"VWE_API_TOKEN": "bad"})
    assert refused.returncode == 1 and "forbidden" in refused.stderr
    changed = run("pool", "set", "--size", "2", "--api", d.url, env={"VWE_API_TOKEN": "tok"})
    assert changed.returncode == 0, changed.stderr
    assert "size 2" in changed.stdout
    eventually(lambda: httpx.get(f"{d.url}/readyz").json()["warm"] >= 2, timeout=20)


def test_unreachable_daemon_is_a_clear_error() -> None:
    result = run("status", "--api", "http://127.0.0.1:9")
    assert result.returncode == 1 and "cannot reach the daemon" in result.stderr


# The first local run compiles the numba kernels into the checkout's cache (a minute of CPU).
@pytest.mark.timeout(600)
def test_worldgen_runs_locally_without_docker(tmp_path: Path) -> None:
    result = run("worldgen", "abc", "--out", str(tmp_path), "--resolution", "128")
    assert result.returncode == 0, result.stderr
    world = json.loads((tmp_path / "world.json").read_text())
    assert world["seed"] == 1099313834
    assert (tmp_path / "biomes.npy").stat().st_size > 128 * 128 * 2


def test_serve_refuses_an_invalid_setting_naming_it() -> None:
    result = run("serve", env={"VWE_POOL_MAX": "zero"}, timeout=30)
    assert result.returncode == 2
    assert "VWE_POOL_MAX" in result.stderr and "integer" in result.stderr


def test_serve_refuses_a_bad_template_naming_the_file_and_field(tmp_path: Path) -> None:
    path = tmp_path / "templates.toml"
    path.write_text("[templates.preview]\nmemory = 'lots'\n")
    result = run("serve", env={"VWE_TEMPLATES_FILE": str(path)}, timeout=30)
    assert result.returncode == 2
    assert str(path) in result.stderr and "template 'preview': memory" in result.stderr
    result = run("serve", "--templates", "default,nosuch", timeout=30,
                 env={"VWE_TEMPLATES_FILE": ""})
    assert result.returncode == 2 and "no template 'nosuch'; defined: default" in result.stderr


def test_generate_wait_rides_out_a_daemon_that_is_not_up_yet(
    daemon_factory: Callable[..., DaemonProcess], tmp_path: Path,
) -> None:
    """A restart (deploy, Ctrl-C, kill -9) looks to a waiting client like this: refused
    connections, then 503s while the daemon starts; the job itself goes on in Redis."""
    d = daemon_factory()  # its port is chosen; nothing listens there yet
    client = subprocess.Popen([CLI, "generate", "RideOut1", "--wait", "--timeout", "90",
                               "--api", d.url], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        d.start(wait_warm=1)
        stdout, stderr = client.communicate(timeout=100)
    finally:
        client.kill()
    assert client.returncode == 0, stderr
    assert json.loads(stdout[stdout.index("{"):])["status"] == "succeeded"


def test_generate_refuses_an_out_folder_with_files_and_says_why_on_timeout(
    daemon_factory: Callable[..., DaemonProcess], tmp_path: Path,
) -> None:
    d = daemon_factory().start(role="api")  # no pool: the job stays queued
    (tmp_path / "keep.txt").write_text("mine")
    result = run("generate", "NoClobber", "--out", str(tmp_path), "--api", d.url)
    assert result.returncode == 1 and "must be an empty folder" in result.stderr
    assert (tmp_path / "keep.txt").read_text() == "mine"
    result = run("generate", "NoClobber", "--wait", "--timeout", "2", "--api", d.url)
    assert result.returncode == 1
    assert "still queued after 2 s (--timeout); it goes on" in result.stderr


def test_pool_set_without_a_token_says_which_variable() -> None:
    env = {k: v for k, v in os.environ.items() if k != "VWE_API_TOKEN"}
    result = subprocess.run([CLI, "pool", "set", "--size", "2", "--api", "http://127.0.0.1:9"],
                            capture_output=True, text=True, timeout=30, env=env)
    assert result.returncode == 2 and "set VWE_API_TOKEN" in result.stderr
    assert "Traceback" not in result.stderr


def test_version_and_a_closed_pipe() -> None:
    assert run("--version").stdout.startswith("vwe-pool ")
    shell = subprocess.run(f"{CLI} --help | head -c 10", shell=True, capture_output=True,
                           text=True, timeout=30)
    assert "Traceback" not in shell.stderr


@pytest.mark.parametrize(("env", "named"), [
    ({"VWE_REDIS_URL": "notaurl"}, "VWE_REDIS_URL"),
    ({"VWE_WORKER_MEMORY": "1k"}, "VWE_WORKER_MEMORY"),
    ({"VWE_API_HOST": "999.1.1.1"}, "VWE_API_HOST"),
])
def test_serve_refuses_settings_that_cannot_work_naming_them(env: dict[str, str],
                                                             named: str) -> None:
    result = run("serve", env=env, timeout=60)
    assert result.returncode != 0, result.stderr
    assert named in result.stderr + result.stdout
    assert "Traceback" not in result.stderr


def test_serve_refuses_a_port_in_use_naming_it(daemon_factory: Callable[..., DaemonProcess]
                                              ) -> None:
    taken = daemon_factory().start(role="api")
    result = run("serve", "--role", "api", env={**taken.env, "VWE_INSTANCE_ID": "other"},
                 timeout=60)
    assert result.returncode != 0
    assert "VWE_API_PORT" in result.stderr + result.stdout
