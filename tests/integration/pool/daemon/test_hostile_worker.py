"""A hostile worker cannot make the daemon read, hash, list or serve anything outside its job.

The worker image is rebuilt FROM the real one with its generator wrapped (tests/data/hostile):
after a real generation it leaves a link to a host secret, a FIFO, a sparse terabyte, 20 000
files or a too-deep path in its output. Each attempt must fail with an error naming the rule,
the secret must stay where it was, unread and unpublished, and the daemon must keep answering.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import docker
import httpx
import pytest
from apiclient import submit, wait_job
from conftest import RUN_ID, WORKER_IMAGE, DaemonProcess

pytestmark = pytest.mark.integration

HOSTILE_DIR = Path(__file__).resolve().parents[3] / "data" / "hostile"
SECRET_TEXT = "root-only secret " + uuid.uuid4().hex


@pytest.fixture(scope="module")
def secret_dir() -> Iterator[Path]:
    """A root-only host folder with a secret file, as the issue's attack aimed at."""
    folder = Path(f"/tmp/vwe-secret-{RUN_ID}")
    folder.mkdir(mode=0o700)
    (folder / "secret.txt").write_text(SECRET_TEXT)
    (folder / "secret.txt").chmod(0o600)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def hostile_image(secret_dir: Path) -> Iterator[str]:
    client = docker.from_env()
    tag = f"vwe-worker-hostile:{RUN_ID}"
    client.images.build(path=str(HOSTILE_DIR), tag=tag, rm=True, forcerm=True,
                        buildargs={"WORKER_IMAGE": WORKER_IMAGE,
                                   "SECRET_DIR": str(secret_dir)})
    yield tag
    try:
        client.images.remove(tag, force=True)
    finally:
        client.close()


@pytest.fixture
def hostile_daemon(daemon_factory: Callable[..., DaemonProcess],
                   hostile_image: str) -> DaemonProcess:
    return daemon_factory(VWE_WORKER_IMAGE=hostile_image, VWE_JOB_MAX_ATTEMPTS="1",
                          VWE_POOL_SIZE="1", VWE_OUTPUT_MAX_FILES="500",
                          VWE_OUTPUT_MAX_DEPTH="8").start(wait_warm=1)


def assert_secret_untouched(secret_dir: Path) -> None:
    assert sorted(p.name for p in secret_dir.iterdir()) == ["secret.txt"]
    assert (secret_dir / "secret.txt").read_text() == SECRET_TEXT


@pytest.mark.parametrize(("seed", "rule"), [
    ("symdir", "a symbolic link, not a folder"),
    ("symfile", "secret.txt: a symbolic link"),
    ("fifo", "pipe: a FIFO"),
    ("sparse", "bytes in total"),
    ("many", "more than 500 files and folders"),
    ("deep", "deeper than 8 levels"),
    ("hardlink", "other hard links"),
])
def test_hostile_output_fails_the_attempt_and_nothing_leaks(
        hostile_daemon: DaemonProcess, data_dir: Path, secret_dir: Path,
        seed: str, rule: str) -> None:
    d = hostile_daemon
    accepted = submit(d.url, seed)
    assert accepted.status_code == 202, accepted.text
    job_id = accepted.json()["job_id"]
    job = wait_job(d.url, job_id, timeout=90)
    assert job["status"] == "failed", job
    assert "worker output refused" in job["error"] and rule in job["error"], job["error"]
    assert job["artifacts"] == []
    # Nothing about the job is left in the worlds folder, and nothing of the secret is served.
    assert not os.path.lexists(data_dir / "worlds" / job_id)
    for name in ("secret.txt", "pipe", "huge.bin"):
        r = httpx.get(f"{d.url}/v1/jobs/{job_id}/artifacts/{name}", timeout=5)
        assert r.status_code == 404 and SECRET_TEXT not in r.text
    assert_secret_untouched(secret_dir)
    # The daemon still answers at once and still generates for an honest seed.
    started = time.monotonic()
    assert httpx.get(f"{d.url}/healthz", timeout=2).status_code == 200
    assert time.monotonic() - started < 2
    fine = wait_job(d.url, submit(d.url, f"ok{seed[:6]}").json()["job_id"], timeout=90)
    assert fine["status"] == "succeeded", fine
    assert {"biomes.npy", "world.json"} <= {a["name"] for a in fine["artifacts"]}


