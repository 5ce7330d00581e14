"""Writing a world's folder all at once: into a temporary folder beside it, then one rename.

A reader of ``out_dir`` sees either the previous world or the new one, never a mix or a partial
write: a failure (full disk, read-only folder, a crash) leaves ``out_dir`` as it was and removes
the temporary folder. ``out_dir`` may be missing, an empty folder, or the folder of a previous
world (it holds ``world.json``), which is replaced whole; anything else is refused, so that a
typo cannot replace a folder of someone's files. Every problem is an `OutputError` naming the
folder and the cause. Stdlib only: this runs inside the worker image too.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# The file that marks a folder as a world this generator wrote.
WORLD_MARKER = "world.json"


class OutputError(ValueError):
    """The output folder cannot take the world; the message says which folder and why."""


# numpy reports a short write (a full disk) as a bare OSError("N requested and M written").
_SHORT_WRITE = re.compile(r"(\d+) requested and (\d+) written")


def describe(exc: OSError) -> str:
    """An OS error as a short cause: a full disk and a read-only folder say so."""
    short = _SHORT_WRITE.search(str(exc)) if exc.errno is None else None
    if exc.errno in (errno.ENOSPC, errno.EDQUOT) or (
            short is not None and int(short[2]) < int(short[1])):
        return "the disk is full (no space left on device)"
    if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return f"the folder is not writable ({exc.strerror})"
    if exc.errno in (errno.ENOTDIR, errno.EEXIST):
        return f"a file is in the way ({exc.strerror}: {exc.filename})"
    return exc.strerror or str(exc)


def check_target(out: Path) -> None:
    """Refuse an ``out`` that is a file or a folder of other files (before any work)."""
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise OutputError(f"cannot write the world to {out}: it exists and is not a folder")
    if out.is_dir():
        try:
            names = {p.name for p in out.iterdir()}
        except OSError as exc:
            raise OutputError(f"cannot write the world to {out}: {describe(exc)}") from None
        if names and WORLD_MARKER not in names:
            raise OutputError(f"cannot write the world to {out}: the folder holds other files "
                              f"(not a previous world); choose a new or empty folder")


@contextmanager
def staged(out_dir: Path) -> Iterator[Path]:
    """Yield a fresh temporary folder beside ``out_dir``; on a clean exit it replaces
    ``out_dir`` (see the module docstring), on any error it is removed.

    Raises `OutputError` for a bad target or any OS error while writing or placing."""
    out = Path(out_dir)
    check_target(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    except OSError as exc:
        raise OutputError(f"cannot write the world to {out}: {describe(exc)}") from None
    try:
        try:
            yield stage
            stage.chmod(0o755)  # mkdtemp makes it 0700
            _place(stage, out)
        except OSError as exc:
            raise OutputError(f"cannot write the world to {out}: {describe(exc)}") from None
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _place(stage: Path, out: Path) -> None:
    if not out.exists():
        os.rename(stage, out)
        return
    check_target(out)  # it may have changed while we generated
    if not any(out.iterdir()):
        os.replace(stage, out)  # rename(2) replaces an empty folder
        return
    old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
    os.replace(out, old)  # `old` is empty: replaced by the previous world
    try:
        os.rename(stage, out)
    except OSError:
        os.replace(old, out)  # put the previous world back
        raise
    shutil.rmtree(old, ignore_errors=True)
