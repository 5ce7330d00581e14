"""The exported metrics match the table of docs/architecture.md ("Metrics") and the README:
names, types and labels."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from pool.infra.metrics import Metrics

pytestmark = pytest.mark.unit

# docs/architecture.md, "Metrics": name -> (type, labels)
DESIGN = {
    "vwe_pool_containers": ("gauge", {"template", "state"}),
    "vwe_pool_target": ("gauge", {"template"}),
    "vwe_pool_max": ("gauge", {"template"}),
    "vwe_acquire": ("counter", {"template", "launch_type"}),
    "vwe_acquire_duration_seconds": ("histogram", {"template", "launch_type"}),
    "vwe_boot_duration_seconds": ("histogram", {"template", "outcome"}),
    "vwe_generation_duration_seconds": ("histogram", {"template"}),
    "vwe_job_duration_seconds": ("histogram", {"launch_type"}),
    "vwe_queue_wait_seconds": ("histogram", set()),
    "vwe_queue_depth": ("gauge", set()),
    "vwe_jobs": ("counter", {"status"}),
    "vwe_recycled": ("counter", {"template", "reason"}),
    "vwe_container_failures": ("counter", {"template", "phase"}),
}


class FakePool:
    template = "default"

    def state_counts(self) -> dict[str, int]:
        return {"warm": 2, "busy": 1}

    def target(self) -> int:
        return 2

    def cap(self) -> int:
        return 4

    def queue_depth(self) -> int:
        return 3

    def component_up(self) -> dict[str, bool]:
        return {"redis": True, "docker": False}

    def autoscale_choice(self) -> tuple[int, str] | None:
        return (3, "demand")


def families() -> dict[str, tuple[str, list[tuple[str, dict[str, str], float]]]]:
    metrics = Metrics()
    metrics.init_template("default")
    metrics.pool_collector.pools.append(FakePool())
    text = metrics.render().decode()
    return {f.name: (f.type, [(s.name, s.labels, s.value) for s in f.samples])
            for f in text_string_to_metric_families(text)}


def test_design_metrics_have_their_types_and_labels() -> None:
    found = families()
    for name, (kind, labels) in DESIGN.items():
        assert name in found, f"{name} not exported"
        assert found[name][0] == kind, name
        for sample_name, sample_labels, _ in found[name][1]:
            assert set(sample_labels) - {"le"} == labels, (sample_name, sample_labels)


def test_pool_gauges_come_from_live_state_at_scrape_time() -> None:
    found = families()
    states = {s[1]["state"]: s[2] for s in found["vwe_pool_containers"][1]}
    assert states == {"booting": 0, "warm": 2, "busy": 1, "retiring": 0}
    assert found["vwe_pool_target"][1][0][2] == 2
    assert found["vwe_pool_max"][1][0][2] == 4
    assert found["vwe_queue_depth"][1][0][2] == 3
    up = {s[1]["component"]: s[2] for s in found["vwe_up"][1]}
    assert up == {"redis": 1.0, "docker": 0.0}


def test_known_label_values_exist_at_zero_before_any_event() -> None:
    found = families()
    statuses = {s[1]["status"] for s in found["vwe_jobs"][1] if s[0] == "vwe_jobs_total"}
    assert statuses == {"succeeded", "failed", "cached", "rejected", "retried"}
    reasons = {s[1]["reason"] for s in found["vwe_recycled"][1] if s[0] == "vwe_recycled_total"}
    assert reasons == {"max_age", "max_uses", "idle", "unhealthy", "resize", "drain",
                       "outdated"}
    phases = {s[1]["phase"] for s in found["vwe_container_failures"][1]
              if s[0] == "vwe_container_failures_total"}
    assert phases == {"boot", "handoff", "generation"}


def test_histogram_buckets_fit_what_they_measure() -> None:
    found = families()

    def bounds(name: str) -> list[float]:
        return sorted({float(s[1]["le"]) for s in found[name][1] if "le" in s[1]})

    assert bounds("vwe_acquire_duration_seconds")[0] <= 0.0005  # sub-millisecond handoffs
    assert bounds("vwe_boot_duration_seconds")[-2] >= 120  # minute-long boots
    assert 0.5 in bounds("vwe_generation_duration_seconds")
