"""The worker agent: PID 1 of a worker container.

It imports and precomputes once, then (after an optional delay that models the real game
server's boot) binds its socket. The socket existing and answering `ping` is the readiness
signal the daemon waits for. Jobs run one at a time; a generator error becomes an `error`
event, never a hang. Stdlib + numpy only: this runs inside the minimal worker image.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import socketserver
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

from worldgen import protocol

_busy = threading.Lock()
_uses = 0
# The newest fencing token the daemons have shown this agent (pool.ownership): a job carrying
# an older one comes from a daemon that lost the container to another and is refused, even if
# that daemon was frozen between checking its token in Redis and handing the job over.
_fence = 0
_fence_lock = threading.Lock()


def _see_token(token: Any, *, for_job: bool) -> bool:
    """Raise the fence to `token`; False when a job's token is older than the fence."""
    global _fence
    if isinstance(token, bool) or not isinstance(token, int):
        return True  # a daemon without fencing: nothing to compare
    with _fence_lock:
        if for_job and token < _fence:
            return False
        _fence = max(_fence, token)
        return True


def _log(event: str, **fields: Any) -> None:
    # The daemon prints a failed container's logs; keep them one JSON line each.
    sys.stderr.write(protocol.encode({"event": event, "ts": round(time.time(), 3), **fields})
                     .decode())
    sys.stderr.flush()


class _Handler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        for line in self.rfile:
            if not line.strip():
                continue
            try:
                request = protocol.decode(line[: protocol.MAX_LINE])
            except ValueError as exc:
                self._send({"event": protocol.EVENT_ERROR, "message": f"bad request: {exc}"})
                return
            op = request.get("op")
            if op == protocol.OP_PING:
                _see_token(request.get("fence"), for_job=False)
                self._send({"event": protocol.EVENT_READY, "busy": _busy.locked(),
                            "uses": _uses, "pid": os.getpid(), "fence": _fence})
            elif op == protocol.OP_GENERATE:
                # The daemon keeps this connection for its next job; keep reading it.
                self._generate(request)
            else:
                self._send({"event": protocol.EVENT_ERROR, "message": f"unknown op {op!r}"})
                return

    def _send(self, message: dict[str, Any]) -> None:
        self.wfile.write(protocol.encode(message))
        self.wfile.flush()

    def _generate(self, request: dict[str, Any]) -> None:
        global _uses
        job_id = str(request.get("job_id", ""))
        if not protocol.JOB_ID_RE.match(job_id):
            self._send({"event": protocol.EVENT_ERROR, "message": "bad job_id"})
            return
        if not _see_token(request.get("token"), for_job=True):
            self._send({"event": protocol.EVENT_ERROR,
                        "message": f"{protocol.FENCED_PREFIX}: token {request.get('token')} "
                                   f"is older than {_fence}"})
            return
        if not _busy.acquire(blocking=False):
            self._send({"event": protocol.EVENT_ERROR, "message": "agent is busy"})
            return
        try:
            _uses += 1
            self._send({"event": protocol.EVENT_ACCEPTED, "job_id": job_id})
            out = Path(protocol.MOUNT_POINT) / protocol.OUT_DIR_NAME / job_id
            out.mkdir(parents=True, exist_ok=True)
            options = request.get("options") or {}
            started = time.perf_counter()
            try:
                from worldgen.generate import generate_world

                world = generate_world(
                    str(request.get("seed", "")), out,
                    resolution=int(options.get("resolution", _resolution())),
                    worldgen_version=int(options.get("worldgen_version", 2)),
                    legacy_fwl=bool(options.get("legacy_fwl", False)),
                    layers=options.get("layers"),
                    progress=lambda fraction, message: self._send(
                        {"event": protocol.EVENT_PROGRESS, "fraction": round(fraction, 3),
                         "message": message}),
                )
            except Exception as exc:
                _log("generation_failed", job_id=job_id, error=repr(exc),
                     trace=traceback.format_exc(limit=5))
                self._send({"event": protocol.EVENT_ERROR,
                            "message": f"{type(exc).__name__}: {exc}"})
                return
            files = [_describe(p, out) for p in sorted(out.rglob("*")) if p.is_file()]
            # The agent's own time: generating the world and describing its files.
            elapsed = time.perf_counter() - started
            self._send({"event": protocol.EVENT_DONE, "job_id": job_id,
                        "generation_s": elapsed, "files": files, "world": world})
            _log("generated", job_id=job_id, seconds=round(elapsed, 3))
        finally:
            _busy.release()


def _describe(path: Path, root: Path) -> dict[str, Any]:
    # Hashing here keeps the daemon's hot path to a rename.
    with path.open("rb") as f:
        digest = hashlib.file_digest(f, "sha256").hexdigest()
    return {"name": str(path.relative_to(root)), "size": path.stat().st_size, "sha256": digest}


class _Server(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True


def _resolution() -> int:
    return int(os.environ.get("VWE_MAP_RESOLUTION", "2048"))


def _seed_numba_cache() -> None:
    """Copy the image's compiled kernels to the writable cache folder (before numba loads)."""
    seed = os.environ.get("VWE_NUMBA_CACHE_SEED")
    target = os.environ.get("NUMBA_CACHE_DIR")
    if seed and target and os.path.isdir(seed) and not os.path.exists(target):
        shutil.copytree(seed, target)


def main() -> None:
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    booted = time.perf_counter()
    _seed_numba_cache()
    from worldgen.generate import warm_up

    warm_up(_resolution())
    delay = float(os.environ.get("VWE_WORKER_READY_DELAY_S", "0"))
    if delay > 0:
        time.sleep(delay)
    path = Path(protocol.MOUNT_POINT) / protocol.SOCKET_NAME
    path.unlink(missing_ok=True)
    # Bind under a temporary name, then rename: the daemon never sees a half-ready socket.
    tmp = path.with_name(f".{protocol.SOCKET_NAME}.{os.getpid()}")
    tmp.unlink(missing_ok=True)
    server = _Server(str(tmp), _Handler)
    os.replace(tmp, path)
    _log("ready", boot_s=round(time.perf_counter() - booted, 3), delay_s=delay)
    server.serve_forever()


if __name__ == "__main__":
    main()
