"""The trace the daemons leave in Redis, read back by the store for `vwe-pool simulate
--from-redis` and `--export-trace`, against the real Redis; keys from `pool.store.keys`."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
import redis
from redis.typing import EncodableT, FieldT

from pool.entry import cli
from pool.sim.workload import Constant
from pool.store import keys
from pool.store.traces import read_trace

pytestmark = pytest.mark.integration

BASE = 1_700_000_000.0


def record(client: redis.Redis, pool: str) -> list[float]:
    """Six arrivals; five jobs still recorded (j5 expired), j4 without its generation_s;
    three boot times, newest first. Returns the arrival times."""
    arrivals = [BASE + 30 * i for i in range(6)]
    client.zadd(keys.key(keys.ARRIVALS_KEY, pool), {f"j{i}": t for i, t in enumerate(arrivals)})
    for i in range(5):
        fields: dict[FieldT, EncodableT] = {
            "status": "succeeded", "launch_type": "warm" if i else "cold",
            "queued_at": repr(BASE + 30 * i), "started_at": repr(BASE + 30 * i),
            "finished_at": repr(BASE + 30 * i + 4)}
        if i != 4:
            fields["generation_s"] = repr(2.0 + i)
        client.hset(keys.key(keys.JOB_KEY_PREFIX, pool, f"j{i}"), mapping=fields)
    client.rpush(keys.key(keys.BOOT_TIMES_KEY, pool), "21.5", "19.25", "20.0")
    return arrivals


@pytest.fixture
def pool(redis_client: redis.Redis) -> str:
    return f"test-{uuid.uuid4().hex[:8]}"


def test_the_trace_holds_arrivals_generation_and_boot_times(redis_client: redis.Redis,
                                                            pool: str) -> None:
    arrivals = record(redis_client, pool)
    trace = read_trace(redis_client, pool, batch=2)
    assert trace.arrivals == arrivals
    # Recorded generation_s, and finished - started for the warm job without it.
    assert sorted(trace.generation_s) == [2.0, 3.0, 4.0, 4.0, 5.0]
    assert trace.launch_types == {"cold": 1, "warm": 4}
    assert trace.boot_s == [21.5, 19.25, 20.0]


def test_simulate_exports_and_replays_the_recorded_trace(
        redis_client: redis.Redis, redis_url: str, pool: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    arrivals = record(redis_client, pool)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("VWE_REDIS_URL", redis_url)
    monkeypatch.setenv("VWE_POOL_NAME", pool)
    out_file = tmp_path / "arrivals.json"
    assert cli.main(["simulate", "--export-trace", str(out_file)]) == 0, capsys.readouterr()
    assert json.loads(out_file.read_text()) == arrivals
    capsys.readouterr()
    assert cli.main(["simulate", "--from-redis", "--sizes", "0-2", "--fit", "empirical",
                     "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["inputs"]["jobs"] == 6
    assert data["inputs"]["generation"].startswith("empirical:5 values")
    assert data["inputs"]["boot"].startswith("empirical:3 values")
    # An explicit --boot wins over the recorded times.
    assert cli.main(["simulate", "--from-redis", "--sizes", "0-1", "--boot", "const:7",
                     "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["inputs"]["boot"] == Constant(7.0).describe()
