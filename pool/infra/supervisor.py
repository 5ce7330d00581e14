"""The process's long-running loops, run as named asyncio tasks by the composition root.

Hand-written rather than `asyncio.TaskGroup`: a TaskGroup cancels every task when one fails,
while here a failed loop must leave the others running, show in `/readyz` by name and be
stopped one at a time in the shutdown order (docs/architecture.md, "Shutdown").
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from typing import Any

from pool.infra.logs import get_logger

log = get_logger("vwe.supervisor")

LoopFactory = Callable[[], Coroutine[Any, Any, None]]


class Supervisor:
    def __init__(self) -> None:
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def start(self, name: str, factory: LoopFactory) -> None:
        """Run `factory()` as the task `name` (names are unique within the process)."""
        if name in self._tasks:
            raise ValueError(f"a task named {name!r} is already supervised")
        self._tasks[name] = asyncio.create_task(self._run(name, factory), name=name)

    async def _run(self, name: str, factory: LoopFactory) -> None:
        try:
            await factory()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("component failed", component=name)
            raise

    def health(self) -> dict[str, bool]:
        """Component name -> still running."""
        return {name: not task.done() for name, task in self._tasks.items()}

    def failed(self) -> list[str]:
        """Names of the tasks that ended with an exception."""
        return [name for name, task in self._tasks.items()
                if task.done() and not task.cancelled() and task.exception() is not None]

    async def stop(self, name: str) -> None:
        """Cancel the task `name` and wait for it; a task that failed earlier is just dropped."""
        task = self._tasks.pop(name, None)
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task

    async def stop_all(self) -> None:
        for name in list(self._tasks):
            await self.stop(name)
