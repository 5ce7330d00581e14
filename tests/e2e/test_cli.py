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
