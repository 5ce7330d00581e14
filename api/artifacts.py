"""Serving an artifact: the file is re-checked and sent from the descriptor that checked it.

A worker may still hold a descriptor of its (moved) job folder and change it after collection,
so serving applies the output rules again (docs/architecture.md, "Trust boundaries"): every
path component is opened relative to its parent without following links, the file must be a
regular file with one link, within the size limit and inside the worlds folder, of the size
the job record lists and not modified after the job finished, and it is sent
from that same descriptor; no path is opened twice. Starlette's `FileResponse` reopens its
path, so this small response sends from a descriptor instead (no Range requests: the clients
read whole artifacts).
"""

from __future__ import annotations

import os
from email.utils import formatdate
from pathlib import Path
from urllib.parse import quote

import anyio
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from api.errors import ApiError
from pool.infra.logs import get_logger
from pool.infra.safefs import OutputRejected, WalkLimits, open_file, opened_dir, split_relative

log = get_logger("vwe.api")

CHUNK_BYTES = 256 * 1024
# A file's mtime may pass its job's finished_at by this much (seconds) before it counts as
# changed: the worlds store may be a shared mount whose server clock differs a little.
MTIME_SLACK_S = 60.0


def open_artifact(worlds_dir: Path, job_id: str, name: str, limits: WalkLimits,
                  size: int | None = None, finished_at: float | None = None) -> int:
    """Open ``worlds_dir/job_id/name`` for serving (the caller closes it, or hands it to
    `DescriptorResponse`).

    ``size`` (bytes) and ``finished_at`` (unix seconds) are what the job record says: a file
    of another size, or modified more than `MTIME_SLACK_S` after the job finished, was
    changed after collection (a worker that kept a descriptor of its output, docs/
    architecture.md "Trust boundaries") and is not served as the recorded world.

    Raises:
        ApiError: 400 ``invalid_artifact_name`` for a name that is not a plain relative path,
            404 ``artifact_missing`` when it is gone, 403 ``artifact_refused`` when it fails
            the serve-time check (a link, a special file, hard links, too large, changed).
    """
    try:
        split_relative(name, limits)
    except OutputRejected as exc:
        raise ApiError(400, "invalid_artifact_name", str(exc)) from None
    try:
        with opened_dir(worlds_dir) as worlds, opened_dir(job_id, worlds) as root:
            fd = open_file(root, name, limits)
        st = os.fstat(fd)
        changed = ((size is not None and st.st_size != size)
                   or (finished_at is not None and st.st_mtime > finished_at + MTIME_SLACK_S))
        if changed:
            os.close(fd)
            raise OutputRejected(f"{name}: changed after the job recorded it ({st.st_size} "
                                 f"bytes, modified at {st.st_mtime:.0f}; the record says "
                                 f"{size} bytes, finished at {finished_at or 0:.0f})")
        return fd
    except FileNotFoundError:
        raise ApiError(404, "artifact_missing",
                       f"artifact {name!r} is no longer on disk") from None
    except OutputRejected as exc:
        log.error("artifact refused at serve time", job_id=job_id, artifact=name, error=str(exc))
        raise ApiError(403, "artifact_refused",
                       f"artifact {name!r} failed the serve-time check: {exc}") from None


class DescriptorResponse(Response):
    """A whole regular file sent from an open descriptor, which it owns and closes."""

    def __init__(self, fd: int, media_type: str, filename: str) -> None:
        self.fd: int | None = fd
        st = os.fstat(fd)
        self.size = st.st_size
        super().__init__(media_type=media_type, headers={
            "content-length": str(st.st_size),
            "last-modified": formatdate(st.st_mtime, usegmt=True),
            "etag": f'"{st.st_mtime_ns:x}-{st.st_size:x}"',
            "content-disposition": f"attachment; filename*=utf-8''{quote(filename)}",
        })

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await send({"type": "http.response.start", "status": self.status_code,
                        "headers": self.raw_headers})
            if scope.get("method") == "HEAD" or self.fd is None:
                await send({"type": "http.response.body", "body": b""})
                return
            offset = 0
            while True:
                want = min(CHUNK_BYTES, self.size - offset)
                chunk = await anyio.to_thread.run_sync(os.pread, self.fd, want, offset) \
                    if want > 0 else b""
                offset += len(chunk)
                more = bool(chunk) and offset < self.size
                await send({"type": "http.response.body", "body": chunk, "more_body": more})
                if not more:
                    return
        finally:
            self.close()

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