def test_serving_rechecks_a_file_changed_after_collection(
        daemon_factory: Callable[..., DaemonProcess], data_dir: Path,
        secret_dir: Path) -> None:
    """What a worker still holding a descriptor of its moved folder could do: every swap is
    refused at serve time, none hangs, none serves the secret."""
    d = daemon_factory().start(wait_warm=1)
    job = wait_job(d.url, submit(d.url, "servecheck").json()["job_id"])
    assert job["status"] == "succeeded", job
    folder = data_dir / "worlds" / job["job_id"]
    url = f"{d.url}/v1/jobs/{job['job_id']}/artifacts"
    assert httpx.get(f"{url}/world.json", timeout=5).status_code == 200

    (folder / "world.json").unlink()
    (folder / "world.json").symlink_to(secret_dir / "secret.txt")
    r = httpx.get(f"{url}/world.json", timeout=5)
    assert r.status_code == 403 and r.json()["error"]["code"] == "artifact_refused", r.text
    assert "symbolic link" in r.json()["error"]["message"] and SECRET_TEXT not in r.text

    (folder / "world.json").unlink()
    os.mkfifo(folder / "world.json")
    started = time.monotonic()
    r = httpx.get(f"{url}/world.json", timeout=5)
    assert r.status_code == 403 and "FIFO" in r.json()["error"]["message"], r.text
    assert time.monotonic() - started < 2

    fwl = next(a["name"] for a in job["artifacts"] if a["name"].endswith(".fwl2"))
    world_folder = folder / fwl.split("/")[0]
    shutil.rmtree(world_folder)
    world_folder.symlink_to(secret_dir, target_is_directory=True)
    r = httpx.get(f"{url}/{fwl}", timeout=5)
    assert r.status_code == 403 and SECRET_TEXT not in r.text, r.text

    shutil.rmtree(folder)
    folder.symlink_to(secret_dir, target_is_directory=True)
    r = httpx.get(f"{url}/biomes.npy", timeout=5)
    assert r.status_code == 403 and SECRET_TEXT not in r.text, r.text
    assert_secret_untouched(secret_dir)


def test_a_chatty_worker_fills_at_most_its_rotated_logs(
        daemon_factory: Callable[..., DaemonProcess], hostile_image: str,
        pool_name: str) -> None:
    d = daemon_factory(VWE_WORKER_IMAGE=hostile_image, VWE_POOL_SIZE="1",
                       VWE_WORKER_LOG_MAX_SIZE="256k", VWE_WORKER_LOG_MAX_FILE="2",
                       ).start(wait_warm=1)
    job = wait_job(d.url, submit(d.url, "chatty").json()["job_id"], timeout=90)
    assert job["status"] == "succeeded", job
    client = docker.from_env()
    try:
        rows = client.api.containers(all=True, filters={"label": f"vwe.pool={pool_name}"})
        infos = [client.api.inspect_container(r["Id"]) for r in rows]
        assert infos
        sizes = []
        for info in infos:
            assert info["HostConfig"]["LogConfig"] == {
                "Type": "json-file", "Config": {"max-size": "256k", "max-file": "2"}}
            log_dir = Path(info["LogPath"]).parent
            sizes.append(sum(p.stat().st_size for p in log_dir.glob("*-json.log*")))
        # 8 MiB written by one of them, at most two files of 256 KiB kept.
        assert max(sizes) > 256 * 1024, sizes
        assert max(sizes) <= 2 * 256 * 1024 + 64 * 1024, sizes
    finally:
        client.close()
