"""SOFTMAX: float32 and int8 (TFLite semantics), array level.

int8 follows TFLite's `reference_ops::Softmax` for quantized types (reference/softmax.h): the input
difference to the row maximum is scaled to Q5.26 by PreprocessSoftmaxScaling (kScaledDiffIntegerBits
= 5), exponentiated with gemmlowp's fixed-point `exp_on_negative_values`, accumulated in Q12.19,
inverted with `one_over_one_plus_x_for_x_in_0_1` (GetReciprocal) and rescaled to the int8 output
(scale 1/256, zero point -128). Every helper below is a literal port of the gemmlowp/TFLite integer
code, vectorised; templates/library/fixedpoint.c.j2 is the same code in C.

Any depth and any input scale. TFLite's reference kernel (ai-edge-litert 2.3) computes this recipe
only inside two limits and aborts the process (TFLITE_CHECK, SIGABRT) outside them:
1. Prepare: beta * input_scale * 2^26 must exceed 1 (QuantizeMultiplierGreaterThanOne in
   PreprocessSoftmaxScaling), i.e. beta * input_scale > 2^-26 ~ 1.49e-8. Converters do write smaller
   scales (logits calibrated to a near-constant range: the int8 Keras classifiers of the zoo have
   7.8e-9). Here a product <= 1 keeps the same recipe with the general form of its multiplication,
   tflite::MultiplyByQuantizedMultiplier (a right shift for a product < 1/2): `input_left_shift`
   may then be negative, and diff_min is clamped to int32 (every int8 difference counts).
2. Invoke: the final RoundingDivideByPOT exponent, num_bits_over_unit + 23, must be <= 31, i.e. the
   row's sum of exps (int32, Q12.19) below 2^28 = 512.0: about 512 entries within rounding of the row
   maximum. With more, every probability is below 1/512, which the int8 output (steps of 1/256, by
   RoundingDivideByPOT of a product in [0, 2^31) by >= 32 bits) rounds to 0: the row is all -128.
   That is also what TFLite's builtin (optimized) kernel answers there, except at exact ties (a sum
   of exactly 512 in its float arithmetic).
The int32 sum itself wraps around exactly as TFLite's does (from 4096 entries at the maximum on):
wherever TFLite's reference kernel produces a result, this is bit for bit that result.
`tflite_reference_rejects` says where TFLite's kernel would abort (verify's TFLite oracle uses it).
"""
from __future__ import annotations


import numpy as np

from ..qparams import SoftmaxParams, softmax_input_multiplier, softmax_params
from ..quant import INT32_MAX, multiply_by_quantized_multiplier, rounding_divide_by_pot
from ..fixedpoint import (CONST_48_OVER_17, CONST_NEG_32_OVER_17,  # noqa: F401 (exp_*: the reference names them)
                          exp_on_interval_between_negative_one_quarter_and_0_excl,
                          exp_on_negative_values, saturating_rounding_multiply_by_pot)
from ..fixedpoint import fixed_mul as _mul
from ..fixedpoint import wrap_int32 as _i32

ACCUMULATION_INTEGER_BITS = 12    # Q12.19 sum of exps
OUTPUT_SCALE = 1.0 / 256.0        # what TFLite requires of an int8 softmax output
OUTPUT_ZERO_POINT = -128

# gemmlowp fixed point, int32 raw values held in int64 arrays: dwscodegen/fixedpoint.py

