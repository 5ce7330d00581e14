"""Result collection: a finished job's files, moved out of the worker's reach and checked.

The worker's folder is untrusted (docs/architecture.md, "Trust boundaries"): the job's folder
is renamed into a host-local staging folder relative to directory descriptors (a link is moved
as a link, never followed), then walked by `pool.infra.safefs` with the output limits. Anything
that breaks a rule fails the attempt with `OutputRejected` and is removed; nothing outside
the job's own folder is read, hashed or listed. A checked tree is then published to the worlds
store (`pool.infra.crossfs`), which may be a shared mount on another filesystem.
"""

from __future__ import annotations

import hashlib
import mimetypes
import os
from pathlib import Path
from typing import Any

from pool.core.jobs import Artifact
from pool.infra.crossfs import publish_tree
from pool.infra.safefs import (
    FileEntry,
    OutputRejected,
    WalkLimits,
    open_dir,
    open_file,
    opened_dir,
    remove_entry,
    take_tree,
    walk,
)
from worldgen import protocol

# The standard library's own table only (no /etc/mime.types): the same answer on every host.
# The game's .fwl/.fwl2 and numpy's .npy are not in it and are served as octet streams.
MEDIA_TYPES = mimetypes.MimeTypes(filenames=())
SHA256_RE_LEN = 64


def content_type(name: str) -> str:
    """The media type an artifact is served with, by its suffix."""
    return MEDIA_TYPES.guess_type(name, strict=True)[0] or "application/octet-stream"


def collect_output(host_dir: Path, job_id: str, staging_dir: Path, worlds_dir: Path,
                   limits: WalkLimits, done: dict[str, Any]) -> list[Artifact]:
    """Move ``out/<job_id>`` of a container's folder to ``staging_dir/<job_id>``, list it
    there, then publish it to ``worlds_dir/<job_id>`` (`publish_tree`: one rename on one
    filesystem, copy + fsync + rename across filesystems; never a partial world).

    Args:
        host_dir: the container's bind-mounted folder (the daemon made it; the worker writes
            inside it).
        job_id: the job's id (32 hex characters; also the folder's name).
        staging_dir: host-local, daemon-only folder on the same filesystem as ``host_dir``.
        worlds_dir: the worlds store (`VWE_WORLDS_DIR`), possibly another filesystem.
        limits: the output limits (settings `VWE_OUTPUT_MAX_*`).
        done: the agent's ``done`` event; its ``files`` give sha256 digests for listed names
            (a worker vouches only for its own files), others are hashed here.

    Returns:
        One `Artifact` per regular file, sorted by name.

    Raises:
        OutputRejected: no job folder, or the tree breaks a rule (the message names both).
        OSError: the world could not be published to ``worlds_dir`` (full, unreachable).
    """
    staging_dir.mkdir(parents=True, exist_ok=True)
    try:
        entries = take_tree(host_dir / protocol.OUT_DIR_NAME, job_id, staging_dir, limits)
    except FileNotFoundError:
        raise OutputRejected(f"{job_id}: the worker left no output folder") from None
    claimed = {f.get("name"): f.get("sha256") for f in done.get("files", [])
               if isinstance(f, dict)}
    artifacts = []
    with opened_dir(staging_dir) as staging, opened_dir(job_id, staging) as root:
        for entry in entries:
            sha = claimed.get(entry.name)
            if not (isinstance(sha, str) and len(sha) == SHA256_RE_LEN
                    and all(c in "0123456789abcdef" for c in sha)):
                sha = _sha256(root, entry, limits)
            artifacts.append(Artifact(name=entry.name, size=entry.size, sha256=sha,
                                      content_type=content_type(entry.name)))
    try:
        publish_tree(staging_dir / job_id, worlds_dir, job_id)
    except (OSError, ValueError):
        with opened_dir(staging_dir) as staging:
            remove_entry(job_id, staging)
        raise
    return artifacts


def published_world(worlds_dir: Path, job_id: str, limits: WalkLimits) -> list[Artifact] | None:
    """The artifacts of ``worlds_dir/<job_id>`` when an earlier attempt already published it,
    else None.

    Publishing is the last step before the outcome is recorded, so a published folder is a
    whole world whose record was lost: the daemon died between the two, or Redis failed over
    to a replica that had not yet received the record. Recording it again instead of running
    the job again is what keeps a job from running twice (docs/architecture.md, "Exactly
    once"). The folder is walked with the output limits like any other tree.

    Raises:
        OutputRejected: the folder breaks a rule (it is then not taken as a finished world).
    """
    try:
        with opened_dir(worlds_dir) as store:
            root = open_dir(job_id, store)
    except FileNotFoundError:
        return None
    try:
        return [Artifact(name=entry.name, size=entry.size, sha256=_sha256(root, entry, limits),
                         content_type=content_type(entry.name))
                for entry in walk(root, limits, job_id)]
    finally:
        os.close(root)


def _sha256(root: int, entry: FileEntry, limits: WalkLimits) -> str:
    fd = open_file(root, entry.name, limits, expect=entry)
    with os.fdopen(fd, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()
