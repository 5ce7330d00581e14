"""The untrusted-output walker on real files: links, special files, limits, swaps."""

from __future__ import annotations

import os
import socket
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from pool.infra.safefs import (
    OutputRejected,
    WalkLimits,
    open_file,
    opened_dir,
    split_relative,
    take_tree,
    walk,
)

pytestmark = pytest.mark.unit
LIMITS = WalkLimits(max_files=20, max_depth=3, max_name_bytes=16, max_total_bytes=1 << 20)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A valid job output: two files and a world folder two levels down."""
    root = tmp_path / "job"
    (root / "worlds_local" / "W").mkdir(parents=True)
    (root / "biomes.npy").write_bytes(b"x" * 100)
    (root / "world.json").write_text("{}")
    (root / "worlds_local" / "W" / "_main.0.fwl2").write_bytes(b"fwl")
    return root


def check(root: Path, limits: WalkLimits = LIMITS) -> list[str]:
    with opened_dir(root) as fd:
        return [f.name for f in walk(fd, limits, where="job")]


@pytest.fixture
def secret(tmp_path: Path) -> Iterator[Path]:
    folder = tmp_path / "secret"
    folder.mkdir(mode=0o700)
    (folder / "secret.txt").write_text("root only")
    yield folder


def test_valid_tree_lists_files_sorted_with_sizes(tree: Path) -> None:
    with opened_dir(tree) as fd:
        files = walk(fd, LIMITS)
    assert [(f.name, f.size) for f in files] == [
        ("biomes.npy", 100), ("world.json", 2), ("worlds_local/W/_main.0.fwl2", 3)]


def test_folder_symlink_is_refused(tree: Path, secret: Path) -> None:
    (tree / "leak").symlink_to(secret, target_is_directory=True)
    with pytest.raises(OutputRejected, match=r"job/leak: a symbolic link"):
        check(tree)


def test_file_symlink_is_refused(tree: Path, secret: Path) -> None:
    (tree / "worlds_local" / "W" / "s.txt").symlink_to(secret / "secret.txt")
    with pytest.raises(OutputRejected, match=r"worlds_local/W/s.txt: a symbolic link"):
        check(tree)


def test_root_symlink_is_refused(tree: Path, secret: Path, tmp_path: Path) -> None:
    link = tmp_path / "linked"
    link.symlink_to(secret, target_is_directory=True)
    with pytest.raises(OutputRejected, match="a symbolic link, not a folder"):
        check(link)


def test_fifo_is_refused_without_blocking(tree: Path) -> None:
    os.mkfifo(tree / "pipe")
    with pytest.raises(OutputRejected, match="pipe: a FIFO"):
        check(tree)


def test_socket_is_refused(tree: Path) -> None:
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(tree / "sock"))
        with pytest.raises(OutputRejected, match="sock: a socket"):
            check(tree)


@pytest.mark.skipif(os.geteuid() != 0, reason="mknod of a device needs root")
def test_device_is_refused(tree: Path) -> None:
    os.mknod(tree / "null", stat.S_IFCHR | 0o600, os.makedev(1, 3))
    with pytest.raises(OutputRejected, match="null: a device"):
        check(tree)


def test_hard_link_is_refused(tree: Path) -> None:
    os.link(tree / "world.json", tree / "again.json")
    with pytest.raises(OutputRejected, match="other hard links"):
        check(tree)


def test_huge_sparse_file_is_refused_by_size_unread(tree: Path) -> None:
    with (tree / "sparse.bin").open("wb") as f:
        f.truncate(1 << 40)  # 1 TiB apparent, no blocks
    with pytest.raises(OutputRejected, match=f"exceed {1 << 20} bytes in total"):
        check(tree)


def test_too_many_files_is_refused_early(tree: Path) -> None:
    many = tree / "many"
    many.mkdir()
    for i in range(200):
        (many / f"f{i}").touch()
    with pytest.raises(OutputRejected, match="more than 20 files and folders"):
        check(tree)


def test_too_deep_is_refused(tree: Path) -> None:
    deep = tree / "a" / "b" / "c"
    deep.mkdir(parents=True)
    (deep / "x").touch()
    with pytest.raises(OutputRejected, match="a/b/c/x: deeper than 3 levels"):
        check(tree)


@pytest.mark.parametrize("name", [".hidden", "sp ace", "x" * 17, "ünï", "a\nb"])
def test_bad_names_are_refused(tree: Path, name: str) -> None:
    (tree / name).touch()
    with pytest.raises(OutputRejected, match="name"):
        check(tree)


def test_open_file_reads_a_listed_file(tree: Path) -> None:
    with opened_dir(tree) as root:
        listed = {f.name: f for f in walk(root, LIMITS)}
        fd = open_file(root, "worlds_local/W/_main.0.fwl2", LIMITS,
                       expect=listed["worlds_local/W/_main.0.fwl2"])
        try:
            assert os.read(fd, 10) == b"fwl"
        finally:
            os.close(fd)


def test_open_file_refuses_a_link_in_the_middle(tree: Path, secret: Path) -> None:
    (tree / "up").symlink_to(secret, target_is_directory=True)
    with opened_dir(tree) as root, pytest.raises(OutputRejected, match="up: a symbolic link"):
        open_file(root, "up/secret.txt", LIMITS)


def test_open_file_on_a_fifo_returns_at_once(tree: Path) -> None:
    os.mkfifo(tree / "pipe")
    done = threading.Event()

    def attempt() -> None:
        with opened_dir(tree) as root, pytest.raises(OutputRejected, match="a FIFO"):
            open_file(root, "pipe", LIMITS)
        done.set()

    threading.Thread(target=attempt, daemon=True).start()
    assert done.wait(5), "opening a FIFO blocked"


def test_open_file_notices_a_swapped_file(tree: Path) -> None:
    with opened_dir(tree) as root:
        listed = {f.name: f for f in walk(root, LIMITS)}
        # A new file renamed over the old one (made first, so its inode differs).
        (tree / "new.json").write_text("{\"other\": 1}")
        (tree / "new.json").replace(tree / "world.json")
        with pytest.raises(OutputRejected, match="replaced after it was checked"):
            open_file(root, "world.json", LIMITS, expect=listed["world.json"])


@pytest.mark.parametrize("path", ["", "/etc/passwd", "../x", "a/../b", "a//b", "./a"])
def test_split_relative_refuses_escapes(path: str) -> None:
    with pytest.raises(OutputRejected):
        split_relative(path, LIMITS)


def test_take_tree_moves_a_valid_tree(tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    tree.rename(out / "job1")
    worlds = tmp_path / "worlds"
    worlds.mkdir()
    files = take_tree(out, "job1", worlds, LIMITS)
    assert [f.name for f in files] == ["biomes.npy", "world.json", "worlds_local/W/_main.0.fwl2"]
    assert (worlds / "job1" / "biomes.npy").is_file() and not (out / "job1").exists()


def test_take_tree_moves_a_link_without_following_and_removes_it(
        tmp_path: Path, secret: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "job1").symlink_to(secret, target_is_directory=True)
    worlds = tmp_path / "worlds"
    worlds.mkdir()
    with pytest.raises(OutputRejected, match="job1: a symbolic link, not a folder"):
        take_tree(out, "job1", worlds, LIMITS)
    assert not os.path.lexists(worlds / "job1")
    assert (secret / "secret.txt").read_text() == "root only"


def test_take_tree_refuses_a_linked_source_parent(tmp_path: Path, tree: Path) -> None:
    host = tmp_path / "host"
    host.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    tree.rename(elsewhere / "job1")
    (host / "out").symlink_to(elsewhere, target_is_directory=True)
    worlds = tmp_path / "worlds"
    worlds.mkdir()
    with pytest.raises(OutputRejected, match="out: a symbolic link"):
        take_tree(host / "out", "job1", worlds, LIMITS)
    assert (elsewhere / "job1" / "biomes.npy").is_file()


def test_take_tree_removes_a_rejected_tree(tree: Path, tmp_path: Path) -> None:
    os.mkfifo(tree / "pipe")
    out = tmp_path / "out"
    out.mkdir()
    tree.rename(out / "job1")
    worlds = tmp_path / "worlds"
    worlds.mkdir()
    with pytest.raises(OutputRejected, match="a FIFO"):
        take_tree(out, "job1", worlds, LIMITS)
    assert not (worlds / "job1").exists()
