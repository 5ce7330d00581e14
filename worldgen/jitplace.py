"""``MergePoints`` and ``PlaceRivers``' loop compiled: the lakes, which lakes the rivers join, and
the rivers' widths (Valheim 1.0.15).

``MergePoints`` (:func:`worldgen.pregen.merge_points` is the reference): pop the head of the list,
then absorb the nearest point within the radius (float32 ``Distance``, the first in list order
on ties) into the running midpoint, swap-removing it, until none is left in reach. Here the list
is an array with a moving head (popping the head keeps the others' order) and the points sit in
1024 m buckets, so a search reads the 3 x 3 buckets around the midpoint instead of the whole
list; ties go to the smaller list position, as the game's linear scan does.

The same statements as :func:`worldgen.pregen.place_rivers` (the reference, which the tests
compare with this): the work list is the lakes in order and only ever loses its head, so its
head is lake ``k`` after ``k`` removals; ``FindRandomRiverEnd`` collects, in lake order, the
lakes not ``==`` the head (Unity's epsilon test), nearer than the limit (float32 ``Distance``),
not yet joined to it (``HaveRiver(rivers, p, q)``, either direction) and allowed
(``IsRiverAllowed(p, q, 128, 0.4)``: no base height above 0.4 every 128 m along the line, not
all of them water), then draws one ``Random.Range(0, n)`` only when there is a candidate.
``IsRiverAllowed`` is a pure function of the pair, so it is remembered.
"""

from __future__ import annotations

import math

import numpy as np

from worldgen.jitcore import base_height, njit, r32
from worldgen.jitworld import next_uint, range_float

_EPS_SQ = float(np.float32(9.9999994396249292e-11))
_FAR_SQ = 800.5 * 800.5  # sqrt at or above 800.5: never below the 800 m radius
_BUCKET_M = 1024.0  # above the radius, so the 3 x 3 buckets around a point cover its reach
_MIN_MAG = float(np.float32(1e-5))


