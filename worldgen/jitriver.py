"""The compiled river-point grid: one immutable layer per ``RenderRivers``, and ``GetRiverWeight``.

Valheim 1.0.15 keeps ``m_riverPoints``, a dictionary from 64 m cell to ``RiverPoint[]``; each
``RenderRivers`` replaces a touched cell's array by its old points followed by the new ones
(``AddRiverPoint``), and ``GetRiverWeight`` caches the last cell it looked up *and the array it
found* (Valheim-SeedLab spec 01, section 4.7; the numpy reference is :mod:`worldgen.rivergrid`).

Here every render becomes one *layer* that is never modified afterwards: a cell's array is the
concatenation of its points in layers 0, 1, ... in order, so ``GetWeight`` (a float sum in the
array's order) walks the layers in order and carries its sums across them, which is the same
sequence of float operations as over the merged array. The cache is ``state`` = [cell key,
number of layers that existed when the cell was looked up]: a later render that touches the
cached cell makes the game's cached array stale, and reading only the older layers is exactly
that stale array. So a render costs only its own points (no re-sorting of the rivers already
drawn), and pre-generation builds the big river layer once.

Layer layout (built by :func:`build_layer` after the previous layers in the same arrays, whose
spare capacity :class:`worldgen.fastworld.FastTerrain` reserves): ``meta[l]`` = (gx0, gy0, nx,
ny, map offset, cell-start offset, square-table offset, cell count), all into one int32 array
``idx``:

* a dense ``ny x nx`` map from cell (gx0 + ix, gy0 + iy) to its local id, -1 where empty;
* per cell, the range of its points in ``pts`` (float64 rows x, y, w, w2 = (float)(w * w),
  each value a float32), in the order the game appends them;
* per cell, 16 lists (a 4 x 4 table of 16 m squares) of the cell's points whose circle reaches
  the square (with a 1 m margin far above float rounding), in the cell's order: a query reads
  only its square's list, the others cannot pass ``d2 < w2``.

Written by hand (no library offers this game's cell order and cache rule); the tests hold it to
the numpy reference bit for bit.
"""

from __future__ import annotations

import math

import numpy as np

from worldgen.jitcore import njit, r32

META_COLS = 8
_MARGIN_M = 1.0  # far above float32 rounding of d2 at these distances
_M32 = 0xFFFFFFFF


@njit
def _expand(p: np.ndarray, gxs: np.ndarray, gys: np.ndarray, src: np.ndarray,
            count_only: bool) -> int:
    """``AddRiverPoint`` of each point in order: its cells y outer, x inner over
    ``+-CeilToInt(r / 64)``, kept when within ``r + 32`` of the cell centre on both axes.
    Returns the count, or fills (cell x, cell y, point index) in the game's order."""
    n = 0
    for i in range(p.shape[0]):
        x = p[i, 0]
        y = p[i, 1]
        r = p[i, 2]
        gx = math.floor(r32((x + 32.0) / 64.0))
        gy = math.floor(r32((y + 32.0) / 64.0))
        span = math.ceil(r32(r / 64.0))
        lim = r32(r + 32.0)
        for cy in range(gy - span, gy + span + 1):
            for cx in range(gx - span, gx + span + 1):
                dx = r32(x - r32(cx * 64.0))
                dy = r32(y - r32(cy * 64.0))
                if abs(dx) < lim and abs(dy) < lim:
                    if not count_only:
                        gxs[n] = cx
                        gys[n] = cy
                        src[n] = i
                    n += 1
    return n


@njit
def _square_mask(gx: int, gy: int, x: float, y: float, w: float) -> int:
    """The 16 m squares (bit sy * 4 + sx) of cell (gx, gy) that a circle of radius ``w``
    (plus the margin) around (x, y) reaches."""
    bits = 0
    reach2 = (w + _MARGIN_M) * (w + _MARGIN_M)
    for sy in range(4):
        y0 = gy * 64.0 - 32.0 + sy * 16.0
        dy = max(y0 - y, 0.0, y - (y0 + 16.0))
        dy2 = dy * dy
        if dy2 >= reach2:  # no square of this row can be reached
            continue
        for sx in range(4):
            x0 = gx * 64.0 - 32.0 + sx * 16.0
            dx = max(x0 - x, 0.0, x - (x0 + 16.0))
            if dx * dx + dy2 < reach2:
                bits |= 1 << (sy * 4 + sx)
    return bits


