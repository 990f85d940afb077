"""Hybrid (dynamic-range quantized) convolution: float32 activations, int8 per-channel weights.

TFLite's reference kernels (EvalHybrid) quantize the float input on the fly, per batch and
symmetrically (PortableSymmetricQuantizeFloats), accumulate in int32 against the int8 filter, and
scale back to float with one combined factor per channel: acc * (filter_scale[c] * input_factor),
+ bias, clamped. This reproduces each step in the same float32 precision; measured on the MLPerf
KWS float model against the interpreter it is exact (the other association of the product is not).
"""
from __future__ import annotations

import numpy as np

from .fully_connected import round_half_away_f64


def symmetric_quantize(values: np.ndarray) -> tuple[np.ndarray, np.float32]:
    """(int8 values in [-127, 127], float32 scaling factor) of one batch, as TFLite computes them."""
    v = np.asarray(values, dtype=np.float32)
    value_range = np.float32(max(abs(float(v.min())), abs(float(v.max()))))
    if value_range == 0:
        return np.zeros(v.shape, np.int8), np.float32(1.0)
    factor = np.float32(value_range / np.float32(127))
    inverse = np.float32(np.float32(127) / value_range)
    q = np.clip(round_half_away_f64((v * inverse).astype(np.float64)), -127, 127).astype(np.int8)
    return q, factor


def hybrid_conv(x: np.ndarray, filter_scales: np.ndarray, bias, attrs, accumulate) -> np.ndarray:
    """`accumulate(int64 input)` sums the filter taps of one batch (padding contributes zero)."""
    outs = []
    low, high = attrs.activation.bounds()
    for b in range(x.shape[0]):
        q, factor = symmetric_quantize(x[b:b + 1])
        acc = accumulate(q.astype(np.int64)).astype(np.float32)          # int32 -> float
        y = acc * (np.asarray(filter_scales, np.float32) * factor)      # one float32 factor per channel
        if bias is not None:
            y = y + np.asarray(bias, np.float32)
        y = np.maximum(y, np.float32(low)) if low is not None else y
        y = np.minimum(y, np.float32(high)) if high is not None else y
        outs.append(y[0])
    return np.stack(outs)
