"""The composition root's shutdown checklist: named steps in order, each run whatever failed
before it, a failure logged by name and making the exit code 1."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from structlog.testing import capture_logs

from pool.entry.root import Root, Step, _HttpServer
from pool.infra.settings import Settings

pytestmark = pytest.mark.unit


def _settings(tmp_path: Path) -> Settings:
    return Settings(_env_file=None, data_dir=tmp_path, redis_url="redis://127.0.0.1:1/0")


def test_the_checklist_names_each_step_in_the_shutdown_order(tmp_path: Path) -> None:
    worker = Root(_settings(tmp_path), role="worker")
    worker.build()  # clients connect lazily: nothing is reached here
    assert [name for name, _ in worker.shutdown_steps()] == [
        "stop HTTP intake", "stop taking jobs", "drain in-flight jobs", "give back the rest",
        "remove containers", "leave", "stop background loops", "close clients"]
    api = Root(_settings(tmp_path), role="api")
    api.build()
    assert [name for name, _ in api.shutdown_steps()] == [
        "stop HTTP intake", "stop background loops", "close clients"]


async def test_every_step_runs_after_a_failure_and_the_failure_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    root = Root(_settings(tmp_path), role="api")
    ran: list[str] = []

    def action(name: str, outcome: str) -> Step:
        async def run() -> bool | None:
            ran.append(name)
            if outcome == "raise":
                raise RuntimeError(f"{name} broke")
            return outcome != "false"
        return run

    steps = [("a", action("a", "ok")), ("b", action("b", "raise")),
             ("c", action("c", "false")), ("d", action("d", "ok"))]
    monkeypatch.setattr(root, "shutdown_steps", lambda: steps)
    with capture_logs() as logs:
        assert await root.shutdown() is False
    assert ran == ["a", "b", "c", "d"]
    failed = [e["step"] for e in logs if e["event"] == "shutdown step failed; shutdown goes on"]
    assert failed == ["b", "c"]

    ran.clear()
    monkeypatch.setattr(root, "shutdown_steps", lambda: [("a", action("a", "ok"))])
    assert await root.shutdown() is True and ran == ["a"]


async def test_the_http_server_stops_as_soon_as_it_is_told_not_on_its_next_tick() -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        raise AssertionError("no request is made")

    server = _HttpServer(uvicorn.Config(app, host="127.0.0.1", port=0, lifespan="off",
                                        log_config=None))
    ticks: list[int] = []
    tick = server.on_tick

    async def counted(counter: int) -> bool:
        ticks.append(counter)
        return await tick(counter)

    server.on_tick = counted  # type: ignore[method-assign]
    serving = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 (uvicorn offers no event to await)
        await asyncio.sleep(0.01)
    await asyncio.sleep(1.5)
    # Once a second for the Date header (every tick a multiple of ten, so it is refreshed),
    # not uvicorn's ten times a second.
    assert not serving.done() and 1 <= len(ticks) <= 3 and all(c % 10 == 0 for c in ticks)
    told = time.monotonic()
    server.should_exit = True
    await asyncio.wait_for(serving, timeout=5)
    # uvicorn's own loop would notice within 0.1 s; the one-second wait must not delay it.
    assert time.monotonic() - told < 0.5
