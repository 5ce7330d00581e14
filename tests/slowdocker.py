"""A unix-socket proxy to the real Docker engine that delays every `/_ping` request.

Point a daemon's DOCKER_HOST at `unix://<path>` to give it a slow engine: everything else
passes through untouched. Requests on one connection are sequential (the client waits for each
answer), so a chunk read from the client starts with a request line.
"""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path


def engine_socket() -> str:
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    if not host.startswith("unix://"):
        raise RuntimeError(f"the delaying proxy needs a unix-socket engine, not {host}")
    return host[len("unix://"):]


class DelayingDockerProxy:
    def __init__(self, path: Path, delay_s: float, upstream: str | None = None) -> None:
        self.path = path
        self.delay_s = delay_s  # read at each request: a test may slow the engine down later
        self.upstream = upstream or engine_socket()
        self.delayed = 0  # /_ping requests held back so far
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="slow-docker", daemon=True)
        self._server: asyncio.AbstractServer | None = None

    @property
    def docker_host(self) -> str:
        return f"unix://{self.path}"

    def start(self) -> DelayingDockerProxy:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the delaying proxy did not start")
        return self

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()
        self.path.unlink(missing_ok=True)

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)
        await asyncio.sleep(0.05)  # let the closed transports finish closing

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(
            asyncio.start_unix_server(self._serve, path=str(self.path)))
        self._ready.set()
        self._loop.run_forever()

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        writers = [client_w]
        try:
            engine_r, engine_w = await asyncio.open_unix_connection(self.upstream)
            writers.append(engine_w)

            async def requests() -> None:
                while chunk := await client_r.read(65536):
                    if self.delay_s > 0 and b"/_ping " in chunk.split(b"\r\n", 1)[0]:
                        self.delayed += 1
                        await asyncio.sleep(self.delay_s)
                    engine_w.write(chunk)
                    await engine_w.drain()

            async def answers() -> None:
                while chunk := await engine_r.read(65536):
                    client_w.write(chunk)
                    await client_w.drain()

            pumps = [asyncio.ensure_future(requests()), asyncio.ensure_future(answers())]
            try:
                await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
            finally:  # either side closing (or the proxy stopping) ends the pair
                for pump in pumps:
                    pump.cancel()
                await asyncio.gather(*pumps, return_exceptions=True)
        except (OSError, asyncio.CancelledError):
            pass  # a test tool: a dropped connection or the proxy stopping ends it quietly
        finally:
            for w in writers:
                w.close()
