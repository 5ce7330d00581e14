"""The two ``FastNoise`` functions Valheim's AshLands height calls, in double, bit for bit.

``WorldGenerator.m_noiseGen`` is Jordan Peck's FastNoise (the C# "FastNoise.cs", MIT licence,
compiled with ``FN_USE_DOUBLES``), seeded 0 on every world, frequency 0.01, 2 octaves, gain 0.5,
lacunarity 2, FBM, cellular Euclidean / Distance, jitter ``(double)0.45f`` (Valheim-SeedLab spec
01, sections 1.4 and 7.2). Only ``GetCellular(x, y)`` and ``GetSimplexFractal(x, y)`` are
reachable. Written here because FastNoise Lite (the maintained successor, with Python bindings)
computes in float with other tables and constants, so no library reproduces these values.

``CELL_2D`` is FastNoise's 256-entry table of float constants (stored as their bit patterns,
widened to double at use, as the double build does); everything else is integer hashing and
double arithmetic in the library's order. Vectorised over numpy arrays of any shape.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

F64Array = npt.NDArray[np.float64]
I64Array = npt.NDArray[np.int64]

# FastNoise CELL_2D (x, y pairs), float32 bit patterns. Copyright (c) 2017 Jordan Peck, MIT.
_CELL_2D_BITS = (
    0xBE8A405A, 0xBF767D9B, 0x3EC5CA54, 0xBF6C2065, 0x3D360FBA, 0xBF7FBF3B, 0xBF19689A, 0xBF4CF184,
    0xBF482C6F, 0x3F1F9518, 0x3F724BAD, 0x3EA54608, 0xBF26C31D, 0xBF423B99, 0x3F7016C2, 0x3EB1B053,
    0xBF598BAE, 0xBF06F1AE, 0xBF6108EF, 0x3EF417B1, 0xBF646DCB, 0xBEE72374, 0xBEC27AF8, 0xBF6CD01A,
    0xBF7EC324, 0x3DC925AB, 0x3F45BE9D, 0xBF229521, 0x3F41E045, 0xBF272D42, 0xBF7E282C, 0xBDF54F3F,
    0xBD5A2E0C, 0x3F7FA2F6, 0x3F79B57A, 0xBE619E35, 0xBF443977, 0x3F2469FB, 0x3F7DDBE7, 0x3E042877,
    0xBF7EA474, 0x3DD2A338, 0xBF09B529, 0xBF57CE8E, 0x3F009586, 0xBF5D5D40, 0x3EE9767E, 0xBF63D650,
    0xBF5DAC7B, 0xBF000CBE, 0x3DB41CF3, 0xBF7F0211, 0xBF0152B9, 0x3F5CEEED, 0x3F467B46, 0xBF21AE99,
    0xBF3133A8, 0x3F38C20E, 0xBF04E80F, 0xBF5ACBE1, 0x3F65DA4E, 0xBEE16BE9, 0xBE2EC60F, 0x3F7C3E63,
    0xBF6F72A4, 0xBEB51DAE, 0xBF7FCE39, 0x3D1F9C5A, 0xBE938FCA, 0xBF752332, 0xBF7764C1, 0x3E83A46C,
    0xBF603FAA, 0xBEF6F849, 0xBF548F59, 0xBF0EAB1B, 0x3D514FA3, 0xBF7FAA60, 0xBF5B1828, 0xBF046A2C,
    0x3DCA7C7D, 0x3F7EBEE5, 0x3F6B3D23, 0x3EC9FA2C, 0xBE79CAC6, 0xBF784438, 0xBF4FE878, 0xBF155DB8,
    0xBF7DB501, 0x3E08BF45, 0x3F5967F3, 0xBF072B37, 0xBF78C6D4, 0xBE7188AE, 0x3F7EB4C3, 0x3DCDA5F7,
    0x3F1FC572, 0xBF4805D9, 0x3F29B47D, 0x3F3FAABA, 0xBF384100, 0x3F31B9D5, 0xBF507865, 0xBF149496,
    0x3DD60F22, 0xBF7E990A, 0xBDDA4D3A, 0xBF7E8AA0, 0x3EE43FDB, 0xBF65276C, 0x3DD8293D, 0x3F7E91EF,
    0xBF7E2781, 0x3DF57B7E, 0xBF555C1B, 0x3F0D782E, 0x3F695BBF, 0xBED2859C, 0x3F541C26, 0xBF0F5629,
    0x3F38C1F9, 0xBF3133BE, 0x3EFCF407, 0xBF5E9338, 0xBEBAFFB5, 0xBF6E508B, 0xBF783BAF, 0x3E7A525F,
    0x3DB6CB60, 0xBF7EFA6F, 0x3F091071, 0xBF583752, 0xBDD7C5BC, 0x3F7E9341, 0xBF7D30F8, 0x3E174540,
    0x3B9F1FF6, 0x3F7FFF3A, 0x3F7D1242, 0x3E1A72F4, 0x3F6DB994, 0xBEBDFA3E, 0xBF154F2D, 0xBF4FF2EA,
    0x3E9A60EE, 0x3F7415EE, 0xBF751F72, 0x3E93A8B7, 0x3F78B97B, 0xBE726440, 0x3E6B8059, 0x3F79234E,
    0x3F74ACF0, 0xBE9698E4, 0x3F3DAF4D, 0x3F2BEAED, 0xBF7F4550, 0xBD9A791C, 0x3F30C944, 0xBF3927DD,
    0xBE94D86D, 0xBF74F182, 0x3F175DFB, 0xBF4E74AF, 0xBF72099E, 0xBEA6C775, 0x3F2A9C2D, 0x3F3EDC9B,
    0x3F1FA522, 0x3F481FA5, 0x3F69A6AB, 0xBED1382B, 0xBF51B588, 0x3F12D3A5, 0xBF619B36, 0xBEF1F93B,
    0x3F7ECE09, 0x3DC5AA90, 0x3F7C4DFE, 0xBE2D5C2F, 0xBF597F43, 0x3F0705B2, 0x3F1E1386, 0xBF495D76,
    0x3F59CF0E, 0x3F0684D4, 0x3F7F9DE9, 0xBD60053E, 0x3E49DE53, 0xBF7AF9EB, 0x3F29293E, 0xBF4025AA,
    0xBCFDBF29, 0x3F7FE08E, 0xBF2C549D, 0x3F3D4F4E, 0xBF383146, 0xBF31CA22, 0x3F790638, 0x3E6D6A81,
    0x3F7FECBA, 0xBCC6A962, 0x3EE26541, 0xBF659D01, 0x3F7F85C8, 0xBD7A08EE, 0xBF6AD881, 0xBECBCC7F,
    0xBF50A436, 0xBF145708, 0xBF6101C3, 0x3EF43223, 0x3C81EE0E, 0x3F7FF7C2, 0xBF4F3E70, 0x3F16494A,
    0xBF6AA5A3, 0xBECCB658, 0xBF4D6717, 0x3F18CB09, 0xBF048645, 0x3F5B072A, 0xBF50C0B9, 0xBF142EE5,
    0x3ECDED4B, 0xBF6A6193, 0xBF67BED6, 0xBED98832, 0x3F3B539D, 0x3F2E7BF6, 0xBF109453, 0xBF5343C8,
    0xBF571FB6, 0xBF0AC5AE, 0xBF6E7213, 0x3EBA5469, 0x3F06190F, 0x3F5A1178, 0x3F3E47A0, 0xBF2B4246,
    0xBF7C4150, 0xBE2E8283, 0x3EEB985F, 0x3F6349AB, 0x3F536B42, 0x3F105A91, 0x3F1E44C1, 0x3F4936C6,
    0x3F554956, 0xBF0D9477, 0x3E19A1A9, 0x3F7D1A38, 0xBF298E7C, 0xBF3FCC5A, 0xBF2B2948, 0x3F3E5E1B,
    0x3F33DB03, 0x3F362CFC, 0xBF0ABC83, 0xBF5725A0, 0xBEAD7F46, 0x3F70DAA4, 0x3F554984, 0x3F0D9432,
    0xBE9912DE, 0xBF744A81, 0x3E8717A6, 0x3F76ED9B, 0x3DFE2CB9, 0xBF7E0551, 0xBF3A6F92, 0xBF2F6F8A,
    0x3F323D71, 0x3F37C1B3, 0xBF6B1938, 0x3ECAA130, 0xBF21F2BE, 0xBF4643B0, 0xBF6EE57D, 0xBEB80161,
    0xBDEC4B44, 0xBF7E4A54, 0x3F739557, 0xBE9D8529, 0xBDB812E3, 0xBF7EF6C0, 0x3F2AF833, 0x3F3E8A32,
    0x3F4B94DA, 0xBF1B3621, 0xBF256D69, 0xBF435EF2, 0xBE8BF5D3, 0x3F763FDB, 0x3F778AA0, 0xBE82866D,
    0xBF7AB2B7, 0x3E4F5309, 0xBF097593, 0xBF57F714, 0xBE8A4238, 0xBF767D58, 0xBF23D8DB, 0x3F44B2B5,
    0xBF49137F, 0xBF1E7191, 0x3D76007C, 0xBF7F89B2, 0xBCC92D3D, 0x3F7FEC3C, 0xBF28EB07, 0x3F405C5F,
    0xBF201986, 0xBF47C294, 0xBF1EFC89, 0xBF48A5B0, 0x3F55BB47, 0x3F0CE83B, 0xBE230C8A, 0x3F7CBBE3,
    0x3F56360D, 0x3F0C2D4F, 0xBF5E196C, 0xBEFE9EDA, 0xBE4F1EE3, 0xBF7AB568, 0x3F709E88, 0x3EAECBA9,
    0x3F7CDC8F, 0xBE1FD9F7, 0xBF674835, 0x3EDB7EF0, 0x3E020728, 0xBF7DED80, 0xBEC39046, 0x3F6C96FC,
    0x3F79B7EB, 0x3E617300, 0xBEA40BAD, 0xBF728110, 0xBF7CCB3C, 0x3E218E21, 0x3CCFB21C, 0xBF7FEAEF,
    0x3EF78F07, 0xBF601618, 0xBE91F601, 0xBF756080, 0xBD8B6081, 0xBF7F680F, 0xBF49DCBC, 0xBF1D70DE,
    0x3EA31792, 0xBF72AA36, 0x3F635440, 0x3EEB6F83, 0x3F25CF27, 0xBF430C05, 0x3F7B65EF, 0x3E41491A,
    0x3F6F8BD7, 0xBEB49834, 0xBF63B596, 0x3EE9F613, 0x3F4AD2CE, 0x3F1C335E, 0x3F3F95F4, 0x3F29CBF1,
    0xBF3A98BB, 0xBF2F43C2, 0x3F5F7697, 0xBEF9CD26, 0x3F542E81, 0x3F0F3AFB, 0x3DA55DFC, 0x3F7F2A02,
    0x3F7ADBB3, 0xBE4C33D7, 0xBF14AAC4, 0xBF506894, 0xBEF0A47E, 0xBF61F641, 0x3E76BB6A, 0x3F787529,
    0x3F719BAD, 0xBEA94065, 0xBF648E88, 0xBEE6A1D9, 0xBF4E9514, 0x3F1731C3, 0x3D802F0C, 0x3F7F7F82,
    0xBF6E670A, 0x3EBA8CDE, 0x3F13E718, 0x3F50F39F, 0xBEAC0973, 0xBF711DA5, 0x3F32ABAD, 0xBF375685,
    0xBB039B4A, 0xBF7FFFDE, 0xBE3B1D6D, 0xBF7BB096, 0xBF27031C, 0x3F420495, 0xBEDC4B64, 0xBF671797,
    0xBF7F9E86, 0xBD5F5152, 0xBC2871BB, 0xBF7FFC89, 0xBEFD3D25, 0x3F5E7E6E, 0xBE999115, 0x3F7436B3,
    0x3F51093D, 0x3F13C889, 0x3E8A1C27, 0x3F7682AE, 0xBF3B0A7C, 0xBF2ECA57, 0xBF425410, 0xBF26A69A,
    0xBF6834AE, 0x3ED78F3A, 0xBF02AF38, 0xBF5C217D, 0x3F5C8074, 0x3F020EBC, 0x3F0033A7, 0xBF5D95FD,
    0xBF2776E9, 0x3F41A0AA, 0xBF56993A, 0xBF0B954C, 0x3F31AA73, 0x3F384FD6, 0x3D8E5AEC, 0x3F7F617D,
    0x3E2E619C, 0xBF7C42BC, 0x3E8A08A9, 0x3F768568, 0x3F0D4D55, 0xBF55787D, 0x3E6712C2, 0xBF79659C,
    0x3ED7D24B, 0xBF68251B, 0x3EF9F3B1, 0xBF5F6BD0, 0xBEBC9D06, 0xBF6DFF0F, 0xBF7B87AE, 0x3E3E8595,
    0x3F50043E, 0x3F153709, 0x3EA3A8A7, 0xBF7291C9, 0x3F7503F1, 0x3E945EDD, 0xBF300AD9, 0xBF39DCF2,
    0xBF7FB669, 0xBD420E1A, 0xBE0004B1, 0x3F7DFDD6, 0xBF53F8AF, 0x3F0F8A95, 0x3F6EB76D, 0xBEB8EFE1,
    0x3F23B400, 0x3F44D162, 0xBC85068B, 0xBF7FF75C, 0xBF7ED92F, 0xBDC20A43, 0xBF50853F, 0x3F14828C,
    0x3ECEB611, 0xBF6A3560, 0x3F7E92B9, 0x3DD7ED9D, 0xBE265ED7, 0x3F7C993E, 0xBF7EB4F7, 0xBDCD9610,
    0xBF33146A, 0x3F36F039, 0x3F06BE51, 0xBF59AB82, 0xBF0A1E20, 0x3F578B70, 0x3F286E90, 0x3F40C963,
    0x3C69C29A, 0xBF7FF954, 0xBF2C6675, 0x3F3D3F0D, 0x3F23B083, 0xBF44D449, 0x3F6BD0F4, 0x3EC74406,
    0xBE162811, 0xBF7D3B94, 0xBF484600, 0x3F1F7501, 0xBF010398, 0xBF5D1D2C, 0xBF463950, 0xBF21FF71,
)
CELL_2D = (np.array(_CELL_2D_BITS, dtype=np.uint32).view(np.float32).astype(np.float64)
           .reshape(256, 2))
CELL_X = np.ascontiguousarray(CELL_2D[:, 0])
CELL_Y = np.ascontiguousarray(CELL_2D[:, 1])
JITTER = float(np.float32(0.45))  # m_cellularJitter: a float field, widened at every use
FREQUENCY = 0.01
FRACTAL_BOUNDING = 1.0 / 1.5  # CalculateFractalBounding with 2 octaves and gain 0.5
_SQRT3 = 1.7320508075688772935274463415059
F2 = 0.5 * (_SQRT3 - 1.0)
G2 = (3.0 - _SQRT3) / 6.0
G2X2 = 2.0 * G2  # ``2 * G2``: folded by the compiler into one constant
# GRAD_2D: (-1,-1) (1,-1) (-1,1) (1,1) (0,-1) (-1,0) (0,1) (1,0)
GRAD_X = np.array([-1, 1, -1, 1, 0, -1, 0, 1], dtype=np.float64)
GRAD_Y = np.array([-1, -1, 1, 1, -1, 0, 1, 0], dtype=np.float64)

_X_PRIME = np.uint64(1619)
_Y_PRIME = np.uint64(31337)
_HASH_MUL = np.uint64(60493)
_LOW32 = np.uint64(0xFFFFFFFF)


def hash2d(seed: int, x: I64Array, y: I64Array) -> I64Array:
    """``Hash2D``: int32 arithmetic that wraps, then ``(n >> 13) ^ n`` with a signed shift.

    Products are formed in uint64, whose wrap-around keeps the low 32 bits right.
    """
    n = np.uint64(seed & 0xFFFFFFFF) ^ (_X_PRIME * x.astype(np.uint64))
    n ^= _Y_PRIME * y.astype(np.uint64)
    n &= _LOW32
    n = (((n * n) & _LOW32) * n & _LOW32) * _HASH_MUL & _LOW32
    s = n.astype(np.uint32).view(np.int32).astype(np.int64)
    out: I64Array = (s >> 13) ^ s
    return out


def fast_round(v: F64Array) -> I64Array:
    """``FastRound``: ``(int)(f + 0.5)`` or ``(int)(f - 0.5)``, truncating toward zero."""
    out: I64Array = np.where(v >= 0, np.trunc(v + 0.5), np.trunc(v - 0.5)).astype(np.int64)
    return out


def fast_floor(v: F64Array) -> I64Array:
    """``FastFloor``: ``(int)f`` for ``f >= 0``, else ``(int)f - 1`` (so -2.0 gives -3)."""
    t = np.trunc(v).astype(np.int64)
    out: I64Array = np.where(v >= 0, t, t - 1)
    return out


def cellular(x: F64Array, y: F64Array, seed: int = 0) -> F64Array:
    """``GetCellular(x, y)``: the squared distance to the nearest jittered cell point.

    ``x * 0.01``, then the 3 x 3 cells around ``FastRound``, x outer and y inner; the first
    strictly smaller distance wins (only the distance is returned, so ties cannot matter).
    """
    xs = np.asarray(x, dtype=np.float64) * FREQUENCY
    ys = np.asarray(y, dtype=np.float64) * FREQUENCY
    xr = fast_round(xs)
    yr = fast_round(ys)
    best = np.full(xs.shape, 999999.0)
    for dx in (-1, 0, 1):
        xi = xr + dx
        for dy in (-1, 0, 1):
            yi = yr + dy
            k = hash2d(seed, xi, yi) & 255
            vx = (xi.astype(np.float64) - xs) + CELL_X[k] * JITTER
            vy = (yi.astype(np.float64) - ys) + CELL_Y[k] * JITTER
            d = vx * vx + vy * vy
            np.minimum(best, d, out=best, where=d < best)
    return best


def _grad_coord(seed: int, i: I64Array, j: I64Array, xd: F64Array, yd: F64Array) -> F64Array:
    g = hash2d(seed, i, j) & 7
    out: F64Array = xd * GRAD_X[g] + yd * GRAD_Y[g]
    return out


def _corner(t: F64Array, seed: int, i: I64Array, j: I64Array, xd: F64Array,
            yd: F64Array) -> F64Array:
    """One simplex corner: ``t < 0 ? 0 : (t*t) * (t*t) * grad``."""
    t2 = t * t
    n: F64Array = np.where(t < 0, 0.0, t2 * t2 * _grad_coord(seed, i, j, xd, yd))
    return n


def simplex(seed: int, x: F64Array, y: F64Array) -> F64Array:
    """``SingleSimplex(seed, x, y)``: 2-D simplex noise, statement by statement."""
    t = (x + y) * F2
    i = fast_floor(x + t)
    j = fast_floor(y + t)
    t = (i + j).astype(np.float64) * G2
    x0 = x - (i.astype(np.float64) - t)
    y0 = y - (j.astype(np.float64) - t)
    upper = x0 > y0
    i1 = np.where(upper, 1, 0)
    j1 = 1 - i1
    x1 = (x0 - i1) + G2
    y1 = (y0 - j1) + G2
    x2 = (x0 - 1.0) + G2X2
    y2 = (y0 - 1.0) + G2X2
    n0 = _corner((0.5 - x0 * x0) - y0 * y0, seed, i, j, x0, y0)
    n1 = _corner((0.5 - x1 * x1) - y1 * y1, seed, i + i1, j + j1, x1, y1)
    n2 = _corner((0.5 - x2 * x2) - y2 * y2, seed, i + 1, j + 1, x2, y2)
    out: F64Array = 50.0 * ((n0 + n1) + n2)
    return out


def simplex_fractal(x: F64Array, y: F64Array) -> F64Array:
    """``GetSimplexFractal(x, y)`` with FBM, 2 octaves, seed 0 (then 1), lacunarity 2, gain 0.5."""
    xs = np.asarray(x, dtype=np.float64) * FREQUENCY
    ys = np.asarray(y, dtype=np.float64) * FREQUENCY
    total = simplex(0, xs, ys)
    amp = 1.0
    xs = xs * 2.0
    ys = ys * 2.0
    amp *= 0.5
    total = total + simplex(1, xs, ys) * amp
    out: F64Array = total * FRACTAL_BOUNDING
    return out
