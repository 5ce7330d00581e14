"""The river-point grid and ``GetRiverWeight`` with its one-entry cache (Valheim 1.0.15).

``RenderRivers`` drops points along each river into 64 m cells (``AddRiverPoint``); a height
query reads the points of its own cell (``GetWeight``: a float sum in the cell's point order).
``GetRiverWeight`` caches the last cell it looked up *and that cell's array object*; the renders
replace a cell's array without clearing the cache, so the first queries after a render that land
in the cached cell still see the old array (Valheim-SeedLab spec 01, section 4.7). The game is
single-threaded here, so the cache is a plain (cell, array) pair, replicated exactly.

Points are float32; every Vector2 operation is a float operation, as in Unity.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from worldgen.biomes import BoolArray, F32Array
from worldgen.terrain import RiverWeights

F32 = np.float32
F64 = np.float64
Cell = tuple[int, int]
_NO_CELL: Cell = (-999999, -999999)
_GRID = 64.0


class PointSink(Protocol):
    """Where ``RenderRivers`` puts its points: :class:`RiverGrid` or the compiled path's grid."""

    def add_points(self, px: F32Array, py: F32Array, r: F32Array) -> None: ...


@dataclass(frozen=True)
class CellPoints:
    """One cell's ``RiverPoint[]``: position, radius ``w`` and ``w2 = (float)(w * w)``."""

    x: F32Array
    y: F32Array
    w: F32Array
    w2: F32Array


def river_cells(wx: F32Array, wy: F32Array) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """``GetRiverGrid``: ``FloorToInt((float)((wx + 32.0) / 64.0))`` per axis."""
    gx = np.floor(((wx.astype(F64) + 32.0) / _GRID).astype(F32).astype(F64)).astype(np.int64)
    gy = np.floor(((wy.astype(F64) + 32.0) / _GRID).astype(F32).astype(F64)).astype(np.int64)
    return gx, gy


def get_weight(pts: CellPoints, qx: F32Array, qy: F32Array) -> tuple[F32Array, F32Array]:
    """``GetWeight`` of query points that all read the same ``RiverPoint[]``."""
    weight = np.zeros(qx.shape, dtype=F32)
    acc = np.zeros(qx.shape, dtype=F32)
    wsum = np.zeros(qx.shape, dtype=F32)
    for i in range(pts.x.size):
        dx = pts.x[i] - qx
        dy = pts.y[i] - qy
        d2 = dx * dx + dy * dy  # Vector2.SqrMagnitude: float
        inside = d2 < pts.w2[i]
        if not inside.any():
            continue
        wi = F64(pts.w[i])
        d = np.sqrt(d2.astype(F64)).astype(F32)
        w = (1.0 - d.astype(F64) / wi).astype(F32)
        np.copyto(weight, w, where=inside & (w > weight))
        np.copyto(acc, (acc.astype(F64) + wi * w.astype(F64)).astype(F32), where=inside)
        np.copyto(wsum, (wsum.astype(F64) + w.astype(F64)).astype(F32), where=inside)
    pos = wsum > 0
    ratio = np.divide(acc.astype(F64), wsum.astype(F64), out=np.zeros(qx.shape), where=pos)
    width = np.where(pos, ratio.astype(F32), F32(0.0)).astype(F32)
    return weight, width


