"""FULLY_CONNECTED: float32 and int8 (TFLite semantics), array level.

The input is flattened to [N, K] (K = the weights' second dimension), weights are [O, K], the
output is [N, O] (keep_num_dims=False).

int8 matches what BUILTIN_REF runs in the TFLite this project tests against (ai-edge-litert 2.3):
fully_connected.cc sends int8 to `reference_integer_ops::FullyConnected` /
`FullyConnectedPerChannel` in their *float-scale* overloads, which requantize in double:

    acc    = sum_k (w + weights_offset) * (x + input_offset) + bias          (int32)
    scale  = double(input_scale) * double(weight_scale[o]) / double(output_scale)
    y      = clamp(int32(round(double(acc) * scale)) + output_zero_point, act_min, act_max)

with std::round (halves away from zero), not MultiplyByQuantizedMultiplier. (The fixed-point path
differs at rounding ties; the tests pin the double behaviour with exact-tie cases.) Per-channel
weights must be symmetric (TFLite ignores their zero point); per-tensor weights keep their offset.
"""
from __future__ import annotations


import numpy as np

from ..qparams import FullyConnectedParams
from ..quant import round_half_away_f64


def _flatten(x: np.ndarray, k: int) -> np.ndarray:
    if x.size % k:
        raise ValueError(f"input of {x.size} values does not flatten to rows of {k}")
    return x.reshape(-1, k)


def fully_connected_int8(x: np.ndarray, weights: np.ndarray, bias: np.ndarray | None,
                         params: FullyConnectedParams) -> np.ndarray:
    w = np.asarray(weights, dtype=np.int64)
    rows = _flatten(np.asarray(x), w.shape[1]).astype(np.int64)
    acc = (rows + params.input_offset) @ (w + params.weights_offset).T
    if bias is not None:
        acc = acc + np.asarray(bias, dtype=np.int64)
    acc = ((acc + (1 << 31)) % (1 << 32)) - (1 << 31)          # int32 accumulator
    y = round_half_away_f64(acc.astype(np.float64) * params.scale) + params.output_offset
    return np.clip(y, params.act_min, params.act_max).astype(np.int8)


def fully_connected_f32(x: np.ndarray, weights: np.ndarray, bias: np.ndarray | None,
                        act_low: float | None = None, act_high: float | None = None) -> np.ndarray:
    w = np.asarray(weights, dtype=np.float64)
    y = _flatten(np.asarray(x, dtype=np.float64), w.shape[1]) @ w.T
    if bias is not None:
        y = y + np.asarray(bias, dtype=np.float64)
    if act_low is not None:
        y = np.maximum(y, act_low)
    if act_high is not None:
        y = np.minimum(y, act_high)
    return y
