"""QUANTIZE, DEQUANTIZE, RELU, RELU6 and int8 requantization (TFLite semantics), array level.

int8 code paths matched (BUILTIN_REF):
  * QUANTIZE float32 -> int8: quantize.cc -> AffineQuantize: the float is divided by the float32
    scale *in float32*, rounded half away from zero, plus zero point, clamped. (Older TFLite source
    divides in double; the ai-edge-litert 2.3 kernels do not, which the tests pin with exact ties);
  * DEQUANTIZE int8 -> float32: reference_ops::Dequantize: float(double(scale) * (q - zero_point)).
    The double product is exact, so float32 arithmetic gives the very same float;
  * RELU / RELU6 int8: activations.cc QuantizedReluX -> ReluX: MultiplyByQuantizedMultiplier of
    (q - input_zp) by QuantizeMultiplier(input_scale / output_scale, divided in *float*), plus
    output zero point, clamped to [zp + roundf(0 / scale), zp + roundf(6 / scale)] (float32);
  * requantize int8 -> int8 (QUANTIZE with int8 input): reference_ops::Requantize with
    QuantizeMultiplier(double(input_scale) / double(output_scale)).
"""
from __future__ import annotations


import numpy as np

from ..qparams import RequantizeParams
from ..quant import multiply_by_quantized_multiplier, round_half_away_f64


def quantize_int8(x: np.ndarray, scale: float, zero_point: int, rounding: str = "half_away") -> np.ndarray:
    """rounding "half_away": TFLite's AffineQuantize; "half_even": ONNX QuantizeLinear (onnxruntime's MLAS)."""
    v = (np.asarray(x, dtype=np.float32) / np.float32(scale)).astype(np.float64)    # float32 division
    v = np.clip(v, -1024.0, 1024.0)          # beyond int8 either way; keeps the int32 cast defined
    rounded = np.rint(v) if rounding == "half_even" else round_half_away_f64(v)
    return np.clip(rounded + int(zero_point), -128, 127).astype(np.int8)


def dequantize_int8(q: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """Returns float32, bit-exact with TFLite."""
    return (float(np.float32(scale)) * (np.asarray(q, dtype=np.float64) - int(zero_point))).astype(np.float32)


def requantize_int8(q: np.ndarray, params: RequantizeParams) -> np.ndarray:
    y = multiply_by_quantized_multiplier(np.asarray(q, dtype=np.int64) - params.input_zero_point,
                                         params.multiplier, params.shift) + params.output_zero_point
    return np.clip(y, params.act_min, params.act_max).astype(np.int8)


relu_int8 = requantize_int8      # RELU / RELU6 on int8 is requantize + clamp with relu_params


def relu_f32(x: np.ndarray) -> np.ndarray:
    return np.maximum(np.asarray(x, dtype=np.float64), 0.0)


def relu6_f32(x: np.ndarray) -> np.ndarray:
    return np.clip(np.asarray(x, dtype=np.float64), 0.0, 6.0)
