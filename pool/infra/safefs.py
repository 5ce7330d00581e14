"""Worker output is untrusted input: walk it and open it without ever following a link.

A worker container writes its job's files into a folder the daemon later reads, hashes, moves
and serves as a more privileged user. Whatever the worker left there is checked with the rules
below before the daemon touches its content, and again when a file is served
(docs/architecture.md, "Trust boundaries"):

- only regular files and folders; a symbolic link, FIFO, socket or device anywhere in the tree
  refuses the whole tree (`OutputRejected`), as does a regular file with other hard links;
- names of at most `max_name_bytes` bytes of ``[A-Za-z0-9._-]``, not starting with a dot;
- at most `max_files` entries (files and folders), `max_depth` levels, `max_total_bytes`
  apparent bytes (so a sparse file of many terabytes is refused by its size, unread);
- nothing is opened by path: every step is ``openat`` relative to a folder's descriptor with
  ``O_NOFOLLOW``, and a file is opened with ``O_NONBLOCK`` (a FIFO swapped in after the check
  cannot block the daemon) and checked again with ``fstat`` (same inode as the one listed,
  still a regular file). A walk never crosses into another filesystem.

Written by hand because the standard library's `os.fwalk` lists a whole folder before it can be
judged (a million names is a lot of memory) and has no limits, and no maintained library
offers an fd-relative, no-follow, limited walk.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from pool.core.exceptions import VweError

# Flags of every open here: relative to a descriptor, never through a link, never a tty.
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
NAME_RE = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]*$")


class OutputRejected(VweError):
    """A tree or file breaks the rules above; the message names the path and the rule."""


@dataclass(frozen=True)
class WalkLimits:
    """Limits of one job's output (settings `VWE_OUTPUT_MAX_*`, config/settings.env.example).

    Attributes:
        max_files: files and folders together, int.
        max_depth: path components of the deepest entry, int (``a/b/c.npy`` is 3).
        max_name_bytes: bytes of one name (one path component), int.
        max_total_bytes: sum of the files' apparent sizes (``st_size``), bytes, int.
    """

    max_files: int = 256
    max_depth: int = 8
    max_name_bytes: int = 100
    max_total_bytes: int = 1 << 30


@dataclass(frozen=True)
class FileEntry:
    """One regular file of a checked tree: ``name`` is its POSIX path relative to the root,
    ``size`` its length in bytes, ``device``/``inode`` what was listed (checked on open)."""

    name: str
    size: int
    device: int
    inode: int


def check_name(name: str, limits: WalkLimits) -> None:
    """Raise `OutputRejected` unless ``name`` is one acceptable path component."""
    if len(name.encode("utf-8", "surrogateescape")) > limits.max_name_bytes:
        raise OutputRejected(f"{name[:40]!r}...: name longer than {limits.max_name_bytes} bytes")
    if not NAME_RE.match(name):
        raise OutputRejected(f"{name!r}: names may only hold ASCII letters, digits, '.', '_' "
                             "and '-', and may not start with a dot")


def split_relative(path: str, limits: WalkLimits) -> list[str]:
    """A relative POSIX path as its checked components (no '', '.', '..', absolute paths).

    Raises:
        OutputRejected: the path is empty, absolute, too deep, or a component is refused.
    """
    parts = path.split("/")
    if not path or path.startswith("/") or len(parts) > limits.max_depth:
        raise OutputRejected(f"{path[:80]!r}: not a relative path of at most "
                             f"{limits.max_depth} components")
    for part in parts:
        check_name(part, limits)
    return parts


def _kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file or folder"


def _refuse_kind(where: str, mode: int) -> OutputRejected:
    return OutputRejected(f"{where}: {_kind(mode)} (only regular files and folders are accepted)")


def open_dir(name: str, dir_fd: int | None = None) -> int:
    """Open folder ``name`` (relative to ``dir_fd`` when given) without following a link.

    Raises:
        OutputRejected: it is a link or not a folder.
        FileNotFoundError: it does not exist.
    """
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
    except OSError as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        try:
            mode = os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode
        except OSError:
            mode = 0
        raise OutputRejected(f"{name}: {_kind(mode) if mode else exc.strerror}, "
                             "not a folder") from None


def walk(root_fd: int, limits: WalkLimits, where: str = ".") -> list[FileEntry]:
    """Check the tree below the open folder ``root_fd`` and list its regular files.

    Args:
        root_fd: an open descriptor of the tree's root folder (see `open_dir`).
        limits: the limits to apply.
        where: how the root is named in error messages.

    Returns:
        The regular files, sorted by name (POSIX paths relative to the root).

    Raises:
        OutputRejected: anything in the tree breaks a rule (message names it and the rule).
    """
    root_dev = os.fstat(root_fd).st_dev
    files: list[FileEntry] = []
    budget = _Budget(limits)
    _walk_dir(root_fd, "", 1, root_dev, budget, files, where)
    files.sort(key=lambda f: f.name)
    return files


class _Budget:
    def __init__(self, limits: WalkLimits) -> None:
        self.limits = limits
        self.entries = 0
        self.bytes = 0

    def count(self, where: str) -> None:
        self.entries += 1
        if self.entries > self.limits.max_files:
            raise OutputRejected(f"{where}: more than {self.limits.max_files} files and "
                                 "folders")

    def add(self, where: str, size: int) -> None:
        self.bytes += size
        if self.bytes > self.limits.max_total_bytes:
            raise OutputRejected(f"{where}: the files exceed {self.limits.max_total_bytes} "
                                 "bytes in total")


def _walk_dir(fd: int, prefix: str, depth: int, root_dev: int, budget: _Budget,
              files: list[FileEntry], where: str) -> None:
    limits = budget.limits
    # scandir yields names batch by batch, so a folder of a million names is refused after
    # max_files of them, not after listing them all.
    with os.scandir(fd) as entries:
        for entry in entries:
            rel = f"{prefix}{entry.name}"
            shown = f"{where}/{rel}"
            budget.count(shown)
            check_name(entry.name, limits)
            if depth > limits.max_depth:
                raise OutputRejected(f"{shown}: deeper than {limits.max_depth} levels")
            st = entry.stat(follow_symlinks=False)
            if st.st_dev != root_dev:
                raise OutputRejected(f"{shown}: on another filesystem")
            if stat.S_ISREG(st.st_mode):
                if st.st_nlink != 1:
                    raise OutputRejected(f"{shown}: a regular file with other hard links")
                budget.add(shown, st.st_size)
                files.append(FileEntry(rel, st.st_size, st.st_dev, st.st_ino))
            elif stat.S_ISDIR(st.st_mode):
                child = open_dir(entry.name, fd)
                try:
                    cst = os.fstat(child)
                    if (cst.st_dev, cst.st_ino) != (st.st_dev, st.st_ino):
                        raise OutputRejected(f"{shown}: replaced while it was being checked")
                    _walk_dir(child, f"{rel}/", depth + 1, root_dev, budget, files, where)
                finally:
                    os.close(child)
            else:
                raise _refuse_kind(shown, st.st_mode)


def open_file(root_fd: int, name: str, limits: WalkLimits,
              expect: FileEntry | None = None) -> int:
    """Open the regular file at relative path ``name`` below ``root_fd`` for reading.

    Every component is opened relative to its parent's descriptor without following links;
    the file itself with ``O_NONBLOCK`` and then checked with ``fstat``. The caller closes the
    returned descriptor.

    Args:
        root_fd: the open root folder.
        name: relative POSIX path; its components must pass `check_name`.
        limits: the same limits as the walk (depth, names, size).
        expect: when given, the file must still be the inode the walk listed.

    Raises:
        OutputRejected: a component is a link or special file, the file is too large, has
            other hard links, or is not the file that was listed.
        FileNotFoundError: a component does not exist.
    """
    parts = split_relative(name, limits)
    dir_fd = root_fd
    opened: list[int] = []
    try:
        for part in parts[:-1]:
            dir_fd = open_dir(part, dir_fd)
            opened.append(dir_fd)
        try:
            fd = os.open(parts[-1], _FILE_FLAGS, dir_fd=dir_fd)
        except OSError as exc:
            if isinstance(exc, FileNotFoundError):
                raise
            raise OutputRejected(f"{name}: cannot be opened as a regular file "
                                 f"({exc.strerror})") from None
    finally:
        for d in opened:
            os.close(d)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise _refuse_kind(name, st.st_mode)
        if st.st_nlink != 1:
            raise OutputRejected(f"{name}: a regular file with other hard links")
        if st.st_size > limits.max_total_bytes:
            raise OutputRejected(f"{name}: larger than {limits.max_total_bytes} bytes")
        if expect is not None and (st.st_dev, st.st_ino) != (expect.device, expect.inode):
            raise OutputRejected(f"{name}: replaced after it was checked")
        # The descriptor stays non-blocking; on a regular file that changes nothing.
        return fd
    except BaseException:
        os.close(fd)
        raise


@contextmanager
def opened_dir(path: str | os.PathLike[str], dir_fd: int | None = None) -> Iterator[int]:
    """`open_dir` as a context manager that closes the descriptor."""
    fd = open_dir(os.fspath(path), dir_fd)
    try:
        yield fd
    finally:
        os.close(fd)


def remove_entry(name: str, dir_fd: int) -> None:
    """Remove ``name`` below ``dir_fd`` whatever it is, never following a link (shutil's
    fd-based rmtree for a folder, unlink for anything else); a missing one is fine."""
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(name, dir_fd=dir_fd)
    else:
        os.unlink(name, dir_fd=dir_fd)


def take_tree(source_parent: str | os.PathLike[str], name: str,
              target_parent: str | os.PathLike[str], limits: WalkLimits) -> list[FileEntry]:
    """Move folder ``name`` out of a worker-writable folder into ``target_parent``, then check it.

    The move comes first so the worker can no longer swap names under the check: it renames
    whatever ``name`` is (a link is moved as a link, never followed), relative to descriptors
    of both parents. A tree that breaks a rule is removed again.

    Args:
        source_parent: the worker-writable folder holding ``name``; its own path is trusted
            up to its last component, which is opened without following a link.
        name: the job's folder name (one checked component).
        target_parent: the daemon's folder (same filesystem) that receives ``name``; a
            previous attempt's folder of that name is replaced.
        limits: the walk's limits.

    Returns:
        The tree's regular files (see `walk`).

    Raises:
        OutputRejected: the tree breaks a rule (it is removed).
        FileNotFoundError: there is no ``name`` in ``source_parent``.
        OSError: EXDEV when the two folders are on different filesystems.
    """
    check_name(name, limits)
    source = Path(source_parent)
    with opened_dir(source.parent) as grand, opened_dir(source.name, grand) as src, \
            opened_dir(target_parent) as dst:
        remove_entry(name, dst)
        os.rename(name, name, src_dir_fd=src, dst_dir_fd=dst)
        try:
            with opened_dir(name, dst) as root:
                return walk(root, limits, where=name)
        except OutputRejected:
            remove_entry(name, dst)
            raise
