"""The daemon's side of the agent protocol (see `worldgen.protocol`)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pool.core.exceptions import ContainerFenced, GenerationFailed, HandoffFailed, WorkerDied
from worldgen import protocol

ProgressCallback = Callable[[float, str], Awaitable[None]]


@dataclass
class Handoff:
    """An accepted job: the open connection on which the agent will report the result."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    client: AgentClient | None = None

    async def result(
        self, timeout: float, on_progress: ProgressCallback | None = None
    ) -> dict[str, Any]:
        """Wait for `done`; progress events go to `on_progress`. Always closes the connection."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    line = await self.reader.readline()
                    if not line:
                        raise WorkerDied("the worker died during generation")
                    message = protocol.decode(line)
                    event = message.get("event")
                    if event == protocol.EVENT_DONE:
                        if self.client is not None:
                            self.client.give_back(self.reader, self.writer)
                            self.client = None
                        return message
                    if event == protocol.EVENT_ERROR:
                        raise GenerationFailed(str(message.get("message", "generator error")))
                    if event == protocol.EVENT_PROGRESS and on_progress is not None:
                        await on_progress(float(message.get("fraction", 0)),
                                          str(message.get("message", "")))
        except TimeoutError:
            raise GenerationFailed(f"generation took longer than {timeout:.0f} s") from None
        except (ConnectionError, ValueError) as exc:
            if isinstance(exc, ConnectionError):
                raise WorkerDied(f"lost the worker: {exc}") from exc
            raise GenerationFailed(f"lost the worker: {exc}") from exc
        finally:
            if self.client is not None:  # not given back: the connection is spent
                self.close()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()


class AgentClient:
    """Talks to one container's agent through the socket in its bind-mounted folder."""

    def __init__(self, host_dir: Path) -> None:
        self.socket_path = host_dir / protocol.SOCKET_NAME
        # One connection kept open between jobs: a handoff is then a single write and read,
        # with no connect and no new agent thread on the hot path.
        self._idle: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def connect(self) -> None:
        """Open the kept connection ahead of the first job (called once the agent is ready)."""
        if self._idle is None:
            with contextlib.suppress(OSError):
                self._idle = await asyncio.open_unix_connection(
                    str(self.socket_path), limit=protocol.MAX_LINE * 16)

    def give_back(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._idle is None and not writer.is_closing():
            self._idle = (reader, writer)
        else:
            writer.close()

    def close(self) -> None:
        if self._idle is not None:
            self._idle[1].close()
            self._idle = None

    async def ping(self, timeout: float = 1.0, fence: int | None = None) -> dict[str, Any] | None:
        """The readiness/health probe: the agent's answer, or None when it does not answer.
        `fence`: a new owner's token; from then on the agent refuses jobs with older ones."""
        request: dict[str, Any] = {"op": protocol.OP_PING}
        if fence is not None:
            request["fence"] = fence
        try:
            async with asyncio.timeout(timeout):
                reader, writer = await asyncio.open_unix_connection(str(self.socket_path))
                try:
                    writer.write(protocol.encode(request))
                    line = await reader.readline()
                finally:
                    writer.close()
            message = protocol.decode(line) if line else {}
        except (OSError, TimeoutError, ValueError):
            return None
        return message if message.get("event") == protocol.EVENT_READY else None

    async def handoff(
        self, job_id: str, seed: str, options: dict[str, Any], timeout: float,
        token: int | None = None,
    ) -> Handoff:
        """Send the job and wait only for `accepted`: this is the hot path, one round trip.
        `token` is the owner's fencing token: ContainerFenced when the agent has seen a newer
        one (another daemon took the container over)."""
        kept, self._idle = self._idle, None
        try:
            async with asyncio.timeout(timeout):
                if kept is not None and not kept[1].is_closing():
                    reader, writer = kept
                else:
                    reader, writer = await asyncio.open_unix_connection(
                        str(self.socket_path), limit=protocol.MAX_LINE * 16)
                request: dict[str, Any] = {"op": protocol.OP_GENERATE, "job_id": job_id,
                                           "seed": seed, "options": options}
                if token is not None:
                    request["token"] = token
                writer.write(protocol.encode(request))
                line = await reader.readline()
        except (OSError, TimeoutError) as exc:
            raise HandoffFailed(f"agent did not accept the job: {exc!r}") from exc
        handoff = Handoff(reader, writer, self)
        try:
            message = protocol.decode(line) if line else {}
        except ValueError:
            message = {}
        if message.get("event") != protocol.EVENT_ACCEPTED:
            handoff.client = None
            handoff.close()
            refusal = str(message.get("message", "no answer"))
            if refusal.startswith(protocol.FENCED_PREFIX):
                raise ContainerFenced(f"agent refused the job: {refusal}")
            raise HandoffFailed(f"agent refused the job: {refusal}")
        return handoff
