"""The life cycle of finished worlds on disk: a world's folder lives as long as its record.

A job's files are moved into `VWE_DATA_DIR/worlds/<job id>` by one rename when it succeeds, so
a world folder is never partial. Its Redis record expires `VWE_RESULT_TTL_S` after the job
finished (or is lost with Redis's data); `sweep_expired`, run every
`VWE_EXPIRY_SWEEP_INTERVAL_S` by the daemon, then removes the folder, so disk use follows the
records. `DiskCollector` exports the data folder's disk use for the disk alert (config/).
"""

from __future__ import annotations

import asyncio
import re
import shutil
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Protocol

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from pool.infra.logs import get_logger

log = get_logger("vwe.worlds")

JOB_DIR = re.compile(r"^[0-9a-f]{32}$")
# A folder younger than this is left alone: its job may be recording its result right now.
MIN_AGE_S = 2.0
# Sweep this many folders per Redis round trip.
BATCH = 500


class RecordIndex(Protocol):
    async def jobs_exist(self, job_ids: Sequence[str]) -> list[bool]: ...


def _candidates(worlds_dir: Path, now: float) -> list[str]:
    if not worlds_dir.is_dir():
        return []
    out = []
    for entry in worlds_dir.iterdir():
        try:
            old = now - entry.lstat().st_mtime >= MIN_AGE_S
        except FileNotFoundError:
            continue
        if old and JOB_DIR.match(entry.name) and entry.is_dir() and not entry.is_symlink():
            out.append(entry.name)
    return out


def _remove(worlds_dir: Path, names: list[str]) -> None:
    for name in names:
        shutil.rmtree(worlds_dir / name, ignore_errors=True)


async def sweep_expired(worlds_dir: Path, records: RecordIndex,
                        clock: float | None = None) -> int:
    """Remove world folders whose job record no longer exists; returns how many."""
    now = time.time() if clock is None else clock
    names = await asyncio.to_thread(_candidates, worlds_dir, now)
    removed = 0
    for i in range(0, len(names), BATCH):
        batch = names[i:i + BATCH]
        exists = await records.jobs_exist(batch)
        gone = [name for name, ok in zip(batch, exists, strict=True) if not ok]
        if gone:
            await asyncio.to_thread(_remove, worlds_dir, gone)
            removed += len(gone)
    return removed


class DiskCollector(Collector):
    """`vwe_data_disk_free_bytes` and `vwe_data_disk_size_bytes` of the data folder's file
    system, read at scrape time."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir

    def collect(self) -> Iterator[Metric]:
        free = GaugeMetricFamily("vwe_data_disk_free_bytes",
                                 "Bytes available to the daemon on the data folder's disk")
        size = GaugeMetricFamily("vwe_data_disk_size_bytes", "Size of the data folder's disk")
        try:
            usage = shutil.disk_usage(self.data_dir)
        except OSError:
            return
        free.add_metric([], usage.free)
        size.add_metric([], usage.total)
        yield from (free, size)
