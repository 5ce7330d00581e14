"""The request schema says exactly what the API accepts: seeds, strict JSON types."""

from __future__ import annotations

import json

import jsonschema_rs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from api.models import PoolPatch, WorldRequest, check_seed

pytestmark = pytest.mark.unit
SCHEMA = WorldRequest.model_json_schema()
# The validator schemathesis uses.
SEED = jsonschema_rs.validator_for(SCHEMA["properties"]["seed"])


def accepted(seed: str) -> bool:
    try:
        check_seed(seed)
    except ValueError:
        return False
    return True


@pytest.mark.parametrize("seed", [
    "MWd8eV6svz", "a", "ten chars!", "eleven char", "", "tab\there", "nul\x00", "c1\x85",
    "😀" * 5, "😀" * 6, "😀😀😀😀a", "😀😀😀😀abc", "ünïcödé", "é" * 10, "é" * 11,
])
def test_seed_schema_matches_the_game_rule(seed: str) -> None:
    assert SEED.is_valid(seed) == accepted(seed), seed


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=14))
def test_seed_schema_matches_the_game_rule_for_any_text(seed: str) -> None:
    assert SEED.is_valid(seed) == accepted(seed), repr(seed)


@pytest.mark.parametrize(("body", "field"), [
    ({"seed": "a", "legacy_fwl": 0}, "legacy_fwl"),
    ({"seed": "a", "legacy_fwl": "true"}, "legacy_fwl"),
    ({"seed": "a", "worldgen_version": True}, "worldgen_version"),
    ({"seed": "a", "worldgen_version": "2"}, "worldgen_version"),
    ({"seed": "a", "resolution": 16.5}, "resolution"),
    ({"seed": 12345}, "seed"),
])
def test_world_request_refuses_loose_types(body: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError, match=field):
        WorldRequest.model_validate_json(json.dumps(body))


def test_world_request_takes_integral_numbers_as_json_schema_does() -> None:
    body = WorldRequest.model_validate_json('{"seed": "a", "worldgen_version": 1.0}')
    assert body.worldgen_version == 1 and isinstance(body.worldgen_version, int)


@pytest.mark.parametrize("raw", ['{"autoscale": 0}', '{"size": true}', '{"max_age_s": "5"}',
                                 '{"idle_ttl_s": NaN}', '{"max_age_s": Infinity}'])
def test_pool_patch_refuses_loose_types_and_non_finite_numbers(raw: str) -> None:
    with pytest.raises(ValidationError):
        PoolPatch.model_validate_json(raw)


@pytest.mark.parametrize("raw", ['{"size": 3.0}', '{"max_uses": 40.0}'])
def test_pool_patch_takes_integral_numbers_as_json_schema_does(raw: str) -> None:
    # schemathesis' ST202: JSON Schema's "integer" includes 3.0, so refusing it broke the schema.
    patch = PoolPatch.model_validate_json(raw)
    value = next(v for v in patch.model_dump().values() if v is not None)
    assert isinstance(value, int) and value == int(json.loads(raw).popitem()[1])


@pytest.mark.parametrize("raw", ['{"size": 1.5}', '{"size": "2"}', '{"max_uses": false}'])
def test_pool_patch_refuses_fractions_strings_and_booleans_for_integers(raw: str) -> None:
    with pytest.raises(ValidationError):
        PoolPatch.model_validate_json(raw)
