"""The composition root's shutdown checklist: named steps in order, each run whatever failed
before it, a failure logged by name and making the exit code 1."""

from __future__ import annotations

from pathlib import Path

import pytest
from structlog.testing import capture_logs

from pool.entry.root import Root, Step
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
