"""Publish a finished world's folder into the worlds store, which may be another filesystem.

The worlds store (`VWE_WORLDS_DIR`) may be a shared mount (NFS, CephFS, ...) while the job's
files are written on the host-local data folder, so one `rename` cannot always move them
(EXDEV). Readers (any API process on any host) must never see a partial world, so a
cross-filesystem move is: copy into a hidden temporary folder inside the store, `fsync` every
file and folder, `rename` the temporary folder to its final name (atomic within the store),
`fsync` the store's folder, then remove the source. A crash before the rename leaves only a
hidden `.incoming-*` folder, which `remove_stale_incoming` clears (the expiry sweep ignores
dot-names). On one filesystem it is a single rename, as before.

Written by hand: `shutil.move` falls back to copy-then-delete across filesystems but copies
straight to the final name (a reader can see a partial world) and never fsyncs.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import time
import uuid
from pathlib import Path

INCOMING_PREFIX = ".incoming-"


def same_filesystem(a: Path, b: Path) -> bool:
    """True when `a` and `b` (existing paths) are on one device, so a rename between them works."""
    return os.stat(a).st_dev == os.stat(b).st_dev


def _fsync_path(path: Path, directory: bool) -> None:
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _copy_synced(source: Path, target: Path) -> None:
    """Copy the tree `source` to the new folder `target`, fsyncing each file and folder.
    Only regular files and folders are copied: links and anything else are refused."""
    target.mkdir()
    for entry in sorted(source.iterdir()):
        dest = target / entry.name
        if entry.is_symlink():
            raise ValueError(f"{entry}: refusing to publish a symbolic link")
        if entry.is_dir():
            _copy_synced(entry, dest)
        elif entry.is_file():
            with entry.open("rb") as src, dest.open("xb") as out:
                shutil.copyfileobj(src, out, 1 << 20)
                out.flush()
                os.fsync(out.fileno())
        else:
            raise ValueError(f"{entry}: refusing to publish a special file")
    _fsync_path(target, directory=True)


def publish_tree(source: Path, worlds_dir: Path, name: str) -> Path:
    """Move folder `source` to `worlds_dir/name`; a previous folder of that name is replaced.

    Args:
        source: a folder of regular files and folders (already checked by the caller).
        worlds_dir: the worlds store; created when missing.
        name: the world's folder name (the job id; one path component).

    Returns:
        The published folder, `worlds_dir/name`.

    Raises:
        ValueError: `name` is not one path component, or `source` holds a link or a special
            file (nothing is published).
        OSError: copying or renaming failed (nothing is published; the source stays).
    """
    if not name or "/" in name or name in (".", "..") or name.startswith("."):
        raise ValueError(f"{name!r} is not a world folder name")
    worlds_dir.mkdir(parents=True, exist_ok=True)
    final = worlds_dir / name
    if same_filesystem(source, worlds_dir):
        _replace_dir(source, final)
        return final
    incoming = worlds_dir / f"{INCOMING_PREFIX}{name}-{uuid.uuid4().hex[:8]}"
    try:
        _copy_synced(source, incoming)
        _replace_dir(incoming, final)
        _fsync_path(worlds_dir, directory=True)
    except BaseException:
        shutil.rmtree(incoming, ignore_errors=True)
        raise
    shutil.rmtree(source, ignore_errors=True)
    return final


def _replace_dir(source: Path, final: Path) -> None:
    """Rename `source` to `final`; an existing `final` (an earlier attempt's world) is first
    renamed aside, so readers see the old or the new folder whole, never a mix."""
    try:
        os.rename(source, final)
        return
    except OSError as exc:
        if not final.is_dir() or exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
            raise
    aside = final.with_name(f"{INCOMING_PREFIX}old-{final.name}-{uuid.uuid4().hex[:8]}")
    os.rename(final, aside)
    os.rename(source, final)
    shutil.rmtree(aside, ignore_errors=True)


def remove_stale_incoming(worlds_dir: Path, older_than_s: float,
                          now: float | None = None) -> int:
    """Remove `.incoming-*` folders left by a crash mid-copy; returns how many.

    Only folders untouched for `older_than_s` seconds are removed, so a copy in progress on
    another host sharing the store is left alone."""
    if not worlds_dir.is_dir():
        return 0
    clock = time.time() if now is None else now
    removed = 0
    for entry in worlds_dir.iterdir():
        if not entry.name.startswith(INCOMING_PREFIX):
            continue
        with contextlib.suppress(FileNotFoundError):
            if clock - entry.lstat().st_mtime >= older_than_s and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
                removed += 1
    return removed
