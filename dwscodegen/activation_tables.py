"""int8 HardSwish, Logistic, Tanh and LeakyRelu as tables of their 256 possible outputs.

Each is a function of one int8 value, so the NumPy reference and both backends read one table per op
(index q + 128), built here exactly as TFLite computes that function: LUTPopulate<int8_t> for LOGISTIC
and TANH (TFLite's own Prepare builds this very table; ai-edge-litert 2.3's BUILTIN_REF kernels look
it up, as tests/test_elementwise_ops.py measures), the int16 fixed-point recipe of
reference_ops::HardSwish and reference_ops::QuantizeLeakyRelu for the other two, with the parameters
of qparams.py.
"""
from __future__ import annotations

import numpy as np

from .ir import Graph, Op
from .qparams import HardSwishParams, LeakyReluParams, hard_swish_params, leaky_relu_params, scale_zp
from .quant import float_to_int32, multiply_by_quantized_multiplier, round_half_away_f64, wrap_int16
from .quant import rounding_divide_by_pot_int16 as rdbpot16
from .quant import saturating_doubling_high_mul_int16 as sdhm16
from .quant import saturating_left_shift_int16 as sat_shift16
from .quant import saturating_rounding_doubling_high_mul_int16 as srdhm16


def hard_swish_int8(q: np.ndarray, p: HardSwishParams) -> np.ndarray:
    """reference_ops::HardSwish<int8_t>, int16 step by step (see its comments in hard_swish.h)."""
    hires = (np.asarray(q, dtype=np.int64) - p.input_zero_point) * 128
    preshift = srdhm16(hires, p.output_multiplier)
    reluish = hires
    if p.reluish_exponent > 0:      # all but the last bit of left shift before the multiply
        reluish = sat_shift16(reluish, p.reluish_exponent - 1)
    reluish = srdhm16(reluish, p.reluish_multiplier)
    if p.reluish_exponent > 0:
        reluish = sat_shift16(reluish, 1)
    elif p.reluish_exponent < 0:
        reluish = rdbpot16(reluish, -p.reluish_exponent)
    reluish = (reluish + (1 << 15)) >> 1                                 # [-1, 1] -> [0, 1]
    out = rdbpot16(sdhm16(reluish, preshift), -p.output_exponent)
    return np.clip(wrap_int16(out + p.output_zero_point), -128, 127).astype(np.int8)


def lut_int8(transform, input_scale: float, input_zero_point: int, output_scale: float,
             output_zero_point: int) -> np.ndarray:
    """LUTPopulate<int8_t> (TFLite's int8 LOGISTIC and TANH Prepare): for every q in [-128, 127] (table
    index q + 128), transform(float32(scale * (q - zp))) in float32, times the float32 1 / output_scale,
    rounded half away from zero, plus the zero point, clamped. `transform` maps float32 to float32."""
    q = np.arange(-128, 128)
    with np.errstate(over="ignore", invalid="ignore"):
        x = np.float32(input_scale) * (q - int(input_zero_point)).astype(np.float32)
        y = transform(x).astype(np.float32) * (np.float32(1.0) / np.float32(output_scale))
        rescaled = round_half_away_f64(y.astype(np.float64)).astype(np.float32)     # TfLiteRound (roundf)
        quantized = float_to_int32(rescaled + np.float32(output_zero_point))
    return np.clip(quantized, -128, 127).astype(np.int8)


def logistic_f32(x: np.ndarray) -> np.ndarray:
    """1.0f / (1.0f + std::exp(-x)) in float32 (exp correctly rounded, which TFLite's libm matches)."""
    with np.errstate(over="ignore"):
        e = np.exp(-x.astype(np.float64)).astype(np.float32)
    return np.float32(1.0) / (np.float32(1.0) + e)


def tanh_f32(x: np.ndarray) -> np.ndarray:
    return np.tanh(x.astype(np.float64)).astype(np.float32)


def leaky_relu_int8(q: np.ndarray, p: LeakyReluParams) -> np.ndarray:
    x = np.asarray(q, dtype=np.int64) - p.input_zero_point
    scaled = multiply_by_quantized_multiplier(x, p.alpha_multiplier, p.alpha_shift)
    y = np.where(x >= 0, multiply_by_quantized_multiplier(x, p.identity_multiplier, p.identity_shift),
                 -scaled if p.alpha_negative else scaled)
    return np.clip(y + p.output_zero_point, -128, 127).astype(np.int8)


def activation_table(graph: Graph, op: Op) -> np.ndarray:
    """int8 HardSwish, Logistic, Tanh, LeakyRelu as a table of 256 outputs (index q + 128): the function of
    one int8 value that TFLite computes (a LUT for Logistic and Tanh in TFLite itself, fixed-point
    arithmetic for HardSwish and LeakyRelu), evaluated once per possible input."""
    qin, qout = scale_zp(graph, op.inputs[0]), scale_zp(graph, op.outputs[0])
    q = np.arange(-128, 128)
    if op.type == "HardSwish":
        return hard_swish_int8(q, hard_swish_params(*qin, *qout))
    if op.type == "LeakyRelu":
        return leaky_relu_int8(q, leaky_relu_params(op.attrs.alpha, *qin, *qout))
    return lut_int8({"Logistic": logistic_f32, "Tanh": tanh_f32}[op.type], *qin, *qout)
