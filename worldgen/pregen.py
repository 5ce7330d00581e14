"""``WorldGenerator.Pregenerate``: lakes, rivers and streams of Valheim 1.0.15, bit for bit.

``FindLakes`` (low base height on a 128 m grid, merged by running midpoints), ``PlaceRivers``
(lake to lake, its own ``UnityEngine.Random`` stream from ``m_riverSeed``), ``PlaceStreams``
twice (both passes reseeded from ``m_streamSeed``; the second renders only Deep North streams and
its list is discarded) and ``RenderRivers`` into the river-point grid, as Valheim-SeedLab's spec
01 (section 4) describes them. Vector2 arithmetic is float32 (``_r`` rounds a double result of a
single operation, which equals the float operation); ``==`` on Vector2 is Unity's epsilon test.

Stream placement draws candidates speculatively: the random stream is fixed, so the draws of the
next tries are made on a copy, their heights computed together, and the real stream advanced by
exactly the draws the game would have made up to the first success.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from worldgen.biomes import F32Array, is_deep_north
from worldgen.rivergrid import PointSink
from worldgen.unity_random import UnityRandom

F32 = np.float32
F64 = np.float64
Vec = tuple[float, float]
_EPS_SQ = float(F32(9.9999994396249292e-11))
_TWO_PI = float(F32(6.2831854820251465))


def _r(v: float) -> float:
    """Round a double to float32 (kept as a Python float)."""
    return float(F32(v))


def _eq(a: Vec, b: Vec) -> bool:
    """``Vector2 ==``: squared float distance below 1e-10."""
    dx, dy = _r(a[0] - b[0]), _r(a[1] - b[1])
    return _r(_r(dx * dx) + _r(dy * dy)) < _EPS_SQ


def _dist(a: Vec, b: Vec) -> float:
    """``Vector2.Distance``: float differences, squares and sum, then ``(float)Math.Sqrt``."""
    dx, dy = _r(a[0] - b[0]), _r(a[1] - b[1])
    return _r(math.sqrt(_r(_r(dx * dx) + _r(dy * dy))))


def _normalized(a: Vec, b: Vec) -> Vec:
    """``(b - a).normalized``: divide by the float magnitude when it is above 1e-5."""
    dx, dy = _r(b[0] - a[0]), _r(b[1] - a[1])
    mag = _r(math.sqrt(_r(_r(dx * dx) + _r(dy * dy))))
    if mag > _r(1e-5):
        return _r(dx / mag), _r(dy / mag)
    return 0.0, 0.0


def _mid(a: Vec, b: Vec) -> Vec:
    """``(a + b) * 0.5f``."""
    return _r(_r(a[0] + b[0]) * 0.5), _r(_r(a[1] + b[1]) * 0.5)


@dataclass(frozen=True)
class River:
    """``WorldGenerator.River``: ends, centre, widths and curve, all float32 (metres)."""

    p0: Vec
    p1: Vec
    center: Vec
    width_min: float
    width_max: float
    curve_width: float
    curve_wavelength: float

    def as_dict(self) -> dict[str, object]:
        return {"p0": list(self.p0), "p1": list(self.p1), "center": list(self.center),
                "width_min": self.width_min, "width_max": self.width_max,
                "curve_width": self.curve_width, "curve_wavelength": self.curve_wavelength}


def _river(p0: Vec, p1: Vec, center: Vec, wmin: float, wmax: float) -> River:
    length = _dist(p0, p1)
    return River(p0, p1, center, wmin, wmax, _r(length / 15.0), _r(length / 20.0))


BaseHeight = Callable[[F32Array, F32Array], F32Array]
PregenHeight = Callable[[F32Array, F32Array, bool], F32Array]


MergePoints = Callable[[F32Array, float], list[Vec]]


def find_lakes(base: BaseHeight, merge: MergePoints | None = None) -> list[Vec]:
    """``FindLakes``: 157 x 157 points (z outer), in the world and base below 0.05, merged.

    ``merge`` is :func:`merge_points` unless given (the compiled
    :func:`worldgen.fastworld.merge_points_fast`, passed in by the caller so that this module
    does not import the one that imports it).
    """
    coords = np.arange(-10000.0, 10000.0 + 1, 128.0).astype(F32)[:157]
    zz, xx = np.meshgrid(coords, coords, indexing="ij")
    x, z = xx.ravel(), zz.ravel()
    mag = np.sqrt((x * x + z * z).astype(F64)).astype(F32)  # Vector2.magnitude
    inside = ~(mag > F32(10000.0))
    x, z = x[inside], z[inside]
    low = base(x, z) < F32(0.05)
    points = np.stack((x[low], z[low]), axis=1)
    return (merge or merge_points)(points, 800.0)


def merge_points(points: F32Array, radius: float) -> list[Vec]:
    """``MergePoints``: pop the first, absorb the nearest within ``radius`` (swap-remove)."""
    pts = np.array(points, dtype=F32).reshape(-1, 2)
    n = pts.shape[0]
    lim = F32(radius)
    out: list[Vec] = []
    while n > 0:
        v = pts[0].copy()
        pts[: n - 1] = pts[1:n]
        n -= 1
        while n > 0:
            dx = pts[:n, 0] - v[0]
            dy = pts[:n, 1] - v[1]
            sq = dx * dx + dy * dy
            d = np.sqrt(sq.astype(F64)).astype(F32)
            ok = ~(sq < F32(_EPS_SQ)) & (d < lim) & (d < F32(99999.0))
            if not ok.any():
                break
            i = int(np.flatnonzero(ok)[np.argmin(d[ok])])
            v = ((v + pts[i]) * F32(0.5)).astype(F32)
            pts[i] = pts[n - 1]
            n -= 1
        out.append((float(v[0]), float(v[1])))
    return out


def _river_allowed(base: BaseHeight, p0: Vec, p1: Vec, step: float, limit: float) -> bool:
    """``IsRiverAllowed``: no sample above ``limit``, and not all of them water (<= 0.05)."""
    length = _dist(p0, p1)
    d = _normalized(p0, p1)
    ss: list[float] = []
    s = step
    end = _r(length - step)
    while s <= end:
        ss.append(s)
        s = _r(s + step)
    if not ss:
        return False
    sv = np.array(ss, dtype=F32)
    qx = F32(p0[0]) + F32(d[0]) * sv
    qy = F32(p0[1]) + F32(d[1]) * sv
    b = base(qx, qy)
    if (b > F32(limit)).any():
        return False
    return bool((b > F32(0.05)).any())


class _Lakes:
    """The lakes with their pairwise Vector2 ``==`` and ``Distance`` (float32), computed once:
    every river end is a lake, so ``HaveRiver`` and ``FindRandomRiverEnd`` become lookups."""

    def __init__(self, lakes: list[Vec], base: BaseHeight) -> None:
        pts = np.array(lakes, dtype=F32).reshape(-1, 2)
        dx = pts[:, None, 0] - pts[None, :, 0]
        dy = pts[:, None, 1] - pts[None, :, 1]
        sq = dx * dx + dy * dy
        self.eq = sq < F32(_EPS_SQ)
        self.dist = np.sqrt(sq.astype(F64)).astype(F32)
        self.lakes = lakes
        self.base = base
        self._allowed: dict[tuple[int, int], bool] = {}
        self.a: list[int] = []
        self.b: list[int] = []

    def have_river(self, p: int, q: int | None = None) -> bool:
        """``HaveRiver(rivers, p)`` or, with ``q``, ``HaveRiver(rivers, p, q)`` (unordered)."""
        if not self.a:
            return False
        a, b = np.array(self.a), np.array(self.b)
        if q is None:
            return bool(self.eq[p, a].any() or self.eq[p, b].any())
        return bool(((self.eq[p, a] & self.eq[q, b]) | (self.eq[p, b] & self.eq[q, a])).any())

    def allowed(self, p: int, q: int) -> bool:
        """``IsRiverAllowed(p, q, 128, 0.4)``, remembered (a pure function of the pair)."""
        key = (p, q)
        if key not in self._allowed:
            self._allowed[key] = _river_allowed(self.base, self.lakes[p], self.lakes[q], 128.0,
                                                0.4)
        return self._allowed[key]

    def random_end(self, rng: UnityRandom, p: int, max_distance: float) -> int:
        """``FindRandomRiverEnd``: one int draw only when a candidate exists."""
        near = np.flatnonzero(~self.eq[p] & (self.dist[p] < F32(max_distance)))
        cands = [int(q) for q in near
                 if not self.have_river(p, int(q)) and self.allowed(p, int(q))]
        if not cands:
            return -1
        return cands[rng.range_int(0, len(cands))]


def place_rivers(base: BaseHeight, lakes: list[Vec], river_seed: int,
                 grid: PointSink) -> list[River]:
    """``PlaceRivers`` and its ``RenderRivers``, on the river seed's own random stream.

    The work list is a copy of the lakes that only ever loses its first entry, so its head is
    lake ``k`` after ``k`` removals.
    """
    rng = UnityRandom(river_seed)
    rivers: list[River] = []
    book = _Lakes(lakes, base)
    k = 0
    while len(lakes) - k > 1:
        i = book.random_end(rng, k, 2000.0)
        if i == -1 and not book.have_river(k):
            i = book.random_end(rng, k, 5000.0)
        if i != -1:
            p, q = lakes[k], lakes[i]
            wmax = rng.range_float(60.0, 100.0)
            wmin = rng.range_float(60.0, wmax)
            rivers.append(_river(p, q, _mid(p, q), wmin, wmax))
            book.a.append(k)
            book.b.append(i)
        else:
            k += 1
    render_rivers(rng, rivers, grid)
    return rivers


def render_rivers(rng: UnityRandom, rivers: list[River], grid: PointSink,
                  rule: int = 0) -> None:
    """``RenderRivers(rivers, rule)``: 0 all, 1 skip Deep North starts, 2 only those."""
    compiled = getattr(grid, "render_compiled", None)
    if compiled is not None:  # the compiled path renders the same points itself
        compiled(rng, rivers, rule)
        return
    xs: list[F32Array] = []
    ys: list[F32Array] = []
    rs: list[F32Array] = []
    for r in rivers:
        if rule:
            dn = bool(is_deep_north(np.array([r.p0[0]], F32), np.array([r.p0[1]], F32))[0])
            if (dn and rule == 1) or (not dn and rule == 2):
                continue
        step = _r(r.width_min / 8.0)
        d = _normalized(r.p0, r.p1)
        perp = (-d[1], d[0])
        length = _dist(r.p0, r.p1)
        ss: list[float] = []
        s = 0.0
        while s <= length:
            ss.append(s)
            s = _r(s + step)
        sv = np.array(ss, dtype=F64)
        t = (sv / r.curve_wavelength).astype(F32).astype(F64)
        off = (np.sin(t) * np.sin(t * 0.634119987487793) * np.sin(t * 0.3341200053691864)
               * r.curve_width).astype(F32)
        rad = np.array([rng.range_float(r.width_min, r.width_max) for _ in ss], dtype=F32)
        s32 = sv.astype(F32)
        px = (F32(r.p0[0]) + F32(d[0]) * s32) + F32(perp[0]) * off
        py = (F32(r.p0[1]) + F32(d[1]) * s32) + F32(perp[1]) * off
        xs.append(px)
        ys.append(py)
        rs.append(rad)
    if xs:
        grid.add_points(np.concatenate(xs), np.concatenate(ys), np.concatenate(rs))


STREAM_ATTEMPTS = 3000  # PlaceStreams tries this many streams
_CHUNKS = (6, 24, 70)  # speculative tries per height batch (100 in all)


def _speculate(rng: UnityRandom, draws_per_try: int, make: Callable[[list[float], int], Vec],
               test: Callable[[F32Array, F32Array], np.ndarray]) -> Vec | None:
    """Up to 100 tries, each ``draws_per_try`` float draws; the first passing point, or None.

    ``make(values, k)`` builds try ``k``'s point from its draws; ``test`` checks many points
    at once (and commits the river-weight queries of the tries that really happen).
    """
    done = 0
    for chunk in _CHUNKS:
        probe = UnityRandom()
        probe.state = rng.state
        states = []
        pts: list[Vec] = []
        for k in range(chunk):
            vals = [probe.range_float(*_RANGE[draws_per_try]) for _ in range(draws_per_try)]
            states.append(probe.state)
            pts.append(make(vals, done + k))
        arr = np.array(pts, dtype=F32)
        hit = test(arr[:, 0], arr[:, 1])
        first = int(np.argmax(hit)) if hit.any() else chunk
        rng.state = states[min(first, chunk - 1)]
        if first < chunk:
            return pts[first]
        done += chunk
    return None


_RANGE = {2: (-10000.0, 10000.0), 1: (0.0, _TWO_PI)}


def place_streams(pregen: PregenHeight, grid: PointSink, stream_seed: int,
                  deep_north: bool, commit: Callable[[F32Array, F32Array, bool, int], None]
                  ) -> list[River]:
    """``PlaceStreams(isDN)``: 3000 attempts, then ``RenderRivers`` (skip / only Deep North).

    ``pregen(x, y, riverPreGen)`` is ``GetPregenerationHeight`` of many points; ``commit(x, y,
    riverPreGen, k)`` records that the first ``k`` of them were really queried.
    """
    rng = UnityRandom(stream_seed)
    rpg = not deep_north
    streams: list[River] = []
    step = _r((200.0 - 80.0) / 100.0)  # FindStreamEndPoint: 200 m down to 80 m
    lengths = [200.0]
    for _k in range(100):
        lengths.append(_r(lengths[-1] - step))
    for _ in range(STREAM_ATTEMPTS):
        start = _speculate(rng, 2, lambda v, k: (v[0], v[1]),
                           _tester(pregen, commit, rpg, 26.0, 31.0))
        if start is None:
            continue
        sx, sy = start

        def end_point(v: list[float], k: int, sx: float = sx, sy: float = sy,
                      lengths: list[float] = lengths) -> Vec:
            cur = lengths[k + 1]
            return (_r(sx + _r(_r(math.sin(v[0])) * cur)),
                    _r(sy + _r(_r(math.cos(v[0])) * cur)))

        end = _speculate(rng, 1, end_point, _tester(pregen, commit, rpg, 36.0, 44.0))
        if end is None:
            continue
        c = _mid(start, end)
        cx, cy = np.array([c[0]], F32), np.array([c[1]], F32)
        mh = pregen(cx, cy, rpg)
        commit(cx, cy, rpg, 1)
        if not (mh[0] < F32(26.0)) and not (mh[0] > F32(44.0)):
            streams.append(_river(start, end, c, 20.0, 20.0))
    render_rivers(rng, streams, grid, rule=2 if deep_north else 1)
    return streams


def _tester(pregen: PregenHeight, commit: Callable[[F32Array, F32Array, bool, int], None],
            rpg: bool, lo: float, hi: float) -> Callable[[F32Array, F32Array], np.ndarray]:
    def test(x: F32Array, y: F32Array) -> np.ndarray:
        h = pregen(x, y, rpg)
        ok = (h > F32(lo)) & (h < F32(hi))
        first = int(np.argmax(ok)) + 1 if ok.any() else x.size
        commit(x, y, rpg, first)
        return ok

    return test
