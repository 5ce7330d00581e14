"""Unity's ``Mathf.PerlinNoise(float, float)``, bit-exact in float32, vectorised with numpy.

Transcribed from the disassembly of ``PerlinNoise::Noise`` / ``NoiseNormalized`` in
``UnityPlayer.dll`` 6000.0.75f1 as published in Valheim-SeedLab's spec 03 (and checked there
against 398 816 samples of a real world). Differences from textbook Perlin that all matter:

* both inputs are folded with ``abs`` first (the noise is even in each axis);
* Ken Perlin's 3-D reference permutation and 12-gradient switch with ``z = 0``;
* the result is normalised as ``(n + 0.69f) / 1.483f`` with a real division, not a reciprocal.

Every operation is a single float32 operation in the game's order, so numpy's IEEE float32
arithmetic reproduces it exactly (numpy never fuses multiply-adds).

Each gradient ``v + u`` is ``sx * x + sy * y`` with ``sx, sy`` in {-1, 0, 1}: the products are
exact, so one rounded addition gives the same float (up to the sign of a zero, which cannot
change any non-zero value downstream and never reaches the output, because ``0.69f`` is added).
That form lets :class:`NoiseTables` / :func:`perlin_block` evaluate the noise on a tensor grid
(one coordinate per column, one per row) from per-row and per-column precomputation plus a
couple of dozen float32 operations per grid point, with no hashing per point.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

F32 = np.float32
F32Array = npt.NDArray[np.float32]

_PERM256 = (
    151, 160, 137, 91, 90, 15, 131, 13, 201, 95, 96, 53, 194, 233, 7, 225,
    140, 36, 103, 30, 69, 142, 8, 99, 37, 240, 21, 10, 23, 190, 6, 148,
    247, 120, 234, 75, 0, 26, 197, 62, 94, 252, 219, 203, 117, 35, 11, 32,
    57, 177, 33, 88, 237, 149, 56, 87, 174, 20, 125, 136, 171, 168, 68, 175,
    74, 165, 71, 134, 139, 48, 27, 166, 77, 146, 158, 231, 83, 111, 229, 122,
    60, 211, 133, 230, 220, 105, 92, 41, 55, 46, 245, 40, 244, 102, 143, 54,
    65, 25, 63, 161, 1, 216, 80, 73, 209, 76, 132, 187, 208, 89, 18, 169,
    200, 196, 135, 130, 116, 188, 159, 86, 164, 100, 109, 198, 173, 186, 3, 64,
    52, 217, 226, 250, 124, 123, 5, 202, 38, 147, 118, 126, 255, 82, 85, 212,
    207, 206, 59, 227, 47, 16, 58, 17, 182, 189, 28, 42, 223, 183, 170, 213,
    119, 248, 152, 2, 44, 154, 163, 70, 221, 153, 101, 155, 167, 43, 172, 9,
    129, 22, 39, 253, 19, 98, 108, 110, 79, 113, 224, 232, 178, 185, 112, 104,
    218, 246, 97, 228, 251, 34, 242, 193, 238, 210, 144, 12, 191, 179, 162, 241,
    81, 51, 145, 235, 249, 14, 239, 107, 49, 192, 214, 31, 181, 199, 106, 157,
    184, 84, 204, 176, 115, 121, 50, 45, 127, 4, 150, 254, 138, 236, 205, 93,
    222, 114, 67, 29, 24, 72, 243, 141, 128, 195, 78, 66, 215, 61, 156, 180,
)

# The doubled table, exactly as the 512 int32 in UnityPlayer.dll.
PERM = np.array(_PERM256 + _PERM256, dtype=np.int32)

NORM_ADD = F32(0.69)  # 0x3F30A3D7
NORM_DIV = F32(1.483)  # 0x3FBDD2F2
_ONE = F32(1.0)


def _gradient_signs() -> tuple[F32Array, F32Array]:
    """Per hash value, the (x, y) coefficients of the reference ``grad(hash, x, y, 0)``."""
    sx = np.zeros(256, dtype=np.float32)
    sy = np.zeros(256, dtype=np.float32)
    for h in range(256):
        low = h & 15
        u_is_x = low < 8
        if low < 4:
            v_axis = "y"
        elif low in (12, 14):
            v_axis = "x"
        else:
            v_axis = ""
        u_sign = -1.0 if h & 1 else 1.0
        v_sign = -1.0 if h & 2 else 1.0
        if u_is_x:
            sx[h] += u_sign
        else:
            sy[h] += u_sign
        if v_axis == "x":
            sx[h] += v_sign
        elif v_axis == "y":
            sy[h] += v_sign
    return sx, sy


GRAD_X, GRAD_Y = _gradient_signs()


def fade(t: F32Array) -> F32Array:
    """``(((t*6)-15)*t+10) * ((t*t)*t)`` in that grouping, float32."""
    a = t * F32(6.0)
    a -= F32(15.0)
    a *= t
    a += F32(10.0)
    t3 = t * t
    t3 *= t
    a *= t3
    return a


def perlin_noise(x: npt.ArrayLike, y: npt.ArrayLike) -> F32Array:
    """``Mathf.PerlinNoise`` at float32 points (arrays broadcast together); the reference form."""
    xa = np.abs(np.asarray(x, dtype=np.float32))
    ya = np.abs(np.asarray(y, dtype=np.float32))
    xa, ya = np.broadcast_arrays(xa, ya)
    ix = xa.astype(np.int32)  # cvttss2si; non-negative, so this is floor
    iy = ya.astype(np.int32)
    cx = ix & 255
    cy = iy & 255
    fx = xa - ix.astype(np.float32)
    fy = ya - iy.astype(np.float32)
    u = fade(np.minimum(_ONE, fx))
    v = fade(np.minimum(_ONE, fy))
    fx1 = fx - _ONE
    fy1 = fy - _ONE
    a = PERM[cx] + cy
    b = PERM[cx + 1] + cy
    h00 = PERM[PERM[a]]
    h01 = PERM[PERM[a + 1]]
    h10 = PERM[PERM[b]]
    h11 = PERM[PERM[b + 1]]
    g00 = GRAD_X[h00] * fx + GRAD_Y[h00] * fy
    g10 = GRAD_X[h10] * fx1 + GRAD_Y[h10] * fy
    g01 = GRAD_X[h01] * fx + GRAD_Y[h01] * fy1
    g11 = GRAD_X[h11] * fx1 + GRAD_Y[h11] * fy1
    l1 = (g11 - g01) * u + g01
    l0 = (g10 - g00) * u + g00
    n = (l1 - l0) * v + l0
    out: F32Array = (n + NORM_ADD) / NORM_DIV
    return out


def perlin_scalar(x: float, y: float) -> float:
    """``Mathf.PerlinNoise`` of one point, as a Python float holding the exact float32."""
    return float(perlin_noise(np.float32(x), np.float32(y)))


class PerlinAxis:
    """Everything about one noise axis that depends only on that axis' coordinates.

    ``cell`` (the 0-255 lattice index), the fraction ``f``, ``f - 1`` and the fade weight are
    computed once per column (or row) instead of once per grid point; ``cells`` are the distinct
    cell values and ``cell_index`` maps each coordinate to its position in ``cells``.
    """

    __slots__ = ("cell", "cell_index", "cells", "f", "f1", "f_pair", "w")

    def __init__(self, coords: npt.ArrayLike) -> None:
        a = np.abs(np.asarray(coords, dtype=np.float32).ravel())
        i = a.astype(np.int32)
        self.cell = (i & 255).astype(np.int32)
        self.f = a - i.astype(np.float32)
        self.f1 = self.f - _ONE
        self.f_pair = np.stack((self.f, self.f1))
        self.w = fade(np.minimum(_ONE, self.f))
        cells, index = np.unique(self.cell, return_inverse=True)
        self.cells = cells.astype(np.int32)
        self.cell_index = index.astype(np.intp).ravel()


class NoiseTables:
    """One noise field on a tensor grid: the column terms of every gradient, per row cell.

    For a row cell ``cy`` and a column the corner hashes are fixed, so each gradient is
    ``g = a + s * f(row)`` with ``a = sx * fx`` (or ``sx * (fx - 1)``) and ``s = sy`` depending
    only on (row cell, column), and ``f`` = ``fy`` or ``fy - 1``. The two corners on the far row
    edge of cell ``cy`` hash exactly like the near corners of cell ``cy + 1`` (``A + 1`` for
    ``cy`` is ``A`` for ``cy + 1``; the doubled permutation makes 255 + 1 wrap to 0), so one
    table of near-corner terms over the row cells and their successors serves both edges.
    :func:`perlin_block` copies table rows out instead of hashing per point.
    """

    __slots__ = ("cols", "far_row", "near_row", "rows", "table")

    def __init__(self, col_coords: npt.ArrayLike, row_coords: npt.ArrayLike,
                 buffer: F32Array | None = None, rows_used: slice | None = None) -> None:
        """``buffer``, if large enough, is used for the table (saves page faults per seed);
        ``rows_used`` limits the table to the row cells of those rows (others are never asked).
        """
        self.cols = PerlinAxis(col_coords)
        self.rows = PerlinAxis(row_coords)
        cells = self.rows.cells
        used = cells
        if rows_used is not None:
            used = np.unique(self.rows.cell[rows_used])
        ext = np.unique(np.concatenate((used, (used + 1) & 255)))
        # Row cells outside ``rows_used`` map to a clipped (wrong) index: never dereferenced.
        last = max(ext.size - 1, 0)
        self.near_row = np.minimum(np.searchsorted(ext, cells), last).astype(np.intp)
        self.far_row = np.minimum(np.searchsorted(ext, (cells + 1) & 255), last).astype(np.intp)
        ux, col_index = np.unique(self.cols.cell, return_inverse=True)
        col_index = col_index.astype(np.intp).ravel()
        shape = (4, ext.size, col_index.size)
        need = shape[0] * shape[1] * shape[2]
        if buffer is not None and buffer.size >= need:
            table = buffer[:need].reshape(shape)
        else:
            table = np.empty(shape, dtype=np.float32)
        # Hashes per (distinct column cell, row cell); spreading them to the columns by taking
        # whole rows of the transposed table and transposing once is faster than a 2-D gather.
        a = PERM[ux][:, None] + ext[None, :]
        b = PERM[ux + 1][:, None] + ext[None, :]
        for x, (h, fx) in enumerate(((PERM[PERM[a]], self.cols.f),
                                     (PERM[PERM[b]], self.cols.f1))):
            np.copyto(table[x], np.take(GRAD_Y[h], col_index, axis=0).T)  # s
            ax = np.take(GRAD_X[h], col_index, axis=0)
            ax *= fx[:, None]
            np.copyto(table[2 + x], ax.T)  # a
        # per extended row cell: s for x0, s for x1, a for x0, a for x1
        self.table = table


class BlockScratch:
    """Reusable float32 buffers for :func:`perlin_block` (no allocation per call).

    Each call takes contiguous views of the first elements: numpy's loops over strided or
    broadcast-along-a-row operands cost several times more per element than over contiguous
    ones (broadcasting along a leading axis is fine).
    """

    __slots__ = ("fy", "terms", "u")

    def __init__(self, cells: int) -> None:
        self.terms = np.empty(8 * cells, dtype=np.float32)
        self.fy = np.empty(2 * cells, dtype=np.float32)
        self.u = np.empty(cells, dtype=np.float32)

    def views(self, rows: int, cols: int) -> tuple[F32Array, F32Array, F32Array]:
        """``(8, rows, cols)`` terms, ``(2, rows, cols)`` row fractions, ``(rows, cols)``."""
        n = rows * cols
        return (self.terms[: 8 * n].reshape(8, rows, cols),
                self.fy[: 2 * n].reshape(2, rows, cols), self.u[:n].reshape(rows, cols))


def perlin_block(field: NoiseTables, r0: int, r1: int, c0: int, c1: int, out: F32Array,
                 scratch: BlockScratch) -> None:
    """Noise at the grid rows ``[r0, r1)`` x columns ``[c0, c1)`` into ``out``.

    ``out`` has shape ``(r1 - r0, c1 - c0)``. Bit-identical to :func:`perlin_noise` at the same
    (column coordinate, row coordinate) pairs: the same float32 operations in the same order,
    done for the four corners (and both lerps along x) at once on stacked arrays.
    """
    rows, table = field.rows, field.table
    k, w = r1 - r0, c1 - c0
    terms, fy, u = scratch.views(k, w)
    index = rows.cell_index
    # terms[kind * 4 + x * 2 + y]: kind 0 = s, 1 = a; x, y = corner offsets
    near, far = terms[0::2], terms[1::2]
    ra = r0
    while ra < r1:  # copy the table rows of each stretch of rows sharing a row cell
        cy = index[ra]
        rb = ra + 1
        while rb < r1 and index[rb] == cy:
            rb += 1
        np.copyto(near[:, ra - r0:rb - r0], table[:, field.near_row[cy], None, c0:c1])
        np.copyto(far[:, ra - r0:rb - r0], table[:, field.far_row[cy], None, c0:c1])
        ra = rb
    np.copyto(fy, rows.f_pair[:, r0:r1, None])  # [fy, fy - 1]
    np.copyto(u, field.cols.w[c0:c1])
    g = terms[:4].reshape(2, 2, k, w)  # [x][y]
    g *= fy  # g = s * f + a, f = fy (y = 0) or fy - 1 (y = 1)
    g += terms[4:].reshape(2, 2, k, w)
    g0, g1 = g  # g0 = [g00, g01], g1 = [g10, g11]
    g1 -= g0  # [l0, l1] = (g1 - g0) * u + g0
    g1 *= u
    g1 += g0
    l0, l1 = g1
    l1 -= l0  # n = (l1 - l0) * v + l0
    v = u
    np.copyto(v, rows.w[r0:r1, None])
    l1 *= v
    l1 += l0
    l1 += NORM_ADD
    np.divide(l1, NORM_DIV, out=out)
