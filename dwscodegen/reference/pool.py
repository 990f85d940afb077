"""AVERAGE_POOL_2D, MAX_POOL_2D and MEAN over H,W: float32 and int8 (TFLite semantics), array level.

Tensors are NHWC. Padding is explicit (top, bottom, left, right); `window_padding` turns TFLite's
SAME/VALID into it. Padded taps are skipped, not read: an average divides by the number of taps
inside the input, exactly as TFLite's pooling kernels do.

int8 code paths matched (BUILTIN_REF):
  * average pool: reference_integer_ops::AveragePool (int32 sum of the in-bounds taps, divided by
    their count rounding half away from zero, clamped to the activation range; the input and output
    quantization must be equal, TFLite does not requantize in pooling);
  * max pool: reference_integer_ops::MaxPool;
  * mean: reduce.cc EvalQuantizedMean -> reference_ops::QuantizedMeanOrSum (both keep_dims values
    take it): int32 sum minus zero point * count, MultiplyByQuantizedMultiplier with the
    input/output scale multiplier folded with 1/count as the C++ does, plus output zero point.
"""
from __future__ import annotations


import numpy as np

from ..qparams import MeanParams
from ..quant import multiply_by_quantized_multiplier


def window_padding(in_hw: tuple[int, int], filter_hw: tuple[int, int], stride: tuple[int, int],
                   padding: str) -> tuple[int, int, int, int]:
    """TFLite SAME/VALID -> explicit (top, bottom, left, right) for a pooling window."""
    pads = []
    for size, k, s in zip(in_hw, filter_hw, stride):
        if padding.upper() == "VALID":
            pads += [0, 0]
            continue
        out = -(-size // s)
        total = max((out - 1) * s + k - size, 0)
        pads += [total // 2, total - total // 2]
    return tuple(pads)


def pool_output_hw(in_hw, filter_hw, stride, pad) -> tuple[int, int]:
    top, bottom, left, right = pad
    return ((in_hw[0] + top + bottom - filter_hw[0]) // stride[0] + 1,
            (in_hw[1] + left + right - filter_hw[1]) // stride[1] + 1)


def _windows(x: np.ndarray, filter_hw, stride, pad):
    """[N,H,W,C] -> patches [N,OH,OW,KH,KW,C] of the zero-padded input and the in-bounds mask
    [OH,OW,KH,KW,1]."""
    top, bottom, left, right = pad
    kh, kw = filter_hw
    oh, ow = pool_output_hw(x.shape[1:3], filter_hw, stride, pad)
    if oh < 1 or ow < 1:
        raise ValueError(f"pool window {filter_hw} does not fit input {x.shape[1:3]} with padding {pad}")
    xp = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)))
    valid = np.pad(np.ones(x.shape[1:3], dtype=bool), ((top, bottom), (left, right)))
    rows = (np.arange(oh) * stride[0])[:, None] + np.arange(kh)      # [OH,KH]
    cols = (np.arange(ow) * stride[1])[:, None] + np.arange(kw)      # [OW,KW]
    r, c = rows[:, None, :, None], cols[None, :, None, :]
    return xp[:, r, c, :], valid[r, c][..., None]


def _clamp_float(y: np.ndarray, low: float | None, high: float | None) -> np.ndarray:
    if low is not None:
        y = np.maximum(y, low)
    if high is not None:
        y = np.minimum(y, high)
    return y


def avg_pool_f32(x: np.ndarray, filter_hw, stride, pad, act_low: float | None = None,
                 act_high: float | None = None) -> np.ndarray:
    patches, valid = _windows(np.asarray(x, dtype=np.float64), filter_hw, stride, pad)
    total = np.where(valid, patches, 0.0).sum(axis=(3, 4))
    count = valid.sum(axis=(2, 3))
    return _clamp_float(total / count, act_low, act_high)


def avg_pool_int8(x: np.ndarray, filter_hw, stride, pad, act_min: int = -128, act_max: int = 127) -> np.ndarray:
    patches, valid = _windows(np.asarray(x, dtype=np.int64), filter_hw, stride, pad)
    acc = np.where(valid, patches, 0).sum(axis=(3, 4))
    count = valid.sum(axis=(2, 3)).astype(np.int64)
    # acc > 0 ? (acc + n/2) / n : (acc - n/2) / n, with C's truncating division
    rounded = np.where(acc > 0, (acc + count // 2) // count, -((-acc + count // 2) // count))
    return np.clip(rounded, act_min, act_max).astype(np.int8)


def max_pool_f32(x: np.ndarray, filter_hw, stride, pad, act_low: float | None = None,
                 act_high: float | None = None) -> np.ndarray:
    patches, valid = _windows(np.asarray(x, dtype=np.float64), filter_hw, stride, pad)
    return _clamp_float(np.where(valid, patches, -np.inf).max(axis=(3, 4)), act_low, act_high)


def max_pool_int8(x: np.ndarray, filter_hw, stride, pad, act_min: int = -128, act_max: int = 127) -> np.ndarray:
    patches, valid = _windows(np.asarray(x, dtype=np.int64), filter_hw, stride, pad)
    return np.clip(np.where(valid, patches, -128).max(axis=(3, 4)), act_min, act_max).astype(np.int8)


# ----------------------------------------------------------------------------------------------
# MEAN over H,W (global average pooling)
# ----------------------------------------------------------------------------------------------

def mean_f32(x: np.ndarray, keep_dims: bool = False, axes=(1, 2)) -> np.ndarray:
    """Over `axes` ((1, 2): [N,H,W,C] -> [N,1,1,C] (keep_dims) or [N,C])."""
    return np.asarray(x, dtype=np.float64).mean(axis=tuple(axes), keepdims=keep_dims)


def mean_int8(x: np.ndarray, params: MeanParams, keep_dims: bool = False, axes=(1, 2)) -> np.ndarray:
    x = np.asarray(x)
    count = int(np.prod([x.shape[a] for a in axes]))
    if count != params.count:
        raise ValueError(f"mean params are for {params.count} elements, input has {count}")
    total = x.astype(np.int64).sum(axis=tuple(axes), keepdims=keep_dims) - params.input_zero_point * params.count
    y = multiply_by_quantized_multiplier(total, params.multiplier, params.shift) + params.output_zero_point
    return np.clip(y, -128, 127).astype(np.int8)

