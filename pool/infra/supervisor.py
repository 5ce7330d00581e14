"""Supervision of the daemon's long-running work: restart on failure, count it, say what is down.

Two kinds of work are supervised (docs/architecture.md, "Supervision"):

- **tasks** (`Supervisor.spawn`): an endless coroutine such as the dispatcher or the job-event
  subscription. When it raises, the exception is logged with its traceback, the restart counter
  `vwe_task_restarts_total{task}` goes up, the component is reported down, and the coroutine is
  started again after a back-off (doubling from `base_s` up to `max_s`; reset once a run has
  lasted `stable_s`). A task that *returns* while the supervisor is running counts as a failure
  too: none of them is meant to end on its own.
- **periodic jobs** (`Supervisor.job`): a coroutine function that APScheduler calls on an
  interval (heartbeat, recycle, health, reaper, autoscaler). APScheduler already calls it again
  on the next tick, so "restart" is the next tick; the wrapper logs the traceback, counts the
  failure and reports the component down until a run succeeds. A job whose last success is
  older than its `stale_after_s` (it hangs, or its runs are being skipped) is down as well.

`Supervisor.down()` names every component that is down and why: `/readyz` shows it.

Why by hand and not tenacity/stamina: those retry one call with a policy; here the restart loop
must also expose per-component state to readiness and metrics while it waits, and stop cleanly
at shutdown. The loop below is that and nothing more.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum

from prometheus_client import Counter

from pool.infra.logs import get_logger

log = get_logger("vwe.supervisor")


class ComponentState(StrEnum):
    UP = "up"
    DOWN = "down"  # failed; restarting after its back-off, or failing on every tick
    STOPPED = "stopped"  # stopped on purpose (shutdown)


@dataclass
class Component:
    name: str
    state: ComponentState = ComponentState.UP
    error: str = ""
    restarts: int = 0
    last_error: str = ""
    last_failure_at: float = float("-inf")
    # Periodic jobs only: the last successful run (monotonic s) and how old it may get.
    last_ok: float | None = None
    stale_after_s: float | None = None


class Supervisor:
    """Runs and watches named components; see the module docstring."""

    def __init__(self, restarts: Counter | None = None, *, base_s: float = 0.1,
                 max_s: float = 10.0, stable_s: float = 30.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.restarts = restarts
        self.base_s, self.max_s, self.stable_s = base_s, max_s, stable_s
        self.clock = clock
        self.components: dict[str, Component] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._stopping = False

    def _component(self, name: str) -> Component:
        component = self.components.get(name)
        if component is None:
            component = self.components[name] = Component(name)
            if self.restarts is not None:
                self.restarts.labels(name)  # the series exists at 0 from the start
        return component

    def _failed(self, component: Component, error: BaseException) -> bool:
        """Record a failure; True when it is news (the component was up, or fails
        differently now): only news is logged with its traceback, repeats in one line."""
        message = f"{type(error).__name__}: {error}"
        now = self.clock()
        news = (message != component.last_error
                or now - component.last_failure_at > self.stable_s)
        component.state, component.error = ComponentState.DOWN, message
        component.last_error, component.last_failure_at = message, now
        component.restarts += 1
        if self.restarts is not None:
            self.restarts.labels(component.name).inc()
        return news

    # ---------- tasks ----------
    def spawn(self, name: str, run: Callable[[], Awaitable[None]]) -> asyncio.Task[None]:
        """Run `run()` under supervision as the component `name` until `stop()`."""
        self._component(name)
        task = asyncio.create_task(self._supervise(name, run), name=name)
        self._tasks[name] = task
        return task

    async def _supervise(self, name: str, run: Callable[[], Awaitable[None]]) -> None:
        component = self.components[name]
        backoff = self.base_s
        while not self._stopping:
            started = self.clock()
            component.state, component.error = ComponentState.UP, ""
            try:
                await run()
                if self._stopping:
                    break
                raise RuntimeError(f"task {name} returned; it should run until shutdown")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self._stopping:
                    break
                if self.clock() - started >= self.stable_s:
                    backoff = self.base_s
                if self._failed(component, exc):
                    log.exception("supervised task failed; restarting", task=name,
                                  restart_in_s=round(backoff, 3), restarts=component.restarts)
                else:
                    log.warning("supervised task failed again; restarting", task=name,
                                error=component.error, restart_in_s=round(backoff, 3),
                                restarts=component.restarts)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.max_s)
        component.state = ComponentState.STOPPED

    # ---------- periodic jobs ----------
    def job(self, name: str, fn: Callable[[], Awaitable[None]], *,
            stale_after_s: float | None = None,
            outages: tuple[type[BaseException], ...] = ()) -> Callable[[], Awaitable[None]]:
        """`fn` wrapped for a scheduler: failures logged, counted and shown; never raised.

        A failure of a type in `outages` (a dependency unreachable: Redis) is logged and
        counted but leaves the job up: the dependency's own check shows the outage, and a job
        that runs once a minute would otherwise stay down for up to a minute after the
        dependency is back. A job that keeps failing so still goes down by `stale_after_s`."""
        component = self._component(name)
        component.stale_after_s = stale_after_s
        component.last_ok = self.clock()  # the grace period starts now

        async def supervised() -> None:
            try:
                await fn()
            except asyncio.CancelledError:
                raise
            except outages as exc:
                if self.restarts is not None:
                    self.restarts.labels(name).inc()
                log.warning("periodic job failed: a dependency is unreachable", job=name,
                            error=f"{type(exc).__name__}: {exc}")
                return
            except Exception as exc:
                if self._failed(component, exc):
                    log.exception("periodic job failed; it runs again on its next tick",
                                  job=name, failures=component.restarts)
                else:
                    log.warning("periodic job failed again", job=name, error=component.error,
                                failures=component.restarts)
                return
            component.state, component.error = ComponentState.UP, ""
            component.last_ok = self.clock()

        supervised.__name__ = supervised.__qualname__ = f"supervised_{name}"
        return supervised

    # ---------- reading state ----------
    def down(self) -> dict[str, str]:
        """Components that are down now, with the reason: {name: reason}."""
        now = self.clock()
        out: dict[str, str] = {}
        for c in self.components.values():
            if c.state is ComponentState.DOWN:
                out[c.name] = c.error or "down"
            elif (c.state is ComponentState.UP and c.stale_after_s is not None
                  and c.last_ok is not None and now - c.last_ok > c.stale_after_s):
                out[c.name] = f"no successful run for {now - c.last_ok:.0f} s"
        return out

    def alive(self, name: str) -> bool:
        """True when the component is registered and not down."""
        return name in self.components and name not in self.down()

    # ---------- shutdown ----------
    async def stop(self, timeout: float = 5.0) -> bool:
        """Cancel every supervised task and wait for them (up to `timeout`).

        Returns True when all of them ended by cancellation; False when one ended with an
        exception or did not end in time (it is logged). Never raises: shutdown goes on.
        """
        self._stopping = True
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        if not tasks:
            return True
        done, pending = await asyncio.wait(tasks, timeout=timeout)
        clean = not pending
        for task in pending:
            log.error("supervised task did not stop in time", task=task.get_name())
        for task in done:
            if task.cancelled():
                continue
            exc = task.exception()
            if exc is not None:
                clean = False
                log.error("supervised task ended with an error at shutdown",
                          task=task.get_name(), error=repr(exc))
        for name, task in self._tasks.items():
            if task.done():
                self.components[name].state = ComponentState.STOPPED
        with contextlib.suppress(Exception):
            self._tasks.clear()
        return clean
