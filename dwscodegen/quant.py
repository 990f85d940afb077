"""TFLite fixed-point arithmetic (reference kernels, default double rounding), vectorised in NumPy.

These functions define the int8 semantics of the whole tool: the NumPy reference uses them directly
and the C backends emit code that computes exactly the same integers.
"""
from __future__ import annotations

import math

import numpy as np

INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1
# A uint8 activation (onnxruntime's default QuantType.QUInt8) is its int8 twin: q - 128 with zero point
# zp - 128 stands for the same real values, and every rounding and clamp of uint8 arithmetic (round(x / s) + zp
# saturated to [0, 255]) is the int8 one shifted by the same 128, so the shift is exact.
UINT8_SHIFT = 128


def quantize_multiplier(real: float) -> tuple[int, int]:
    """Real multiplier -> (Q31 multiplier, shift), as tflite::QuantizeMultiplier."""
    if real == 0.0:
        return 0, 0
    q, shift = math.frexp(real)
    q_fixed = round(q * (1 << 31))       # std::round: halves away from zero (q > 0 here)
    if q_fixed == (1 << 31):
        q_fixed //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    return int(q_fixed), int(shift)


def saturating_rounding_doubling_high_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    ab = a * b
    nudge = np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    total = ab + nudge
    # C++ integer division truncates toward zero.
    high = np.where(total >= 0, total >> 31, -((-total) >> 31))
    overflow = (a == INT32_MIN) & (b == INT32_MIN)
    return np.where(overflow, INT32_MAX, high).astype(np.int64)


def rounding_divide_by_pot(x: np.ndarray, exponent: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.int64)
    exponent = np.asarray(exponent, dtype=np.int64)
    mask = (np.int64(1) << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return (x >> exponent) + (remainder > threshold)


def multiply_by_quantized_multiplier(x: np.ndarray, multiplier: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """tflite::MultiplyByQuantizedMultiplier; int32 wrap-around of the left shift as in C++."""
    shift = np.asarray(shift, dtype=np.int64)
    left = np.maximum(shift, 0)
    right = np.maximum(-shift, 0)
    shifted = np.asarray(x, dtype=np.int64) << left
    shifted = ((shifted + (1 << 31)) % (1 << 32)) - (1 << 31)
    return rounding_divide_by_pot(saturating_rounding_doubling_high_mul(shifted, multiplier), right)


def quantize_value(real: float, scale: float, zero_point: int) -> int:
    """tflite's Quantize of an activation bound: zero_point + round(real / scale), divided in float32
    as the C++ does (the scale is a float there)."""
    return int(zero_point + round_half_away(float(np.float32(real) / np.float32(scale))))


def round_half_away(x: float) -> int:
    return int(math.floor(x + 0.5)) if x >= 0 else -int(math.floor(-x + 0.5))


def activation_range_int8(low: float | None, high: float | None, scale: float, zero_point: int) -> tuple[int, int]:
    """tflite CalculateActivationRangeQuantized for int8 outputs."""
    qmin, qmax = -128, 127
    if low is not None:
        qmin = max(qmin, quantize_value(low, scale, zero_point))
    if high is not None:
        qmax = min(qmax, quantize_value(high, scale, zero_point))
    return qmin, qmax


def round_half_away_f64(v: np.ndarray) -> np.ndarray:
    """std::round on doubles, exactly (no x + 0.5 double rounding): trunc, then fix up the fraction."""
    v = np.asarray(v, dtype=np.float64)
    t = np.trunc(v)
    frac = v - t                       # exact
    return t + (frac >= 0.5) - (frac <= -0.5)



# --- int16 fixed point (gemmlowp on int16_t), as TFLite's int8 HARD_SWISH computes in ------------

INT16_MIN, INT16_MAX = -(1 << 15), (1 << 15) - 1


def wrap_int16(x: np.ndarray) -> np.ndarray:
    """Conversion of an int to int16_t (modulo 2^16, as every supported compiler does it)."""
    return ((np.asarray(x, dtype=np.int64) + (1 << 15)) % (1 << 16)) - (1 << 15)


def _c_div_pot(x: np.ndarray, bits: int) -> np.ndarray:
    """C integer division by 2^bits (truncates toward zero)."""
    return np.where(x >= 0, x >> bits, -((-x) >> bits))


def saturating_rounding_doubling_high_mul_int16(a: np.ndarray, b) -> np.ndarray:
    a, b = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
    ab = a * b
    high = _c_div_pot(ab + np.where(ab >= 0, 1 << 14, 1 - (1 << 14)), 15)
    return np.where((a == b) & (a == INT16_MIN), INT16_MAX, high)


def saturating_doubling_high_mul_int16(a: np.ndarray, b) -> np.ndarray:
    """TFLite's SaturatingDoublingHighMul (like SQDMULH): the high half truncated toward zero."""
    a, b = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
    return np.where((a == b) & (a == INT16_MIN), INT16_MAX, _c_div_pot(a * b, 15))


def saturating_left_shift_int16(x: np.ndarray, amount: int) -> np.ndarray:
    return np.clip(np.asarray(x, dtype=np.int64) << amount, INT16_MIN, INT16_MAX)


def rounding_divide_by_pot_int16(x: np.ndarray, exponent: int) -> np.ndarray:
    """gemmlowp RoundingDivideByPOT<int16_t>: mask and threshold are int16_t too, so from exponent 16 on
    the mask wraps to -1 (and every value rounds to 1 or -1), as in TFLite."""
    x = np.asarray(x, dtype=np.int64)
    mask = int(wrap_int16((1 << exponent) - 1))
    remainder = x & mask
    threshold = wrap_int16((mask >> 1) + (x < 0))
    return wrap_int16((x >> exponent) + (remainder > threshold))


def float_to_int32(v: np.ndarray) -> np.ndarray:
    """static_cast<int32_t> of a float as x86 does it (the interpreter's platform): truncation, and
    INT32_MIN for NaN and for values beyond the int32 range (undefined in C++, what cvttss2si gives)."""
    v = np.asarray(v, dtype=np.float64)
    ok = np.isfinite(v) & (np.abs(v) < 2.0**31)
    return np.where(ok, np.trunc(np.where(ok, v, 0.0)), INT32_MIN).astype(np.int64)
