"""Prometheus config, alert rules and the Grafana dashboard: validated with promtool.

promtool (Debian's `prometheus` package) checks the scrape config and the rules and runs the
alert unit tests in config/alerts_test.yml; the dashboard's PromQL is syntax-checked by
turning every expression into a recording rule and running `promtool check rules` on that.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

try:
    from dashboard_exprs import dashboard_exprs, iter_panels, substitute
except ImportError:  # tests/ is not on sys.path when no conftest puts it there
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from dashboard_exprs import dashboard_exprs, iter_panels, substitute

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[3]
CONFIG = REPO / "config"
PROMETHEUS_YML = CONFIG / "prometheus.yml"
ALERTS_YML = CONFIG / "alerts.yml"
ALERTS_TEST_YML = CONFIG / "alerts_test.yml"
GRAFANA = CONFIG / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "vwe-pool.json"
DATASOURCES_YML = GRAFANA / "provisioning" / "datasources" / "prometheus.yml"
DASHBOARD_PROVIDER_YML = GRAFANA / "provisioning" / "dashboards" / "vwe.yml"

PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None,
    reason="promtool is not on PATH (install Debian's `prometheus` package to run this check)",
)

# The Metrics table of the design, plus the extra metrics the daemon exports.
DESIGN_METRICS = {
    "vwe_pool_containers",
    "vwe_pool_target",
    "vwe_pool_max",
    "vwe_acquire_total",
    "vwe_acquire_duration_seconds",
    "vwe_boot_duration_seconds",
    "vwe_generation_duration_seconds",
    "vwe_job_duration_seconds",
    "vwe_queue_wait_seconds",
    "vwe_queue_depth",
    "vwe_jobs_total",
    "vwe_recycled_total",
    "vwe_container_failures_total",
}
EXTRA_METRICS = {
    "vwe_up",
    "vwe_task_restarts_total",
    "vwe_data_disk_free_bytes",
    "vwe_data_disk_size_bytes",
    "vwe_http_requests_total",
    "vwe_http_request_duration_seconds",
    "vwe_autoscale_target",
    "vwe_takeovers_total",
    "vwe_fenced_containers_total",
    "vwe_lease_lost_total",
}
HISTOGRAMS = {
    "vwe_acquire_duration_seconds",
    "vwe_boot_duration_seconds",
    "vwe_generation_duration_seconds",
    "vwe_job_duration_seconds",
    "vwe_queue_wait_seconds",
    "vwe_http_request_duration_seconds",
}
WITH_TEMPLATE_LABEL = {
    "vwe_pool_containers",
    "vwe_pool_target",
    "vwe_pool_max",
    "vwe_acquire_total",
    "vwe_acquire_duration_seconds",
    "vwe_boot_duration_seconds",
    "vwe_generation_duration_seconds",
    "vwe_recycled_total",
    "vwe_container_failures_total",
    "vwe_autoscale_target",
    "vwe_takeovers_total",
    "vwe_fenced_containers_total",
}
ALERTS = {
    "VwePoolExhausted",
    "VweBootFailuresRepeated",
    "VweJobLatencyHigh",
    "VweRedisDown",
    "VweDockerDown",
    "VweDaemonDown",
    "VweDataDiskLow",
    "VweTaskRestarting",
    "VweLeaseLost",
}
TEMPLATE_FILTER = 'template=~"$template"'
INSTANCE_FILTER = 'instance=~"$instance"'

# A metric name (vwe_*, the client's process_* metrics, or `up`) and what follows it.
_METRIC = re.compile(r"\b(vwe_\w+|process_\w+|up)\b(\s*\{[^}]*\})?")


def promtool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run(
        [PROMTOOL, *map(str, args)], capture_output=True, text=True, timeout=60, check=False
    )


def assert_ok(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, (
        f"{' '.join(result.args)} failed ({result.returncode}):\n{result.stdout}{result.stderr}"
    )


def base_metric(name: str) -> str:
    for suffix in ("_bucket", "_count", "_sum"):
        if name.endswith(suffix) and name.removesuffix(suffix) in HISTOGRAMS:
            return name.removesuffix(suffix)
    return name


def load_yaml(path: Path) -> Any:
    with open(path, encoding="utf-8") as fh:
        return yaml.safe_load(fh)


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    with open(DASHBOARD, encoding="utf-8") as fh:
        data: dict[str, Any] = json.load(fh)
    return data


@pytest.fixture(scope="module")
def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in iter_panels(dashboard["panels"]) if p.get("type") != "row"]


def raw_exprs(panels: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [
        (panel["title"], target["expr"])
        for panel in panels
        for target in panel.get("targets", [])
        if target.get("expr")
    ]


# ------------------------------------------------------------------------ prometheus.yml


@needs_promtool
def test_prometheus_config_is_valid() -> None:
    assert_ok(promtool("check", "config", PROMETHEUS_YML))


def test_prometheus_config_scrapes_the_daemon() -> None:
    config = load_yaml(PROMETHEUS_YML)
    assert config["rule_files"] == ["alerts.yml"]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    job = jobs["vwe-pool"]
    assert job["scrape_interval"] == "5s"
    assert job.get("metrics_path", "/metrics") == "/metrics"
    targets = [t for sc in job["static_configs"] for t in sc["targets"]]
    assert targets == ["localhost:8080"]


# ------------------------------------------------------------------------ alerts.yml


@needs_promtool
def test_alert_rules_are_valid() -> None:
    result = promtool("check", "rules", ALERTS_YML)
    assert_ok(result)
    assert "warning" not in (result.stdout + result.stderr).lower()


@needs_promtool
def test_alert_rule_unit_tests_pass() -> None:
    assert_ok(promtool("test", "rules", ALERTS_TEST_YML))


def test_every_alert_has_severity_summary_and_description() -> None:
    rules = [rule for group in load_yaml(ALERTS_YML)["groups"] for rule in group["rules"]]
    assert {rule["alert"] for rule in rules} == ALERTS
    for rule in rules:
        assert rule["labels"]["severity"] in {"critical", "warning"}, rule["alert"]
        assert rule["annotations"]["summary"].strip(), rule["alert"]
        assert len(rule["annotations"]["description"]) > 100, rule["alert"]


def test_every_alert_is_tested_firing_and_quiet() -> None:
    fires: set[str] = set()
    quiet: set[str] = set()
    for case in load_yaml(ALERTS_TEST_YML)["tests"]:
        for check in case.get("alert_rule_test", []):
            (fires if check.get("exp_alerts") else quiet).add(check["alertname"])
    assert ALERTS - fires == set(), "alerts without a firing test case"
    assert ALERTS - quiet == set(), "alerts without a not-firing test case"


# ------------------------------------------------------------------------ dashboard


def test_dashboard_identity(dashboard: dict[str, Any]) -> None:
    assert dashboard["uid"] == "vwe-pool"
    assert 36 <= dashboard["schemaVersion"] <= 41
    assert dashboard.get("id") is None  # provisioned dashboards must not pin a database id


def test_dashboard_template_variables(dashboard: dict[str, Any]) -> None:
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for name in ("template", "instance"):
        variable = variables[name]
        query = variable["query"]
        query = query["query"] if isinstance(query, dict) else query
        assert query == f"label_values(vwe_pool_target, {name})"
        assert variable["datasource"]["uid"] == "${datasource}"
        assert variable["includeAll"] and variable["allValue"] == ".*"


def test_every_panel_queries_prometheus_through_the_datasource_variable(
    panels: list[dict[str, Any]],
) -> None:
    assert panels
    for panel in panels:
        targets = [t for t in panel.get("targets", []) if t.get("expr", "").strip()]
        assert targets, f"panel {panel.get('title')!r} has no target with an expr"
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        for target in panel["targets"]:
            assert target.get("datasource", panel["datasource"])["uid"] == "${datasource}"


def test_panel_ids_are_unique(panels: list[dict[str, Any]]) -> None:
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids))


def test_every_metric_is_on_the_dashboard(panels: list[dict[str, Any]]) -> None:
    shown = {
        base_metric(match.group(1))
        for _, expr in raw_exprs(panels)
        for match in _METRIC.finditer(expr)
    }
    assert (DESIGN_METRICS | EXTRA_METRICS) - shown == set()


def test_every_selector_is_filtered_by_template_and_instance(
    panels: list[dict[str, Any]],
) -> None:
    for title, expr in raw_exprs(panels):
        for match in _METRIC.finditer(expr):
            name, matchers = base_metric(match.group(1)), match.group(2) or ""
            where = f"{name} in panel {title!r}: {expr}"
            assert INSTANCE_FILTER in matchers, f"no instance filter on {where}"
            if name in WITH_TEMPLATE_LABEL:
                assert TEMPLATE_FILTER in matchers, f"no template filter on {where}"


def test_rate_windows_are_grafana_intervals(panels: list[dict[str, Any]]) -> None:
    for title, expr in raw_exprs(panels):
        for window in re.findall(r"\[([^\]]*)\]", expr):
            assert window in {"$__rate_interval", "$__range"}, (title, expr)


def test_quantiles_aggregate_buckets_by_le(panels: list[dict[str, Any]]) -> None:
    quantile_exprs = [(t, e) for t, e in raw_exprs(panels) if "histogram_quantile" in e]
    assert quantile_exprs
    for title, expr in quantile_exprs:
        assert "_bucket{" in expr, (title, expr)
        assert re.search(r"by \([^)]*\ble\b[^)]*\) \(rate\(", expr), (title, expr)


def test_dashboard_exprs_substitutes_every_variable() -> None:
    exprs = dashboard_exprs(DASHBOARD)
    assert exprs
    for title, expr in exprs:
        assert "$" not in expr and "[[" not in expr, (title, expr)
    assert any("[1m]" in expr for _, expr in exprs)
    assert any('instance=~".*"' in expr for _, expr in exprs)


def test_substitute_variable_forms() -> None:
    assert substitute('x{a=~"$template"}[$__rate_interval]') == 'x{a=~".*"}[1m]'
    assert substitute('x{a=~"${instance}"}[${__range}]') == 'x{a=~".*"}[5m]'
    assert substitute('x{a=~"${instance:regex}"}[[[__interval]]]') == 'x{a=~".*"}[15s]'
    with pytest.raises(ValueError, match="__interval_ms"):
        substitute("x[$__interval_ms]")


@needs_promtool
def test_dashboard_exprs_are_valid_promql(tmp_path: Path) -> None:
    exprs = dashboard_exprs(DASHBOARD)
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"dashboard:expr_{index}:check", "expr": expr}
                    for index, (_, expr) in enumerate(exprs)
                ],
            }
        ]
    }
    rules_file = tmp_path / "dashboard_rules.yml"
    rules_file.write_text(yaml.safe_dump(rules, sort_keys=False), encoding="utf-8")
    result = promtool("check", "rules", rules_file)
    listing = "\n".join(f"  [{index}] {title}: {expr}" for index, (title, expr) in enumerate(exprs))
    assert result.returncode == 0, f"{result.stdout}{result.stderr}\nexpressions:\n{listing}"
    assert f"{len(exprs)} rules found" in result.stdout


# ------------------------------------------------------------------------ provisioning


def test_grafana_provisioning() -> None:
    datasources = load_yaml(DATASOURCES_YML)["datasources"]
    assert [d["type"] for d in datasources] == ["prometheus"]
    assert datasources[0]["jsonData"]["timeInterval"] == "5s"
    providers = load_yaml(DASHBOARD_PROVIDER_YML)["providers"]
    assert len(providers) == 1
    assert providers[0]["type"] == "file"
    assert providers[0]["options"]["path"] == "/var/lib/grafana/dashboards"
