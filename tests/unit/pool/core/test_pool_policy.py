"""The one policy definition: bounds, kinds, the stored hash, and everything derived from it."""

from __future__ import annotations

import dataclasses
import math

import pytest
from pydantic import ValidationError

from api.models import PoolPatch
from pool.core.exceptions import ConfigError
from pool.core.pool_policy import BY_NAME, FIELDS, PATCHABLE, PolicyError, PoolPolicy
from pool.infra.settings import Settings, load_settings

pytestmark = pytest.mark.unit

# Values that were once accepted and persisted (issue 13, items 7 and 8): each could make
# the pool boot without pause, or stored `inf` that later showed as null.
DEGENERATE = [
    ("max_age_s", 5e-324), ("max_uses", 4.1e26),
    ("max_uses", 410_000_000_000_000_000_000_000_000),
    ("idle_ttl_s", 1.2e-148), ("min", 303), ("idle_ttl_s", math.inf), ("idle_ttl_s", 1e999),
    ("max_age_s", math.nan), ("size", True), ("max", False), ("autoscale", 1), ("size", 2.0),
]


def test_fields_are_the_policy_fields() -> None:
    assert [f.name for f in dataclasses.fields(PoolPolicy)] == [f.name for f in FIELDS]


@pytest.mark.parametrize(("name", "value"), DEGENERATE)
def test_degenerate_values_are_refused_naming_the_field(name: str, value: object) -> None:
    with pytest.raises(PolicyError, match=rf"^{name} ") as caught:
        PoolPolicy(size=1, max=256 if name == "min" else 8).updated(**{name: value})
    assert caught.value.field == name


# JSON has one number type: a PATCH body's 2.0 is the integer 2, as JSON Schema says
# (schemathesis ST202), so only the Python-level policy refuses a float size.
PATCH_DEGENERATE = [(name, value) for name, value in DEGENERATE if (name, value) != ("size", 2.0)]


@pytest.mark.parametrize(("name", "value"), PATCH_DEGENERATE)
def test_the_patch_body_refuses_them_too(name: str, value: object) -> None:
    with pytest.raises(ValidationError, match=name):
        PoolPatch.model_validate({name: value})


@pytest.mark.parametrize(("name", "text"), [
    ("max_age_s", "5e-324"), ("max_uses", "410000000000000000000000000"),
    ("idle_ttl_s", "1.2e-148"), ("pool_min", "303"), ("idle_ttl_s", "inf"),
    ("idle_ttl_s", "1e999"), ("surplus_idle_s", "nan"), ("pool_size", "true"),
])
def test_settings_refuse_them_naming_the_variable(monkeypatch: pytest.MonkeyPatch, name: str,
                                                 text: str) -> None:
    monkeypatch.setenv(f"VWE_{name.upper()}", text)
    with pytest.raises(ConfigError, match=f"VWE_{name.upper()}"):
        load_settings(_env_file=None)


def test_sizes_must_fit_under_max() -> None:
    with pytest.raises(PolicyError, match=r"size .* must not exceed max"):
        PoolPolicy(size=5, max=2)
    with pytest.raises(PolicyError, match=r"min .* must not exceed max"):
        PoolPolicy(size=1, max=2, min=3)


def test_sane_values_pass_and_the_bounds_are_inclusive() -> None:
    p = PoolPolicy(size=0, max=256, min=256, max_age_s=60, max_uses=1, idle_ttl_s=60,
                   surplus_idle_s=0, autoscale=True)
    assert p.max == 256 and p.max_age_s == 60


def test_the_patch_body_has_exactly_the_patchable_fields_with_their_bounds() -> None:
    assert set(PoolPatch.model_fields) == {f.name for f in PATCHABLE}
    for name, field in PoolPatch.model_fields.items():
        spec = BY_NAME[name]
        if spec.kind is bool:
            continue
        limits = {type(m).__name__: m for m in field.metadata}
        assert getattr(limits["Ge"], "ge", None) == spec.lo, name
        assert getattr(limits["Le"], "le", None) == spec.hi, name


def test_settings_take_their_bounds_from_the_fields() -> None:
    names = {"size": "pool_size", "max": "pool_max", "min": "pool_min"}
    for spec in FIELDS:
        field = Settings.model_fields[names.get(spec.name, spec.name)]
        if spec.kind is bool:
            continue
        limits = {type(m).__name__: m for m in field.metadata}
        assert getattr(limits["Ge"], "ge", None) == spec.lo, spec.name
        assert getattr(limits["Le"], "le", None) == spec.hi, spec.name


def test_the_stored_hash_round_trips_and_bad_stored_values_are_ignored() -> None:
    p = PoolPolicy(size=2, max=5, max_age_s=600.5, autoscale=True)
    stored = p.to_hash()
    assert stored["autoscale"] == "1" and stored["max_age_s"] == "600.5"
    back, problems = PoolPolicy(size=1, max=8).overlay(stored)
    assert back == p and problems == []
    # `inf` stored by an older version, a number where a flag belongs, an unknown field.
    kept, problems = p.overlay({"idle_ttl_s": "inf", "autoscale": "2", "colour": "red",
                                "size": "3"})
    assert kept == p.updated(size=3)
    assert len(problems) == 2 and any("idle_ttl_s" in x for x in problems)
    # A combination that does not fit is ignored whole.
    same, problems = p.overlay({"size": "9"})
    assert same == p and "as a whole" in problems[0]


def test_updated_refuses_an_unknown_field() -> None:
    with pytest.raises(PolicyError, match="colour is not a pool policy field"):
        PoolPolicy(size=1, max=2).updated(colour="red")