@njit
def build_layer(p: np.ndarray, idx: np.ndarray, idx_used: int, pts: np.ndarray, pts_used: int,
                meta: np.ndarray) -> tuple[int, int]:
    """One render's layer from its points ``p`` (rows x, y, radius, in render order), written
    after the used part of ``idx`` (int32) and ``pts`` (float64 rows), its row into ``meta``.

    Returns the used sizes of ``idx`` and ``pts`` with the layer; when either exceeds its
    array's capacity nothing is written (grow the arrays and call again).
    """
    m = _expand(p, np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.int64), True)
    gxs = np.empty(m, np.int64)
    gys = np.empty(m, np.int64)
    src = np.empty(m, np.int64)
    _expand(p, gxs, gys, src, False)
    meta[:] = 0
    meta[4] = idx_used
    meta[5] = idx_used
    meta[6] = idx_used
    if m == 0:
        return idx_used, pts_used
    if pts_used + m > pts.shape[0]:
        return idx_used + 1, pts_used + m  # no room: the idx estimate is only a lower bound
    gx0 = gxs.min()
    gy0 = gys.min()
    nx = gxs.max() - gx0 + 1
    ny = gys.max() - gy0 + 1
    count = np.zeros(nx * ny, np.int64)
    for k in range(m):
        count[(gys[k] - gy0) * nx + (gxs[k] - gx0)] += 1
    cell_of = np.full(nx * ny, -1, np.int64)
    ncell = 0
    for c in range(nx * ny):
        if count[c] > 0:
            cell_of[c] = ncell
            ncell += 1
    first = np.zeros(ncell + 1, np.int64)
    for c in range(nx * ny):
        if count[c] > 0:
            first[cell_of[c] + 1] = count[c]
    for c in range(ncell):
        first[c + 1] += first[c]
    # rows grouped by cell (raster order of cells), each cell's rows in the game's order
    masks = np.empty(m, np.int64)
    fill = first[:ncell].copy()
    sq_count = np.zeros(ncell * 16, np.int64)
    for k in range(m):
        c = cell_of[(gys[k] - gy0) * nx + (gxs[k] - gx0)]
        j = fill[c]
        fill[c] += 1
        i = src[k]
        w = p[i, 2]
        row = pts_used + j
        pts[row, 0] = p[i, 0]
        pts[row, 1] = p[i, 1]
        pts[row, 2] = w
        pts[row, 3] = r32(w * w)
        bits = _square_mask(gxs[k], gys[k], p[i, 0], p[i, 1], w)
        masks[j] = bits
        for sq in range(16):
            if (bits >> sq) & 1:
                sq_count[c * 16 + sq] += 1
    n_ent = sq_count.sum()
    cs_off = idx_used + nx * ny
    tab_off = cs_off + ncell + 1
    ent_off = tab_off + ncell * 16 + 1
    if ent_off + n_ent > idx.size:
        return ent_off + n_ent, pts_used + m
    for c in range(nx * ny):
        idx[idx_used + c] = cell_of[c]
    for c in range(ncell + 1):
        idx[cs_off + c] = pts_used + first[c]
    pos = np.empty(ncell * 16, np.int64)
    at = ent_off
    for t in range(ncell * 16):
        idx[tab_off + t] = at
        pos[t] = at
        at += sq_count[t]
    idx[tab_off + ncell * 16] = at
    for c in range(ncell):
        for j in range(first[c], first[c + 1]):
            bits = masks[j]
            for sq in range(16):
                if (bits >> sq) & 1:
                    idx[pos[c * 16 + sq]] = pts_used + j
                    pos[c * 16 + sq] += 1
    meta[0] = gx0
    meta[1] = gy0
    meta[2] = nx
    meta[3] = ny
    meta[5] = cs_off
    meta[6] = tab_off
    meta[7] = ncell
    return at, pts_used + m


@njit
def layer_cell(meta: np.ndarray, idx: np.ndarray, layer: int, gx: int, gy: int) -> int:
    """The local id of cell (gx, gy) in ``layer``, or -1 when the layer has no points there."""
    ix = gx - meta[layer, 0]
    iy = gy - meta[layer, 1]
    if ix < 0 or iy < 0 or ix >= meta[layer, 2] or iy >= meta[layer, 3]:
        return -1
    return int(idx[meta[layer, 4] + iy * meta[layer, 2] + ix])


@njit
def river_weight(meta: np.ndarray, idx: np.ndarray, pts: np.ndarray, state: np.ndarray,
                 wx: float, wy: float, out: np.ndarray) -> None:
    """``GetRiverWeight(wx, wy)`` into ``out`` = [weight, width], advancing the cache ``state``
    = [cached cell key, layers visible in the cached array]."""
    gx = math.floor(r32((wx + 32.0) / 64.0))
    gy = math.floor(r32((wy + 32.0) / 64.0))
    key = (gx << 32) ^ (gy & _M32)
    if key == state[0]:
        nl = state[1]
    else:
        nl = meta.shape[0]
        state[0] = key
        state[1] = nl
    weight = 0.0
    acc = 0.0
    wsum = 0.0
    if nl > 0:
        sx = min(3, max(0, math.floor((wx - (gx * 64.0 - 32.0)) / 16.0)))
        sy = min(3, max(0, math.floor((wy - (gy * 64.0 - 32.0)) / 16.0)))
        for layer in range(nl):
            c = layer_cell(meta, idx, layer, gx, gy)
            if c < 0:
                continue
            s = meta[layer, 6] + c * 16 + sy * 4 + sx
            for k in range(idx[s], idx[s + 1]):
                i = idx[k]
                dx = r32(pts[i, 0] - wx)
                dy = r32(pts[i, 1] - wy)
                d2 = r32(r32(dx * dx) + r32(dy * dy))
                if d2 < pts[i, 3]:
                    d = r32(math.sqrt(d2))
                    w = r32(1.0 - d / pts[i, 2])
                    if w > weight:
                        weight = w
                    acc = r32(acc + pts[i, 2] * w)
                    wsum = r32(wsum + w)
    out[0] = weight
    out[1] = r32(acc / wsum) if wsum > 0.0 else 0.0
