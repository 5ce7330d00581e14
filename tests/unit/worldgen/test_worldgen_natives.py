"""Every value recorded from Valheim 1.0.15 itself (tests/data/seedlab-natives), bit for bit."""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from worldgen import jitcore
from worldgen.biomes import world_angle
from worldgen.half import float_to_half, half_to_float
from worldgen.hashing import stable_hash
from worldgen.jitworld import next_uint, range_float
from worldgen.unity_random import UnityRandom

pytestmark = pytest.mark.unit

NATIVES = Path(__file__).resolve().parents[2] / "data" / "seedlab-natives"


def _load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((NATIVES / name).read_text(encoding="utf-8"))
    return data


def _f64(bits: str) -> float:
    value: float = struct.unpack(">d", bytes.fromhex(bits[2:]))[0]
    return value


def _f32_bits(value: float) -> int:
    return int(np.float32(value).view(np.uint32))


def _libm(fn: str, a: float, b: float) -> float:
    """The C library calls the generator makes (``Math.Pow(x, 2)`` is ``x * x`` here)."""
    if fn == "Sin":
        return math.sin(a)
    if fn == "Cos":
        return math.cos(a)
    if fn == "Atan2":
        return math.atan2(a, b)
    return a * a if b == 2.0 else math.pow(a, b)


def test_libm_values_match_mono() -> None:
    samples = _load("natives-libm.json")["samples"]
    assert len(samples) == 93
    for s in samples:
        a, b = _f64(s["bits"]["a"]), _f64(s["bits"]["b"])
        got = struct.pack(">d", _libm(s["fn"], a, b)).hex().upper()
        assert got == s["bits"]["result"][2:], s
    # numpy's vectorised transcendentals (used by the reference on arrays) agree too.
    for fn, np_fn in (("Sin", np.sin), ("Cos", np.cos)):
        xs = np.array([_f64(s["bits"]["a"]) for s in samples if s["fn"] == fn] * 64)
        expect = np.array([_f64(s["bits"]["result"]) for s in samples if s["fn"] == fn] * 64)
        assert np.array_equal(np_fn(xs).view(np.uint64), expect.view(np.uint64))


def test_world_angle_matches_game() -> None:
    samples = _load("natives-libm.json")["worldAngle"]
    assert len(samples) == 49
    wx = np.array([int(s["bits"]["wx"], 16) for s in samples], dtype=np.uint32).view(np.float32)
    wy = np.array([int(s["bits"]["wy"], 16) for s in samples], dtype=np.uint32).view(np.float32)
    expect = np.array([int(s["bits"]["result"], 16) for s in samples], dtype=np.uint32)
    assert np.array_equal(world_angle(wx, wy).view(np.uint32), expect)
    compiled = [_f32_bits(jitcore.world_angle(float(x), float(y))) for x, y in zip(wx, wy,
                                                                                   strict=True)]
    assert compiled == expect.tolist()


def test_init_state_for_every_recorded_seed() -> None:
    states = _load("natives-random.json")["initStates"]
    assert len(states) == 268
    for entry in states:
        assert UnityRandom(entry["seed"]).state == tuple(entry["state"]), entry["seed"]


def _replay(rng: UnityRandom, words: np.ndarray, call: str, prev: float) -> tuple[str, float]:
    """One recorded call on the reference stream and on the compiled one; ``(kind, value)``."""
    if call.startswith("value"):
        if "discarded" in call:  # "value (after N discarded)"
            for _ in range(int(call.split("after ")[1].split()[0])):
                rng.next_uint()
                next_uint(words)
        value = rng.value()
        assert float(np.float32(next_uint(words) & 0x7FFFFF) * np.float32(1.1920930376163765e-07)
                     ) == value
        return "float", value
    inner = call[len("Range("):-1]
    lo_s, hi_s = (p.strip() for p in inner.split(","))
    ints = {"int.MinValue": -(2**31), "int.MaxValue": 2**31 - 1}
    if "f" not in lo_s + hi_s and "PI" not in hi_s and "<" not in hi_s:
        lo, hi = (ints[v] if v in ints else int(v) for v in (lo_s, hi_s))
        value_i = rng.range_int(lo, hi)
        if lo != hi:
            next_uint(words)
        return "int", float(value_i)
    floats = {"PI*2": 6.2831854820251465, "<previous result>": prev}
    lo_f, hi_f = (floats[v] if v in floats else float(v.rstrip("f")) for v in (lo_s, hi_s))
    value = rng.range_float(lo_f, hi_f)
    assert range_float(words, float(np.float32(lo_f)), float(np.float32(hi_f))) == value
    return "float", value


def test_random_traces_replay_bit_for_bit() -> None:
    traces = _load("natives-random.json")["traces"]
    checked = 0
    for trace in traces:
        rng = UnityRandom(trace["initState"])
        assert rng.state == tuple(trace["stateAfterInit"])
        words = np.array([w & 0xFFFFFFFF for w in rng.state], dtype=np.int64)
        prev = 0.0
        for draw in trace["draws"]:
            if draw["call"].startswith("insideUnitCircle"):
                break  # native rejection sampling the generator never uses for terrain
            kind, prev = _replay(rng, words, draw["call"].strip(), prev)
            if kind == "int":
                assert int(prev) == draw["resultInt"], (trace["id"], draw)
            else:
                assert _f32_bits(prev) == int(draw["bits"]["resultFloat"], 16), draw
            assert rng.state == tuple(draw["stateAfter"]), (trace["id"], draw)
            assert tuple(int(np.int64(w).astype(np.uint32).view(np.int32)) for w in words) \
                == tuple(draw["stateAfter"])
            checked += 1
    assert checked > 1900


def test_float_to_half_rounds_like_the_game() -> None:
    samples = _load("natives-half.json")["samples"]
    assert len(samples) == 1635
    values = np.array([int(s["bits"]["value"], 16) for s in samples],
                      dtype=np.uint32).view(np.float32)
    assert float_to_half(values).tolist() == [s["half"] for s in samples]
    back = half_to_float(np.array([s["half"] for s in samples], dtype=np.uint16))
    finite = np.isfinite(back)
    expect = np.array([int(s["bits"]["back"], 16) for s in samples], dtype=np.uint32)
    assert np.array_equal(back.view(np.uint32)[finite], expect[finite])


def test_stable_hash_codes() -> None:
    samples = _load("natives-hash.json")["samples"]
    assert len(samples) >= 427
    assert [stable_hash(s["s"]) for s in samples] == [s["hash"] for s in samples]
