"""Publishing a world into the worlds store across filesystems (/tmp -> /dev/shm, a tmpfs)."""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from pool.infra.crossfs import INCOMING_PREFIX, publish_tree, remove_stale_incoming, same_filesystem

pytestmark = pytest.mark.unit


def _tmp(where: str) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="vwe-xfs-", dir=where))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def local() -> Iterator[Path]:
    yield from _tmp("/tmp")


@pytest.fixture
def other_fs(local: Path) -> Iterator[Path]:
    if not Path("/dev/shm").is_dir():
        pytest.fail("/dev/shm is missing: the cross-filesystem tests need a second filesystem")
    for path in _tmp("/dev/shm"):
        if same_filesystem(local, path):
            pytest.fail("/tmp and /dev/shm are one filesystem here")
        yield path


def make_world(root: Path, files: int = 3, size: int = 1000) -> dict[str, bytes]:
    contents = {}
    (root / "worlds_local" / "W").mkdir(parents=True)
    for i in range(files):
        name = f"worlds_local/W/f{i}.bin" if i % 2 else f"f{i}.bin"
        data = os.urandom(size)
        (root / name).write_bytes(data)
        contents[name] = data
    return contents


def read_tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_same_filesystem_is_one_rename(local: Path) -> None:
    source = local / "staged"
    contents = make_world(source)
    inode = source.stat().st_ino
    final = publish_tree(source, local / "worlds", "job1")
    assert final.stat().st_ino == inode  # renamed, not copied
    assert read_tree(final) == contents and not source.exists()


def test_across_filesystems_the_world_is_copied_whole(local: Path, other_fs: Path) -> None:
    source = local / "staged"
    contents = make_world(source, files=5)
    final = publish_tree(source, other_fs / "worlds", "job1")
    assert final == other_fs / "worlds" / "job1"
    assert read_tree(final) == contents
    assert not source.exists()
    assert [p.name for p in final.parent.iterdir()] == ["job1"]  # no temporary left


def test_a_reader_never_sees_a_partial_world(local: Path, other_fs: Path) -> None:
    source = local / "staged"
    contents = make_world(source, files=40, size=200_000)
    final = other_fs / "worlds" / "job1"
    seen: list[int] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            if final.exists():
                seen.append(len(read_tree(final)))
    reader = threading.Thread(target=watch)
    reader.start()
    try:
        publish_tree(source, other_fs / "worlds", "job1")
    finally:
        stop.set()
        reader.join()
    assert read_tree(final) == contents
    assert all(n == len(contents) for n in seen), f"a reader saw {min(seen)} files"


def test_an_earlier_world_of_that_name_is_replaced(local: Path, other_fs: Path) -> None:
    (other_fs / "worlds" / "job1").mkdir(parents=True)
    (other_fs / "worlds" / "job1" / "stale.bin").write_bytes(b"old")
    contents = make_world(local / "staged")
    final = publish_tree(local / "staged", other_fs / "worlds", "job1")
    assert read_tree(final) == contents
    assert [p.name for p in final.parent.iterdir()] == ["job1"]


def test_a_link_publishes_nothing_and_keeps_the_source(local: Path, other_fs: Path) -> None:
    source = local / "staged"
    make_world(source)
    (source / "escape").symlink_to("/etc/passwd")
    with pytest.raises(ValueError, match="symbolic link"):
        publish_tree(source, other_fs / "worlds", "job1")
    assert list((other_fs / "worlds").iterdir()) == []
    assert (source / "f0.bin").exists()


@pytest.mark.parametrize("name", ["", "..", "a/b", ".hidden"])
def test_a_bad_name_is_refused(local: Path, name: str) -> None:
    make_world(local / "staged")
    with pytest.raises(ValueError, match="is not a world folder name"):
        publish_tree(local / "staged", local / "worlds", name)


def test_stale_incoming_folders_are_removed_fresh_ones_kept(other_fs: Path) -> None:
    old = other_fs / f"{INCOMING_PREFIX}a-1"
    new = other_fs / f"{INCOMING_PREFIX}b-2"
    world = other_fs / "c"
    for p in (old, new, world):
        p.mkdir()
    now = old.stat().st_mtime
    os.utime(old, (now - 7200, now - 7200))
    assert remove_stale_incoming(other_fs, older_than_s=3600, now=now) == 1
    assert sorted(p.name for p in other_fs.iterdir()) == sorted([new.name, world.name])
