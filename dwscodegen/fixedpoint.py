"""gemmlowp's fixed-point exp (fixedpoint.h, exp_on_negative_values) in NumPy, int32 raw values held in int64
arrays: TFLite's int8 Softmax computes its exps with it. The NumPy reference (reference/softmax.py) and the
backends that tabulate the exps of the 256 possible int8 differences (templates/simd/avx_elementwise.py) share
this one copy; templates/library/fixedpoint.c.j2 is the same code in C."""
from __future__ import annotations

import numpy as np

from .qparams import SCALED_DIFF_INTEGER_BITS
from .quant import INT32_MAX, INT32_MIN, rounding_divide_by_pot, saturating_rounding_doubling_high_mul

# gemmlowp constants (fixedpoint.h), raw Q0.31 unless noted.
EXP_CONSTANT_TERM = 1895147668            # exp(-1/8)
ONE_THIRD = 715827883                     # 1/3
EXP_BARREL = ((-2, 1672461947), (-1, 1302514674), (0, 790015084), (1, 290630308),
              (2, 39332535), (3, 720401), (4, 242))   # (exponent, exp(-2^exponent))
CONST_48_OVER_17 = 1515870810             # Q2.29
CONST_NEG_32_OVER_17 = -1010580540        # Q2.29


# ----------------------------------------------------------------------------------------------
# gemmlowp fixed point, int32 raw values held in int64 arrays
# ----------------------------------------------------------------------------------------------

def wrap_int32(x) -> np.ndarray:
    """Wrap to int32 (two's complement), as the C++ int32 arithmetic does."""
    x = np.asarray(x, dtype=np.int64)
    return ((x + (1 << 31)) % (1 << 32)) - (1 << 31)


def fixed_mul(a, b) -> np.ndarray:
    """FixedPoint * FixedPoint: SaturatingRoundingDoublingHighMul of the raw values."""
    return saturating_rounding_doubling_high_mul(a, b)


def saturating_rounding_multiply_by_pot(x, exponent: int) -> np.ndarray:
    """gemmlowp SaturatingRoundingMultiplyByPOT<exponent> for int32."""
    x = np.asarray(x, dtype=np.int64)
    if exponent == 0:
        return x
    if exponent < 0:
        return rounding_divide_by_pot(x, -exponent)
    threshold = (1 << (31 - exponent)) - 1
    shifted = wrap_int32(x << exponent)
    return np.where(x > threshold, INT32_MAX, np.where(x < -threshold, INT32_MIN, shifted))


def exp_on_interval_between_negative_one_quarter_and_0_excl(a) -> np.ndarray:
    """Q0.31 in [-1/4, 0) -> Q0.31 exp(a)."""
    x = wrap_int32(np.asarray(a, dtype=np.int64) + (1 << 28))          # a + 1/8
    x2 = fixed_mul(x, x)
    x3 = fixed_mul(x2, x)
    x4 = fixed_mul(x2, x2)
    x4_over_4 = saturating_rounding_multiply_by_pot(x4, -2)
    poly = saturating_rounding_multiply_by_pot(wrap_int32(fixed_mul(wrap_int32(x4_over_4 + x3), ONE_THIRD) + x2), -1)
    return wrap_int32(EXP_CONSTANT_TERM + fixed_mul(EXP_CONSTANT_TERM, wrap_int32(x + poly)))


def exp_on_negative_values(a, integer_bits: int = SCALED_DIFF_INTEGER_BITS) -> np.ndarray:
    """gemmlowp exp_on_negative_values: Q(integer_bits) raw a <= 0 -> Q0.31 raw exp(a)."""
    a = np.asarray(a, dtype=np.int64)
    fractional_bits = 31 - integer_bits
    one_quarter = 1 << (fractional_bits - 2)
    mask = one_quarter - 1
    a_mod_quarter_minus_one_quarter = wrap_int32((a & mask) - one_quarter)
    result = exp_on_interval_between_negative_one_quarter_and_0_excl(
        saturating_rounding_multiply_by_pot(a_mod_quarter_minus_one_quarter, integer_bits))   # Rescale<0>
    remainder = wrap_int32(a_mod_quarter_minus_one_quarter - a)
    for exponent, multiplier in EXP_BARREL:
        if integer_bits > exponent:
            bit = 1 << (fractional_bits + exponent)
            result = np.where((remainder & bit) != 0, fixed_mul(result, multiplier), result)
    if integer_bits > 5:
        clamp = -(1 << (36 - integer_bits))
        result = np.where(a < clamp, 0, result)
    return np.where(a == 0, INT32_MAX, result)
