"""ADD, MUL, MAXIMUM, MINIMUM and PRELU with NumPy broadcasting, float32 and int8 (TFLite semantics).

int8 code paths matched (BUILTIN_REF; broadcasting only changes which elements meet, never the arithmetic):
  * ADD: reference_integer_ops::Add / BroadcastAdd6DSlow: both inputs rescaled to twice the larger
    input scale with 20 bits of headroom, summed, requantized (qparams.add_qparams);
  * MUL: reference_integer_ops::Mul / BroadcastMul6DSlow: MultiplyByQuantizedMultiplier of the product
    of the offset inputs by input1_scale * input2_scale / output_scale (qparams.mul_qparams);
  * MAXIMUM / MINIMUM: MaximumMinimumBroadcastSlow compares the raw int8 values (validation requires
    one quantization for inputs and output, which makes that the real maximum);
  * PRELU: reference_ops::Prelu / BroadcastPrelu4DSlow (qparams.prelu_qparams).
"""
from __future__ import annotations

import numpy as np

from ..qparams import AddQParams, MulQParams, PReluQParams, add_rescaled
from ..quant import multiply_by_quantized_multiplier


def add_int8(a: np.ndarray, b: np.ndarray, q: AddQParams) -> np.ndarray:
    sa = add_rescaled(a, q.input1_offset, q.input1_multiplier, q.input1_shift, q.left_shift).astype(np.int64)
    sb = add_rescaled(b, q.input2_offset, q.input2_multiplier, q.input2_shift, q.left_shift).astype(np.int64)
    y = multiply_by_quantized_multiplier(sa + sb, q.output_multiplier, q.output_shift) + q.output_offset
    return np.clip(y, q.act_min, q.act_max).astype(np.int8)


def mul_int8(a: np.ndarray, b: np.ndarray, q: MulQParams) -> np.ndarray:
    product = (a.astype(np.int64) + q.input1_offset) * (b.astype(np.int64) + q.input2_offset)
    y = multiply_by_quantized_multiplier(product, q.multiplier, q.shift) + q.output_offset
    return np.clip(y, q.act_min, q.act_max).astype(np.int8)


def maximum(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.where(a > b, a, b)          # el1 > el2 ? el1 : el2, as TFLite's MaximumOp


def minimum(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.where(a < b, a, b)


def prelu_int8(x: np.ndarray, alpha: np.ndarray, q: PReluQParams) -> np.ndarray:
    v = x.astype(np.int64) + q.input_offset
    negative = multiply_by_quantized_multiplier(v * (alpha.astype(np.int64) + q.alpha_offset),
                                                q.multiplier_2, q.shift_2)
    y = np.where(v >= 0, multiply_by_quantized_multiplier(v, q.multiplier_1, q.shift_1), negative)
    return np.clip(y + q.output_offset, -128, 127).astype(np.int8)


def prelu_f32(x: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    return np.where(x >= 0, x, x * alpha)