@njit
def merge_points(x: np.ndarray, y: np.ndarray, radius: float, out: np.ndarray) -> int:
    """``MergePoints(points, radius)`` for ``radius`` <= 800 m: the merged points into ``out``
    rows, their count returned. ``x``, ``y`` hold float32 values."""
    n = x.size
    if n == 0:
        return 0
    x0 = x.min()
    y0 = y.min()
    nbx = int((x.max() - x0) // _BUCKET_M) + 1
    nby = int((y.max() - y0) // _BUCKET_M) + 1
    bucket = np.empty(n, np.int64)
    size = np.zeros(nbx * nby, np.int64)
    for i in range(n):
        b = int((y[i] - y0) // _BUCKET_M) * nbx + int((x[i] - x0) // _BUCKET_M)
        bucket[i] = b
        size[b] += 1
    start = np.zeros(nbx * nby + 1, np.int64)
    for b in range(nbx * nby):
        start[b + 1] = start[b] + size[b]
    members = np.empty(n, np.int64)
    slot = np.empty(n, np.int64)
    size[:] = 0
    for i in range(n):
        b = bucket[i]
        slot[i] = size[b]
        members[start[b] + size[b]] = i
        size[b] += 1
    order = np.arange(n)  # the list: order[head:head + live]
    pos = np.arange(n)  # each point's place in ``order``
    head = 0
    live = n
    m = 0
    while live > 0:
        v = order[head]
        _unbucket(v, bucket, start, size, members, slot)
        vx = x[v]
        vy = y[v]
        head += 1
        live -= 1
        while live > 0:
            best = -1
            best_d = 99999.0
            best_pos = n
            bx = int((vx - x0) // _BUCKET_M)
            by = int((vy - y0) // _BUCKET_M)
            for cy in range(max(0, by - 1), min(nby, by + 2)):
                for cx in range(max(0, bx - 1), min(nbx, bx + 2)):
                    b = cy * nbx + cx
                    for k in range(start[b], start[b] + size[b]):
                        i = members[k]
                        dx = r32(x[i] - vx)
                        dy = r32(y[i] - vy)
                        sq = r32(r32(dx * dx) + r32(dy * dy))
                        if sq < _EPS_SQ or sq >= _FAR_SQ:
                            continue
                        d = r32(math.sqrt(sq))
                        if d < radius and (d < best_d or (d == best_d and pos[i] < best_pos)):
                            best = i
                            best_d = d
                            best_pos = pos[i]
            if best < 0:
                break
            vx = r32(r32(vx + x[best]) * 0.5)
            vy = r32(r32(vy + y[best]) * 0.5)
            last = order[head + live - 1]
            order[best_pos] = last
            pos[last] = best_pos
            _unbucket(best, bucket, start, size, members, slot)
            live -= 1
        out[m, 0] = vx
        out[m, 1] = vy
        m += 1
    return m


@njit
def _unbucket(i: int, bucket: np.ndarray, start: np.ndarray, size: np.ndarray,
              members: np.ndarray, slot: np.ndarray) -> None:
    """Take point ``i`` out of its bucket (the bucket's last member takes its slot)."""
    b = bucket[i]
    last = members[start[b] + size[b] - 1]
    members[start[b] + slot[i]] = last
    slot[last] = slot[i]
    size[b] -= 1


@njit
def _allowed(offs: np.ndarray, mmd: float, ax: float, ay: float, bx: float, by: float) -> bool:
    """``IsRiverAllowed(a, b, 128, 0.4)`` with ``GetBaseHeight``, float32 Vector2 arithmetic."""
    dx = r32(bx - ax)
    dy = r32(by - ay)
    length = r32(math.sqrt(r32(r32(dx * dx) + r32(dy * dy))))
    if length > _MIN_MAG:
        nx = r32(dx / length)
        ny = r32(dy / length)
    else:
        nx = 0.0
        ny = 0.0
    s = 128.0
    end = r32(length - 128.0)
    wet_only = True
    while s <= end:
        b = base_height(offs[0], offs[1], mmd, r32(ax + r32(nx * s)), r32(ay + r32(ny * s)))
        if b > 0.4000000059604645:  # (float)0.4
            return False
        if b > 0.05000000074505806:  # (float)0.05
            wet_only = False
        s = r32(s + 128.0)
    return not wet_only


@njit
def _joined(eq: np.ndarray, ra: np.ndarray, rb: np.ndarray, nr: int, p: int, q: int) -> bool:
    """``HaveRiver(rivers, p)`` when ``q`` < 0, else ``HaveRiver(rivers, p, q)``."""
    for r in range(nr):
        if q < 0:
            if eq[p, ra[r]] or eq[p, rb[r]]:
                return True
        elif (eq[p, ra[r]] and eq[q, rb[r]]) or (eq[p, rb[r]] and eq[q, ra[r]]):
            return True
    return False


@njit
def _random_end(offs: np.ndarray, mmd: float, lakes: np.ndarray, eq: np.ndarray,
                dist: np.ndarray, memo: np.ndarray, ra: np.ndarray, rb: np.ndarray, nr: int,
                rng: np.ndarray, p: int, max_distance: float, cands: np.ndarray) -> int:
    """``FindRandomRiverEnd``: a lake index, or -1 (then without a draw)."""
    n = 0
    for q in range(lakes.shape[0]):
        if eq[p, q] or not dist[p, q] < max_distance or _joined(eq, ra, rb, nr, p, q):
            continue
        if memo[p, q] < 0:
            memo[p, q] = 1 if _allowed(offs, mmd, lakes[p, 0], lakes[p, 1], lakes[q, 0],
                                       lakes[q, 1]) else 0
        if memo[p, q] == 1:
            cands[n] = q
            n += 1
    if n == 0:
        return -1
    return int(cands[next_uint(rng) % n])


@njit
def place_rivers(offs: np.ndarray, mmd: float, lakes: np.ndarray, rng: np.ndarray,
                 out: np.ndarray) -> int:
    """The rivers of ``PlaceRivers`` as rows (start lake, end lake, widthMin, widthMax).

    ``lakes`` (n, 2) float32 values; ``rng`` the river seed's random state, advanced in place.
    """
    n = lakes.shape[0]
    eq = np.zeros((n, n), np.bool_)
    dist = np.zeros((n, n))
    for p in range(n):
        for q in range(n):
            dx = r32(lakes[p, 0] - lakes[q, 0])
            dy = r32(lakes[p, 1] - lakes[q, 1])
            sq = r32(r32(dx * dx) + r32(dy * dy))
            eq[p, q] = sq < _EPS_SQ
            dist[p, q] = r32(math.sqrt(sq))
    memo = np.full((n, n), -1, np.int8)
    ra = np.zeros(out.shape[0], np.int64)
    rb = np.zeros(out.shape[0], np.int64)
    cands = np.zeros(n, np.int64)
    nr = 0
    k = 0
    while n - k > 1:
        i = _random_end(offs, mmd, lakes, eq, dist, memo, ra, rb, nr, rng, k, 2000.0, cands)
        if i == -1 and not _joined(eq, ra, rb, nr, k, -1):
            i = _random_end(offs, mmd, lakes, eq, dist, memo, ra, rb, nr, rng, k, 5000.0,
                            cands)
        if i != -1:
            wmax = range_float(rng, 60.0, 100.0)
            wmin = range_float(rng, 60.0, wmax)
            ra[nr] = k
            rb[nr] = i
            out[nr, 0] = k
            out[nr, 1] = i
            out[nr, 2] = wmin
            out[nr, 3] = wmax
            nr += 1
        else:
            k += 1
    return nr
