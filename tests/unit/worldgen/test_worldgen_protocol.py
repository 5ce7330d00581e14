"""The agent's wire protocol."""

from __future__ import annotations

import pytest

from worldgen import protocol

pytestmark = pytest.mark.unit


def test_round_trip_is_one_line() -> None:
    wire = protocol.encode({"op": "generate", "seed": "ÆØÅ", "options": {"a": 1}})
    assert wire.endswith(b"\n") and wire.count(b"\n") == 1
    assert protocol.decode(wire) == {"op": "generate", "seed": "ÆØÅ", "options": {"a": 1}}


def test_decode_refuses_non_objects() -> None:
    with pytest.raises(ValueError):
        protocol.decode(b"[1, 2]\n")
    with pytest.raises(ValueError):
        protocol.decode(b"{not json\n")


@pytest.mark.parametrize(("job_id", "ok"), [("ab" * 16, True), ("../etc", False),
                                            ("ABCDEF12", False), ("", False)])
def test_job_ids_that_may_become_paths(job_id: str, ok: bool) -> None:
    assert bool(protocol.JOB_ID_RE.match(job_id)) is ok
