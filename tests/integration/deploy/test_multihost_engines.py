"""The multi-host harness's engines: each run has its own folders, and a killed engine's
folder (mounts included) is removed when the run ends."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from multihost import Cluster, Engine
from ownprocs import mounts_under, remove_engine_dir

pytestmark = pytest.mark.integration


@pytest.fixture
def run_root() -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="vwe-mht-", dir="/tmp"))
    yield root
    remove_engine_dir(root)


def test_two_runs_never_share_an_engine_folder(run_root: Path) -> None:
    other = Path(tempfile.mkdtemp(prefix="vwe-mht-", dir="/tmp"))
    try:
        a, b = Cluster(run_root, hosts=2), Cluster(other, hosts=2)
        folders = [e.dir for c in (a, b) for e in c.engines]
        assert len(set(folders)) == 4
        assert all(e.dir.is_relative_to(c.root) for c in (a, b) for e in c.engines)
    finally:
        shutil.rmtree(other)


def test_a_killed_engines_folder_is_removed_mounts_and_all(run_root: Path) -> None:
    if shutil.which("dockerd") is None:
        pytest.fail("dockerd is missing: run scripts/ensure-docker.sh")
    folder = run_root / "e" / "h0"
    engine = Engine("h0", folder).start()
    try:
        # A crashed host: kill -9 leaves the engine's mounts behind.
        engine.kill()
        left = mounts_under(folder)
        assert left, "a killed dockerd left no mount: the test proves nothing"
    finally:
        engine.kill()
    remove_engine_dir(run_root / "e")
    assert not (run_root / "e").exists()
    assert mounts_under(run_root) == []
