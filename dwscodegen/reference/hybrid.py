"""Hybrid (dynamic-range quantized) convolution: float32 activations, int8 weights.

TFLite's reference kernels quantize the float input on the fly, per batch, accumulate in int32
against the int8 filter, and scale back to float. Which way depends on the filter's quantization
(conv.cc Prepare): with per-tensor weights (EvalHybrid) the input is quantized symmetrically and the
result is acc * (input_factor * filter_scale); with per-channel weights of differing scales
(EvalHybridPerChannel) the input is quantized asymmetrically with an offset and the result is
acc * filter_scale[c] * input_factor, left to right. Both are reproduced step by step in the same
float32/float64 precisions (measured exact against the interpreter).
"""
from __future__ import annotations

import numpy as np

from ..qparams import hybrid_per_channel
from ..quant import round_half_away_f64


def symmetric_quantize(values: np.ndarray) -> tuple[np.ndarray, np.float32]:
    """PortableSymmetricQuantizeFloats: (int8 in [-127, 127], float32 factor)."""
    v = np.asarray(values, dtype=np.float32)
    value_range = np.float32(max(abs(float(v.min())), abs(float(v.max()))))
    if value_range == 0:
        return np.zeros(v.shape, np.int8), np.float32(1.0)
    factor = np.float32(value_range / np.float32(127))
    inverse = np.float32(np.float32(127) / value_range)
    q = np.clip(round_half_away_f64((v * inverse).astype(np.float64)), -127, 127).astype(np.int8)
    return q, factor


def asymmetric_quantize(values: np.ndarray) -> tuple[np.ndarray, np.float32, int]:
    """PortableAsymmetricQuantizeFloats: (int8, float32 factor, offset), the zero point nudged as TFLite does."""
    v = np.asarray(values, dtype=np.float32)
    rmin, rmax = min(0.0, float(v.min())), max(0.0, float(v.max()))
    if rmin == rmax:
        return np.zeros(v.shape, np.int8), np.float32(1.0), 0
    scale = (rmax - rmin) / 255.0
    zero_point = (-128.0 - rmin / scale if 128.0 + abs(rmin / scale) < 127.0 + abs(rmax / scale)
                  else 127.0 - rmax / scale)
    offset = -128 if zero_point <= -128.0 else 127 if zero_point >= 127.0 else int(round_half_away_f64(zero_point))
    factor = np.float32(scale)
    inverse = np.float32(1.0 / float(factor))
    scaled = np.float32(offset) + v * inverse
    q = np.clip(round_half_away_f64(scaled.astype(np.float64)), -128, 127).astype(np.int8)
    return q, factor, offset


def hybrid_conv(x: np.ndarray, filter_scales: np.ndarray, bias, attrs, accumulate) -> np.ndarray:
    """`accumulate(int64 input minus offset)` sums the taps of one batch; padding taps contribute zero."""
    scales = np.asarray(filter_scales, np.float32)
    low, high = attrs.activation.bounds()
    outs = []
    for b in range(x.shape[0]):
        if hybrid_per_channel(scales):
            q, factor, offset = asymmetric_quantize(x[b:b + 1])
            acc = accumulate(q.astype(np.int64) - offset).astype(np.float32)
            y = acc * scales * factor
        else:
            q, factor = symmetric_quantize(x[b:b + 1])
            acc = accumulate(q.astype(np.int64)).astype(np.float32)
            y = acc * (factor * scales)
        if bias is not None:
            y = y + np.asarray(bias, np.float32)
        y = np.maximum(y, np.float32(low)) if low is not None else y
        y = np.minimum(y, np.float32(high)) if high is not None else y
        outs.append(y[0])
    return np.stack(outs)


def hybrid_depthwise(x: np.ndarray, filter_scales: np.ndarray, bias, attrs, accumulate) -> np.ndarray:
    """Hybrid DEPTHWISE_CONV_2D (depthwise_conv.cc EvalHybridPerChannel ->
    reference_integer_ops::DepthwiseConvHybridPerChannel): whatever the filter's quantization, each batch is
    quantized asymmetrically, and the int32 accumulator of (q - offset) * w is scaled as
    float(acc) * (filter_scale[c] * factor) -- the product of the scales first, unlike Conv2D's."""
    scales = np.asarray(filter_scales, np.float32)
    low, high = attrs.activation.bounds()
    outs = []
    for b in range(x.shape[0]):
        q, factor, offset = asymmetric_quantize(x[b:b + 1])
        acc = accumulate(q.astype(np.int64) - offset).astype(np.float32)
        y = acc * (scales * factor)
        if bias is not None:
            y = y + np.asarray(bias, np.float32)
        y = np.maximum(y, np.float32(low)) if low is not None else y
        y = np.minimum(y, np.float32(high)) if high is not None else y
        outs.append(y[0])
    return np.stack(outs)
