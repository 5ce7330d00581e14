"""The trace the daemons leave in Redis, read back for `vwe-pool simulate --from-redis` and
`--export-trace`: the store owns the keys, so the simulator reads through here."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from pool.core.jobs import DEFAULT_TEMPLATE
from pool.store import keys


@dataclass
class RecordedTrace:
    """What the daemons recorded: arrival unix times, generation times (s), launch-type
    counts, and the latest boot times (s)."""

    arrivals: list[float]  # unix times
    generation_s: list[float]
    launch_types: dict[str, int]
    boot_s: list[float] = field(default_factory=list)  # the latest, newest first


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _num(raw: dict[str, str], name: str) -> float | None:
    try:
        value = float(raw.get(name) or "nan")
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def arrivals_key(pool_name: str, template: str = DEFAULT_TEMPLATE) -> str:
    """Where one template's arrivals are recorded (for messages that name it)."""
    return keys.key(keys.ARRIVALS_KEY, keys.scope(pool_name, template))


def read_trace(client: Any, pool_name: str, batch: int = 500,
               template: str = DEFAULT_TEMPLATE) -> RecordedTrace:
    """One template's arrivals (`{pool}:arrivals`, `{pool}/{template}:arrivals` for another
    than `default`), generation times from the job hashes and the template's daemons' latest
    boot times (`{pool}:boots`, likewise).

    A job's generation time is its recorded `generation_s` (the agent's own time); a job
    without it falls back to finished_at - started_at when it ran warm (a cold run's span
    includes the boot). `client` is a synchronous redis-py client.
    """
    scope = keys.scope(pool_name, template)
    entries = client.zrange(arrivals_key(pool_name, template), 0, -1, withscores=True)
    ids = [_text(member) for member, _ in entries]
    arrivals = sorted(float(score) for _, score in entries)
    prefix = keys.key(keys.JOB_KEY_PREFIX, pool_name)
    generation: list[float] = []
    launches: dict[str, int] = {}
    for start in range(0, len(ids), batch):
        pipe = client.pipeline(transaction=False)
        for job_id in ids[start:start + batch]:
            pipe.hgetall(prefix + job_id)
        for raw_hash in pipe.execute():
            raw = {_text(k): _text(v) for k, v in (raw_hash or {}).items()}
            if not raw:
                continue  # expired
            launch = raw.get("launch_type", "")
            if launch:
                launches[launch] = launches.get(launch, 0) + 1
            gen = _num(raw, "generation_s")
            if gen is None and launch == "warm" and raw.get("status") == "succeeded":
                started, finished = _num(raw, "started_at"), _num(raw, "finished_at")
                if started is not None and finished is not None:
                    gen = finished - started
            if gen is not None and gen > 0:
                generation.append(gen)
    boots = [float(_text(v)) for v in
             client.lrange(keys.key(keys.BOOT_TIMES_KEY, scope), 0, -1)]
    return RecordedTrace(arrivals, generation, launches, [b for b in boots if b > 0])
