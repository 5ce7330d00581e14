"""``RenderRivers``' loop compiled: the river points of a list of rivers, in the game's order.

The same statements as :func:`worldgen.pregen.render_rivers` (the reference): per river a float
step ``widthMin / 8``, the float ``normalized`` direction, a triple-sine offset in double and one
``Random.Range(widthMin, widthMax)`` per step; rivers whose start fails the rule (1: skip Deep
North starts, 2: only those) are skipped without a draw.
"""

from __future__ import annotations

import math

import numpy as np

from worldgen.jitcore import njit, r32, world_angle
from worldgen.jitworld import range_float

_EPS = float(np.float32(1e-5))


@njit
def _is_deep_north(x: float, y: float) -> bool:
    a = r32(world_angle(x, y) * 100.0)
    yy = r32(y + 4000.0)
    mag = r32(math.sqrt(r32(r32(x * x) + r32(yy * yy))))
    return mag > r32(12000.0 + a)


@njit
def render_count(rivers: np.ndarray, rule: int, include: np.ndarray) -> int:
    """How many points the rivers will yield (and which rivers the rule keeps)."""
    total = 0
    for k in range(rivers.shape[0]):
        include[k] = True
        if rule != 0:
            dn = _is_deep_north(rivers[k, 0], rivers[k, 1])
            if (dn and rule == 1) or (not dn and rule == 2):
                include[k] = False
                continue
        step = r32(rivers[k, 4] / 8.0)
        dx = r32(rivers[k, 2] - rivers[k, 0])
        dy = r32(rivers[k, 3] - rivers[k, 1])
        length = r32(math.sqrt(r32(r32(dx * dx) + r32(dy * dy))))
        s = 0.0
        while s <= length:
            total += 1
            s = r32(s + step)
    return total


@njit
def render(rivers: np.ndarray, include: np.ndarray, rng: np.ndarray, out: np.ndarray) -> None:
    """Rows of ``rivers``: p0x, p0y, p1x, p1y, widthMin, widthMax, curveWidth, wavelength.

    ``out`` rows: x, y, radius (float32 values), in order; ``rng`` advances in place.
    """
    n = 0
    for k in range(rivers.shape[0]):
        if not include[k]:
            continue
        p0x = rivers[k, 0]
        p0y = rivers[k, 1]
        wmin = rivers[k, 4]
        wmax = rivers[k, 5]
        step = r32(wmin / 8.0)
        dx = r32(rivers[k, 2] - p0x)
        dy = r32(rivers[k, 3] - p0y)
        mag = r32(math.sqrt(r32(r32(dx * dx) + r32(dy * dy))))
        if mag > _EPS:
            dx = r32(dx / mag)
            dy = r32(dy / mag)
        else:
            dx = 0.0
            dy = 0.0
        length = mag
        s = 0.0
        while s <= length:
            t = r32(s / rivers[k, 7])
            off = r32(math.sin(t) * math.sin(t * 0.634119987487793)
                      * math.sin(t * 0.3341200053691864) * rivers[k, 6])
            rad = range_float(rng, wmin, wmax)
            out[n, 0] = r32(r32(p0x + r32(dx * s)) + r32(-dy * off))
            out[n, 1] = r32(r32(p0y + r32(dy * s)) + r32(dx * off))
            out[n, 2] = rad
            n += 1
            s = r32(s + step)
