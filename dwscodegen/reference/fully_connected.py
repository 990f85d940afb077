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

from dataclasses import dataclass

import numpy as np

from ..quant import activation_range_int8


@dataclass(frozen=True)
class FullyConnectedParams:
    input_offset: int            # -input zero point
    weights_offset: int          # -weights zero point (0 for per-channel)
    output_offset: int           # output zero point
    scale: np.ndarray            # float64 [O]: input_scale * weight_scale / output_scale
    act_min: int
    act_max: int


def fully_connected_params(input_scale: float, input_zero_point: int, weight_scales, weight_zero_point: int,
                           output_scale: float, output_zero_point: int, num_outputs: int,
                           act_low: float | None = None, act_high: float | None = None) -> FullyConnectedParams:
    """weight_scales: one value (per-tensor) or `num_outputs` values (per-channel)."""
    ws = np.asarray(weight_scales, dtype=np.float32).reshape(-1)
    per_channel = ws.size > 1
    if per_channel and ws.size != num_outputs:
        raise ValueError(f"{ws.size} weight scales for {num_outputs} outputs")
    in_s, out_s = float(np.float32(input_scale)), float(np.float32(output_scale))
    scale = np.array([in_s * float(s) / out_s for s in np.broadcast_to(ws, (num_outputs,))], dtype=np.float64)
    act_min, act_max = activation_range_int8(act_low, act_high, out_s, int(output_zero_point))
    return FullyConnectedParams(
        input_offset=-int(input_zero_point), weights_offset=0 if per_channel else -int(weight_zero_point),
        output_offset=int(output_zero_point), scale=scale, act_min=act_min, act_max=act_max)


def round_half_away_f64(v: np.ndarray) -> np.ndarray:
    """std::round on doubles, exactly (no x + 0.5 double rounding): trunc, then fix up the fraction."""
    v = np.asarray(v, dtype=np.float64)
    t = np.trunc(v)
    frac = v - t                       # exact
    return t + (frac >= 0.5) - (frac <= -0.5)


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


def folded_bias(weights: np.ndarray, bias: np.ndarray | None, params: FullyConnectedParams) -> np.ndarray:
    """bias + input_offset * sum_k(w + weights_offset), int32 with wrap-around: what the C kernel
    (templates/kernels/fully_connected_s8.c.j2) starts each accumulator from, so that its inner loop
    is sum_k (w + weights_offset) * x. Equal to TFLite's accumulator modulo 2^32, hence bit-exact."""
    w = np.asarray(weights, dtype=np.int64) + params.weights_offset
    b = np.zeros(w.shape[0], dtype=np.int64) if bias is None else np.asarray(bias, dtype=np.int64)
    folded = b + params.input_offset * w.sum(axis=1)
    return (((folded + (1 << 31)) % (1 << 32)) - (1 << 31)).astype(np.int32)


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
