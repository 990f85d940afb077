"""TFLite's int8 arithmetic of the elementwise ops (reference kernels, default double rounding), vectorised
in NumPy, and the 256-entry table of every int8 elementwise op whose output is a function of one int8 value.

The NumPy reference (reference/binary.py, reference/activations.py) computes with these functions and both
backends store the tables they make, so the C can only differ from the reference in the lookup:
  * ADD, MUL, PRELU: reference_integer_ops::Add / Mul and reference_ops::Prelu with qparams.py's
    parameters (broadcasting only changes which elements meet);
  * HARD_SWISH: reference_ops::HardSwish's int16 fixed-point recipe; LEAKY_RELU: QuantizeLeakyRelu;
  * LOGISTIC, TANH: LUTPopulate<int8_t>, the table TFLite's own Prepare builds (ai-edge-litert 2.3's
    BUILTIN_REF kernels look it up: tests/test_elementwise_ops.py measures every entry against them).
A table (`table`, index q + 128) stands for HardSwish, Logistic, Tanh, LeakyRelu, and for Add, Mul, Maximum,
Minimum and PRelu whose other operand is a constant of one element (Keras' Rescaling: x * s + o).
"""
from __future__ import annotations

import numpy as np

from .ir import Graph, Op
from .qparams import (AddQParams, HardSwishParams, LeakyReluParams, MulQParams, PReluQParams, add_qparams,
                      add_rescaled, hard_swish_params, leaky_relu_params, mul_qparams, prelu_qparams, scale_zp)
from .quant import float_to_int32, multiply_by_quantized_multiplier, round_half_away_f64, wrap_int16
from .quant import rounding_divide_by_pot_int16 as rdbpot16
from .quant import saturating_doubling_high_mul_int16 as sdhm16
from .quant import saturating_left_shift_int16 as sat_shift16
from .quant import saturating_rounding_doubling_high_mul_int16 as srdhm16


def add_int8(a: np.ndarray, b: np.ndarray, q: AddQParams) -> np.ndarray:
    """Both inputs rescaled to twice the larger input scale with 20 bits of headroom, summed, requantized."""
    sa = add_rescaled(a, q.input1_offset, q.input1_multiplier, q.input1_shift, q.left_shift).astype(np.int64)
    sb = add_rescaled(b, q.input2_offset, q.input2_multiplier, q.input2_shift, q.left_shift).astype(np.int64)
    y = multiply_by_quantized_multiplier(sa + sb, q.output_multiplier, q.output_shift) + q.output_offset
    return np.clip(y, q.act_min, q.act_max).astype(np.int8)


def mul_int8(a: np.ndarray, b: np.ndarray, q: MulQParams) -> np.ndarray:
    """MultiplyByQuantizedMultiplier of the product of the offset inputs."""
    product = (np.asarray(a, dtype=np.int64) + q.input1_offset) * (np.asarray(b, dtype=np.int64) + q.input2_offset)
    y = multiply_by_quantized_multiplier(product, q.multiplier, q.shift) + q.output_offset
    return np.clip(y, q.act_min, q.act_max).astype(np.int8)


def maximum(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.where(a > b, a, b)          # el1 > el2 ? el1 : el2, as TFLite's MaximumOp (raw int8 values)


def minimum(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.where(a < b, a, b)


def prelu_int8(x: np.ndarray, alpha: np.ndarray, q: PReluQParams) -> np.ndarray:
    v = np.asarray(x, dtype=np.int64) + q.input_offset
    negative = multiply_by_quantized_multiplier(v * (np.asarray(alpha, dtype=np.int64) + q.alpha_offset),
                                                q.multiplier_2, q.shift_2)
    y = np.where(v >= 0, multiply_by_quantized_multiplier(v, q.multiplier_1, q.shift_1), negative)
    return np.clip(y + q.output_offset, -128, 127).astype(np.int8)


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


UNARY = ("HardSwish", "Logistic", "Tanh", "LeakyRelu")
BINARY = {"Add": lambda g, op: lambda a, b: add_int8(a, b, add_qparams(g, op)),
          "Mul": lambda g, op: lambda a, b: mul_int8(a, b, mul_qparams(g, op)),
          "Maximum": lambda g, op: maximum, "Minimum": lambda g, op: minimum,
          "PRelu": lambda g, op: lambda x, alpha: prelu_int8(x, alpha, prelu_qparams(g, op))}


def has_table(graph: Graph, op: Op) -> bool:
    """int8 and a function of one int8 value: an activation, or a binary op beside a one-element constant."""
    if graph.op_dtype(op) != "int8":
        return False
    if op.type in UNARY or op.type == "Table":
        return True
    return op.type in BINARY and any(graph.tensor(n).is_const and graph.tensor(n).size == 1 for n in op.inputs)


def table(graph: Graph, op: Op) -> np.ndarray:
    """The op's output for each int8 input q (index q + 128), exactly as TFLite computes it (has_table)."""
    q = np.arange(-128, 128)
    if op.type == "Table":
        return np.asarray(op.attrs.table, np.int8)
    if op.type in BINARY:
        operands = [graph.tensor(n).data.reshape(-1) if graph.tensor(n).is_const else q for n in op.inputs]
        return BINARY[op.type](graph, op)(*operands).astype(np.int8)
    qin, qout = scale_zp(graph, op.inputs[0]), scale_zp(graph, op.outputs[0])
    if op.type == "HardSwish":
        return hard_swish_int8(q, hard_swish_params(*qin, *qout))
    if op.type == "LeakyRelu":
        return leaky_relu_int8(q, leaky_relu_params(op.attrs.alpha, *qin, *qout))
    return lut_int8({"Logistic": logistic_f32, "Tanh": tanh_f32}[op.type], *qin, *qout)
