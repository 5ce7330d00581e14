"""Read the PromQL expressions of the Grafana dashboard with its variables substituted.

Shared by the unit test that syntax-checks the dashboard (tests/unit/config) and by tests that
evaluate the expressions against a live Prometheus. The substitutions turn Grafana's template
variables into values any Prometheus accepts: every template and instance, a 1m rate window.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
DASHBOARD_PATH = REPO_ROOT / "config" / "grafana" / "dashboards" / "vwe-pool.json"

SUBSTITUTIONS: dict[str, str] = {
    "template": ".*",
    "instance": ".*",
    "__rate_interval": "1m",
    "__interval": "15s",
    "__range": "5m",
}

# ${name}, ${name:format}, $name and [[name]]; \w+ is greedy, so $__interval_ms is not
# mistaken for $__interval.
_VARIABLE = re.compile(r"\$\{(\w+)(?::[^}]*)?\}|\$(\w+)|\[\[(\w+)\]\]")


def substitute(expr: str, substitutions: Mapping[str, str] | None = None) -> str:
    """Replace Grafana variables in ``expr``; raise ValueError for an unknown variable."""
    values = SUBSTITUTIONS if substitutions is None else substitutions

    def replace(match: re.Match[str]) -> str:
        name = next(group for group in match.groups() if group is not None)
        if name not in values:
            raise ValueError(f"unknown dashboard variable ${name} in {expr!r}")
        return values[name]

    return _VARIABLE.sub(replace, expr)


def iter_panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every panel, including those nested in (collapsed) rows."""
    for panel in panels:
        yield panel
        yield from iter_panels(panel.get("panels", []))


def load_dashboard(path: Path | str = DASHBOARD_PATH) -> dict[str, Any]:
    with open(path, encoding="utf-8") as fh:
        dashboard: dict[str, Any] = json.load(fh)
    return dashboard


def dashboard_exprs(
    path: Path | str = DASHBOARD_PATH,
    substitutions: Mapping[str, str] | None = None,
    *,
    include_annotations: bool = True,
) -> list[tuple[str, str]]:
    """(panel title, substituted expr) for every panel target with an expr.

    Annotation queries come last, titled ``annotation: <name>``.
    """
    dashboard = load_dashboard(path)
    exprs: list[tuple[str, str]] = []
    for panel in iter_panels(dashboard.get("panels", [])):
        for target in panel.get("targets", []):
            if target.get("expr"):
                exprs.append((panel.get("title", ""), substitute(target["expr"], substitutions)))
    if include_annotations:
        for annotation in dashboard.get("annotations", {}).get("list", []):
            if annotation.get("expr"):
                exprs.append(
                    (
                        f"annotation: {annotation.get('name', '')}",
                        substitute(annotation["expr"], substitutions),
                    )
                )
    return exprs
