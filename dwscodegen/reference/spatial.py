"""NumPy reference of the spatial ops of segmentation and detector heads: RESIZE_BILINEAR,
RESIZE_NEAREST_NEIGHBOR and TRANSPOSE_CONV, float32 and int8 (TFLite BUILTIN_REF semantics).

Resize reads the coordinate tables of dwscodegen/resize.py. Transpose convolution scatters every input
pixel through the filter into the full (H - 1) * stride + K output and crops `pad`, as TFLite's
reference kernels do; int8 accumulates (x + input_offset) * w in integers (exact, so the order of the
scatter does not matter), adds the bias and requantizes per output channel like CONV_2D.
"""
from __future__ import annotations

import numpy as np

from ..qparams import ConvQParams
from ..quant import multiply_by_quantized_multiplier
from ..resize import ResizePlan


def resize_nearest(x: np.ndarray, plan: ResizePlan) -> np.ndarray:
    return np.asarray(x)[:, plan.rows][:, :, plan.cols]


def resize_bilinear_f32(x: np.ndarray, plan: ResizePlan) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    r, c = plan.rows, plan.cols
    dy = r.weight.astype(np.float64)[None, :, None, None]
    dx = c.weight.astype(np.float64)[None, None, :, None]
    top, bottom = x[:, r.lower], x[:, r.upper]
    return (top[:, :, c.lower] * (1 - dy) * (1 - dx) + bottom[:, :, c.lower] * dy * (1 - dx)
            + top[:, :, c.upper] * (1 - dy) * dx + bottom[:, :, c.upper] * dy * dx)


def resize_bilinear_int8(x: np.ndarray, plan: ResizePlan) -> np.ndarray:
    x = np.asarray(x, dtype=np.int64)
    r, c = plan.rows, plan.cols
    wy0, wy1 = (r.weight[:, k].astype(np.int64)[None, :, None, None] for k in (0, 1))
    wx0, wx1 = (c.weight[:, k].astype(np.int64)[None, None, :, None] for k in (0, 1))
    top, bottom = x[:, r.lower], x[:, r.upper]
    total = (top[:, :, c.lower] * wy0 * wx0 + bottom[:, :, c.lower] * wy1 * wx0
             + top[:, :, c.upper] * wy0 * wx1 + bottom[:, :, c.upper] * wy1 * wx1)
    rounded = total + np.where(total > 0, 1 << 19, -(1 << 19))
    quotient = np.where(rounded >= 0, rounded // (1 << 20), -((-rounded) // (1 << 20)))   # C division
    return quotient.astype(np.int8)


def transpose_conv_acc(x: np.ndarray, w: np.ndarray, stride, pad, out_hw) -> np.ndarray:
    """Sum over every input pixel of x * w scattered to its output window, cropped: [N, OH, OW, OC].
    x [N,H,W,IC] and w [OC,KH,KW,IC], both already int64 (int8 path, input offset added) or float64."""
    n, h, wd, _ = x.shape
    oc, kh, kw, _ = w.shape
    sh, sw = stride
    top, _, left, _ = pad
    full_h = max((h - 1) * sh + kh, top + out_hw[0])
    full_w = max((wd - 1) * sw + kw, left + out_hw[1])
    full = np.zeros((n, full_h, full_w, oc), dtype=x.dtype)
    for ky in range(kh):
        for kx in range(kw):
            full[:, ky:ky + (h - 1) * sh + 1:sh, kx:kx + (wd - 1) * sw + 1:sw, :] += np.einsum(
                "nhwc,oc->nhwo", x, w[:, ky, kx, :])
    return full[:, top:top + out_hw[0], left:left + out_hw[1], :]


def transpose_conv_f32(x, w, bias, stride, pad, out_hw, act_low=None, act_high=None) -> np.ndarray:
    y = transpose_conv_acc(np.asarray(x, np.float64), np.asarray(w, np.float64), stride, pad, out_hw)
    if bias is not None:
        y = y + np.asarray(bias, np.float64)
    if act_low is not None:
        y = np.maximum(y, act_low)
    if act_high is not None:
        y = np.minimum(y, act_high)
    return y


def transpose_conv_int8(x, w, bias, stride, pad, out_hw, q: ConvQParams) -> np.ndarray:
    acc = transpose_conv_acc(np.asarray(x, np.int64) + q.input_offset, np.asarray(w, np.int64), stride, pad, out_hw)
    if bias is not None:
        acc = acc + np.asarray(bias, np.int64)
    acc = ((acc + (1 << 31)) % (1 << 32)) - (1 << 31)          # TFLite's int32 accumulator
    y = multiply_by_quantized_multiplier(acc, q.multiplier, q.shift) + q.output_offset
    return np.clip(y, q.act_min, q.act_max).astype(np.int8)
