"""Every Docker label the pool puts on a container is documented with what it means and where
its live value is (docs/architecture.md, "Container labels and worker hardening"): labels are
fixed at creation, so `vwe.owner` and `vwe.uses` must not be read as the current owner or
count."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pool.daemon import runtime

pytestmark = pytest.mark.unit

DOC = Path(__file__).resolve().parents[4] / "docs" / "architecture.md"


def label_rows() -> dict[str, tuple[str, str]]:
    rows = {}
    for line in DOC.read_text().splitlines():
        m = re.match(r"\| `(vwe\.[a-z]+)` \| (.+?) \| (.+?) \|$", line)
        if m:
            rows[m.group(1)] = (m.group(2), m.group(3))
    return rows


def test_every_label_the_pool_sets_has_a_documented_meaning() -> None:
    labels = {v for k, v in vars(runtime).items() if k.startswith("LABEL_")}
    rows = label_rows()
    assert labels and labels == set(rows), (labels, set(rows))


def test_the_labels_fixed_at_creation_point_to_their_live_values() -> None:
    rows = label_rows()
    owner_meaning, owner_live = rows["vwe.owner"]
    assert "created" in owner_meaning and "not its owner now" in owner_meaning
    assert "owner record" in owner_live and "GET /v1/pool" in owner_live
    uses_meaning, uses_live = rows["vwe.uses"]
    assert "always `0`" in uses_meaning
    assert "`uses` in `GET /v1/pool`" in uses_live