def rounding_half_sum(a, b) -> np.ndarray:
    s = np.asarray(a, dtype=np.int64) + np.asarray(b, dtype=np.int64)
    sign = np.where(s >= 0, 1, -1)
    total = s + sign
    return np.where(total >= 0, total // 2, -((-total) // 2))    # C++ division truncates


def one_over_one_plus_x_for_x_in_0_1(a) -> np.ndarray:
    """gemmlowp: Q0.31 a in [0, 1) -> Q0.31 1/(1+a) by three Newton-Raphson steps in Q2.29."""
    half_denominator = rounding_half_sum(a, INT32_MAX)
    x = _i32(CONST_48_OVER_17 + _mul(half_denominator, CONST_NEG_32_OVER_17))
    one_q2 = 1 << 29
    for _ in range(3):
        half_denominator_times_x = _mul(half_denominator, x)
        one_minus = _i32(one_q2 - half_denominator_times_x)
        x = _i32(x + saturating_rounding_multiply_by_pot(_mul(x, one_minus), 2))   # Rescale<2> of Q4
    return saturating_rounding_multiply_by_pot(x, 1)                                   # Rescale<0>(Q1)


def count_leading_zeros_u32(x) -> np.ndarray:
    x = np.asarray(x, dtype=np.int64) & 0xFFFFFFFF
    n = np.full(x.shape, 32, dtype=np.int64)
    for i in range(32):
        n = np.where((x >> i) != 0, 31 - i, n)
    return n


def get_reciprocal(x, x_integer_digits: int) -> tuple[np.ndarray, np.ndarray]:
    """TFLite GetReciprocal: (Q0.31 shifted scale, num_bits_over_unit) of x > 0 in Q(x_integer_digits)."""
    x = np.asarray(x, dtype=np.int64)
    headroom_plus_one = count_leading_zeros_u32(x)
    num_bits_over_unit = x_integer_digits - headroom_plus_one
    shifted_sum_minus_one = _i32(((x << headroom_plus_one) & 0xFFFFFFFF) - (1 << 31))
    return one_over_one_plus_x_for_x_in_0_1(shifted_sum_minus_one), num_bits_over_unit


# ----------------------------------------------------------------------------------------------
# The ops
# ----------------------------------------------------------------------------------------------

def _exps_and_sums(x: np.ndarray, params: SoftmaxParams):
    """Rows of x: (live mask, Q0.31 exps, int32 Q12.19 sums of the live exps), as TFLite's first loop."""
    rows = np.asarray(x).reshape(-1, np.shape(x)[-1]).astype(np.int64)
    diff = rows - rows.max(axis=1, keepdims=True)
    live = diff >= params.diff_min
    # TFLite: MultiplyByQuantizedMultiplierGreaterThanOne, the shift >= 0 case of this
    scaled = multiply_by_quantized_multiplier(diff, params.input_multiplier, params.input_left_shift)
    exps = exp_on_negative_values(scaled)
    rescaled = saturating_rounding_multiply_by_pot(exps, -ACCUMULATION_INTEGER_BITS)   # Rescale<12>
    sum_of_exps = _i32(np.where(live, rescaled, 0).sum(axis=1, keepdims=True))         # wraps like int32
    return live, exps, sum_of_exps


def _beyond_exponent(sum_of_exps: np.ndarray) -> np.ndarray:
    """Rows whose final exponent num_bits_over_unit + 23 exceeds 31: uint32(sum) >= 2^28."""
    return (np.asarray(sum_of_exps, dtype=np.int64) & 0xFFFFFFFF) >= (1 << 28)


def tflite_reference_rejects(x: np.ndarray | None, input_scale: float,
                             beta: float) -> tuple[str | None, np.ndarray | None]:
    """Where TFLite's int8 reference kernel aborts: (why its Prepare aborts, or None; for an input x,
    a bool per row of x: the kernel aborts on it)."""
    real = softmax_input_multiplier(input_scale, beta)
    reason = None
    if not real > 1.0:
        reason = (f"beta * input scale * 2^26 = {real:.4g} <= 1 (input scale {input_scale:.4g}, beta {beta:g}): "
                  "its Prepare needs beta * input scale > 2^-26 ~ 1.49e-8")
    if x is None:
        return reason, None
    rows = int(np.prod(np.shape(x)[:-1]))
    if reason:
        return reason, np.ones(rows, dtype=bool)
    _, _, sums = _exps_and_sums(x, softmax_params(input_scale, beta))
    return None, _beyond_exponent(sums).reshape(rows)


def softmax_int8(x: np.ndarray, params: SoftmaxParams) -> np.ndarray:
    """Softmax over the last axis; int8 output with scale 1/256 and zero point -128. Any depth and
    scale: where TFLite's reference kernel aborts, the continuation of the module docstring."""
    x = np.asarray(x)
    live, exps, sum_of_exps = _exps_and_sums(x, params)
    shifted_scale, num_bits_over_unit = get_reciprocal(sum_of_exps, ACCUMULATION_INTEGER_BITS)
    exponent = num_bits_over_unit + 31 - 8
    # exponent > 31, where TFLite's TFLITE_CHECK aborts: the exact quotient rounds to 0
    unsat = np.where(_beyond_exponent(sum_of_exps), 0,
                     rounding_divide_by_pot(_mul(shifted_scale, exps), np.minimum(exponent, 31)))
    out = np.clip(unsat - 128, -128, 127)
    return np.where(live, out, -128).astype(np.int8).reshape(x.shape)


def softmax_f32(x: np.ndarray, beta: float = 1.0) -> np.ndarray:
    """Float softmax over the last axis, in float64 (the accurate side of every comparison)."""
    x = np.asarray(x, dtype=np.float64)
    e = np.exp((x - x.max(axis=-1, keepdims=True)) * float(np.float32(beta)))
    return e / e.sum(axis=-1, keepdims=True)