class RiverGrid:
    """``m_riverPoints`` plus the ``GetRiverWeight`` cache state."""

    def __init__(self) -> None:
        self.cells: dict[Cell, CellPoints] = {}
        self.cache_cell: Cell = _NO_CELL
        self.cache_points: CellPoints | None = None

    def add(self, pending: dict[Cell, CellPoints]) -> None:
        """The end of ``RenderRivers``: existing points first, a new array per touched cell."""
        for key, new in pending.items():
            old = self.cells.get(key)
            if old is None:
                self.cells[key] = new
            else:
                self.cells[key] = CellPoints(*(np.concatenate((a, b)) for a, b in
                                               ((old.x, new.x), (old.y, new.y), (old.w, new.w),
                                                (old.w2, new.w2))))

    def add_points(self, px: F32Array, py: F32Array, r: F32Array) -> None:
        """Render a sequence of river points (``RenderRivers`` after its loop)."""
        self.add(pending_points(px, py, r))

    def weights(self, wx: F32Array, wy: F32Array, active: BoolArray) -> RiverWeights:
        """``GetRiverWeight`` at flat points queried in order; only ``active`` ones query.

        Pure: the cache state is only read (see :meth:`commit`). Queries in the cached cell
        before the first query elsewhere read the cached array; all others read the grid.
        """
        n = wx.size
        weight = np.zeros(n, dtype=F32)
        width = np.zeros(n, dtype=F32)
        idx = np.flatnonzero(active)
        if idx.size == 0 or (not self.cells and self.cache_points is None):
            return RiverWeights(weight, width)
        gx, gy = river_cells(wx[idx], wy[idx])
        in_cached = (gx == self.cache_cell[0]) & (gy == self.cache_cell[1])
        lead = int(np.argmin(in_cached)) if not in_cached.all() else idx.size
        if lead and self.cache_points is not None:
            q = idx[:lead]
            weight[q], width[q] = get_weight(self.cache_points, wx[q], wy[q])
        rest = idx[lead:]
        if rest.size:
            keys = (gx[lead:] << 32) ^ (gy[lead:] & 0xFFFFFFFF)
            order = np.argsort(keys, kind="stable")
            ukeys, starts = np.unique(keys[order], return_index=True)
            bounds = [*starts.tolist(), order.size]
            for k in range(ukeys.size):
                members = order[bounds[k]:bounds[k + 1]]
                cell = (int(gx[lead + members[0]]), int(gy[lead + members[0]]))
                pts = self.cells.get(cell)
                if pts is None:
                    continue
                q = rest[members]
                weight[q], width[q] = get_weight(pts, wx[q], wy[q])
        return RiverWeights(weight, width)

    def commit(self, wx: F32Array, wy: F32Array, active: BoolArray) -> None:
        """Advance the cache as if the ``active`` queries (in order) had been made."""
        idx = np.flatnonzero(active)
        if idx.size == 0:
            return
        gx, gy = river_cells(wx[idx], wy[idx])
        elsewhere = (gx != self.cache_cell[0]) | (gy != self.cache_cell[1])
        if elsewhere.any():
            cell = (int(gx[-1]), int(gy[-1]))
            self.cache_cell = cell
            self.cache_points = self.cells.get(cell)


def inside_river_grid(cx: npt.NDArray[np.int64], cy: npt.NDArray[np.int64], px: F32Array,
                      py: F32Array, r: F32Array) -> BoolArray:
    """``InsideRiverGrid``: the point within ``r + 32`` of the cell centre on both axes."""
    ccx = (cx.astype(F64) * _GRID).astype(F32)
    ccy = (cy.astype(F64) * _GRID).astype(F32)
    lim = (r.astype(F64) + 32.0).astype(F32)
    out: BoolArray = (np.abs(px - ccx) < lim) & (np.abs(py - ccy) < lim)
    return out


def expand_points(px: F32Array, py: F32Array, r: F32Array
                  ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.intp]]:
    """``AddRiverPoint`` for a sequence of points: (cell x, cell y, point index) in the order
    the game appends them, each point's cells y outer, x inner over ``+-CeilToInt(r / 64)``."""
    gx, gy = river_cells(px, py)
    n = np.ceil((r.astype(F64) / _GRID).astype(F32).astype(F64)).astype(np.int64)
    span = int(n.max()) if n.size else 0
    offs = np.arange(-span, span + 1)
    dy, dx = np.meshgrid(offs, offs, indexing="ij")  # y outer, x inner
    tdx = np.tile(dx.ravel(), px.size)
    tdy = np.tile(dy.ravel(), px.size)
    pi = np.repeat(np.arange(px.size), dx.size)
    cx = gx[pi] + tdx
    cy = gy[pi] + tdy
    keep = (np.abs(tdx) <= n[pi]) & (np.abs(tdy) <= n[pi])
    keep &= inside_river_grid(cx, cy, px[pi], py[pi], r[pi])
    return cx[keep], cy[keep], pi[keep]


def pending_points(px: F32Array, py: F32Array, r: F32Array) -> dict[Cell, CellPoints]:
    """``RenderRivers``' pending dictionary: each touched cell's new points, in order."""
    cx, cy, pi = expand_points(px, py, r)
    keys = (cx << 32) ^ (cy & 0xFFFFFFFF)
    order = np.argsort(keys, kind="stable")
    ukeys, starts = np.unique(keys[order], return_index=True)
    bounds = [*starts.tolist(), order.size]
    w2 = (r.astype(F64) * r.astype(F64)).astype(F32)
    out: dict[Cell, CellPoints] = {}
    for k in range(ukeys.size):
        sel = pi[order[bounds[k]:bounds[k + 1]]]
        first = order[bounds[k]]
        out[(int(cx[first]), int(cy[first]))] = CellPoints(px[sel], py[sel], r[sel], w2[sel])
    return out
