"""Coordinate tables of TFLite's RESIZE_BILINEAR and RESIZE_NEAREST_NEIGHBOR, per output row and column.

The interpreter computes, for every output coordinate, which input rows/columns it reads and with what
weights; those depend only on the sizes and the two flags, so they are computed here once, exactly as the
reference kernels do, and the NumPy reference and both C backends read the same tables (like qparams):

* nearest (reference_ops::GetNearestNeighbor, every dtype): float32 scale, floor (or round half away
  with align_corners) of (o + offset) * scale, clamped;
* bilinear float32 (reference_ops::ResizeBilinear / ComputeInterpolationValues): float32 source
  coordinate, its floor and ceil clamped to the input, and the fraction `coordinate - floor`;
* bilinear int8 (reference_ops::ResizeBilinearInteger, what BUILTIN_REF runs for int8): the source
  coordinate in 1/1024 units from an integer scale, lower/upper index and the two weights (1024 - f, f),
  f = coordinate - 1024 * lower, which is negative where half-pixel centres fall before the first row.
  Output = (sum of the four products + 2^19 * sign) / 2^20, C division (round half away from zero).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .ir import Graph, Op, ResizeAttrs

F32 = np.float32


def _c_div(a: int, b: int) -> int:
    """C integer division (truncates toward zero)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def nearest_indices(in_size: int, out_size: int, attrs: ResizeAttrs) -> np.ndarray:
    """int32 [out_size]: the input index each output index copies."""
    if attrs.align_corners and out_size > 1:
        scale = F32(in_size - 1) / F32(out_size - 1)
    else:
        scale = F32(in_size) / F32(out_size)
    offset = F32(0.5) if attrs.half_pixel_centers else F32(0.0)
    out = []
    for o in range(out_size):
        v = (F32(o) + offset) * scale                       # float32 arithmetic, as the C++
        if attrs.align_corners:
            f = float(v)
            index = int(math.floor(f + 0.5)) if f >= 0 else -int(math.floor(-f + 0.5))   # TfLiteRound
        else:
            index = int(math.floor(float(v)))
        index = min(index, in_size - 1)
        if attrs.half_pixel_centers:
            index = max(0, index)
        out.append(index)
    return np.array(out, dtype=np.int32)


@dataclass(frozen=True)
class BilinearAxis:
    """Per output index along one axis: the two input indices and the interpolation weight(s)."""
    lower: np.ndarray        # int32
    upper: np.ndarray        # int32
    weight: np.ndarray       # float32: fraction toward `upper`; int8: int32 (1024 - f, f) pairs, [out][2]


def bilinear_axis_f32(in_size: int, out_size: int, attrs: ResizeAttrs) -> BilinearAxis:
    scale = F32(in_size) / F32(out_size)
    if attrs.align_corners and out_size > 1:
        scale = F32(in_size - 1) / F32(out_size - 1)
    lower, upper, frac = [], [], []
    for o in range(out_size):
        v = (F32(o) + F32(0.5)) * scale - F32(0.5) if attrs.half_pixel_centers else F32(o) * scale
        lo = max(int(math.floor(float(v))), 0)
        lower.append(lo)
        upper.append(min(int(math.ceil(float(v))), in_size - 1))
        frac.append(v - F32(lo))                             # input_y - y0, in float32
    return BilinearAxis(np.array(lower, np.int32), np.array(upper, np.int32), np.array(frac, np.float32))


def bilinear_axis_int8(in_size: int, out_size: int, attrs: ResizeAttrs) -> BilinearAxis:
    scale = _c_div((1 << 10) * in_size + out_size // 2, out_size)
    if attrs.align_corners and out_size > 1:
        scale = _c_div((1 << 10) * (in_size - 1) + (out_size - 1) // 2, out_size - 1)
    lower, upper, weights = [], [], []
    for o in range(out_size):
        v = o * scale + _c_div(scale, 2) - (1 << 9) if attrs.half_pixel_centers else o * scale
        lo = max(_c_div(v, 1 << 10), 0)
        lower.append(lo)
        upper.append(min(_c_div(v + (1 << 10) - 1, 1 << 10), in_size - 1))
        f = v - (1 << 10) * lo
        weights.append(((1 << 10) - f, f))
    return BilinearAxis(np.array(lower, np.int32), np.array(upper, np.int32), np.array(weights, np.int32))


@dataclass(frozen=True)
class ResizePlan:
    """What a resize kernel is specialised on: sizes and the per-axis tables."""
    N: int
    H: int
    W: int
    C: int
    OH: int
    OW: int
    rows: BilinearAxis | np.ndarray     # bilinear: BilinearAxis; nearest: int32 indices
    cols: BilinearAxis | np.ndarray

    def int8_sum_bound(self) -> int:
        """Largest |sum of the four int8 products| (+ the rounding term). Per axis |1024 - f| + |f| <= 2048
        (f >= -512: half-pixel centres start half a row early at most), so this is below 2^30 and the
        kernels sum in int32, where TFLite uses int64."""
        wy = int(np.abs(self.rows.weight).sum(axis=1).max())
        wx = int(np.abs(self.cols.weight).sum(axis=1).max())
        return 128 * wy * wx + (1 << 19)


def resize_plan(graph: Graph, op: Op) -> ResizePlan:
    x, y = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    n, h, w, c = x.shape
    oh, ow = y.shape[1], y.shape[2]
    a = op.attrs
    if op.type == "ResizeNearest":
        return ResizePlan(n, h, w, c, oh, ow, nearest_indices(h, oh, a), nearest_indices(w, ow, a))
    axis = bilinear_axis_int8 if x.dtype == "int8" else bilinear_axis_f32
    plan = ResizePlan(n, h, w, c, oh, ow, axis(h, oh, a), axis(w, ow, a))
    if x.dtype == "int8" and plan.int8_sum_bound() >= 1 << 31:
        raise AssertionError(f"{op.where()}: int8 bilinear sum exceeds int32")   # cannot happen, see above
    return plan
