"""TE arithmetic shared by the TVM backend's computes: TFLite's int8 requantize
(MultiplyByQuantizedMultiplier as int32/int64 expressions), saturation, rounding of floats half away
from zero without libm, and onnxruntime's round-half-even requantize.

TVM is imported inside the functions: importing this module costs nothing.
"""
from __future__ import annotations

from dataclasses import dataclass

from ...quant import INT32_MAX


def _imm(value, dtype: str):
    from tvm import tirx
    return tirx.const(value, dtype) if isinstance(value, int) else value


def doubling_high_mul(x, multiplier, shift, left_shift: bool):
    """SaturatingRoundingDoublingHighMul(x * 2^max(shift, 0), multiplier) as int32.

    `multiplier` and `shift` are int32 expressions (per-channel loads) or Python ints.  The
    multiplier is >= 0 (tflite QuantizeMultiplier of a positive scale), which makes two
    simplifications exact: sign(a * multiplier) is sign(a) wherever the product is non-zero (the
    nudge is chosen from `a`, not from the int64 product, and where the product is 0 both nudges
    truncate to 0), and INT32_MIN * INT32_MIN, the one saturating case, cannot occur."""
    from tvm import te, tirx
    i32, i64 = "int32", "int64"
    a = x
    if left_shift:
        # TFLite multiplies by (1 << left) in int32, wrapping; as int64 then narrowed (gcc and clang
        # wrap on narrowing; a signed int32 overflow would be undefined behaviour in C).
        left = te.max(_imm(shift, i32), tirx.const(0, i32)).astype(i64)
        a = (x.astype(i64) * tirx.shift_left(tirx.const(1, i64), left)).astype(i32)
    ab = a.astype(i64) * _imm(multiplier, i64).astype(i64)
    nudge = tirx.Select(a >= tirx.const(0, i32), tirx.const(1 << 30, i64), tirx.const(1 - (1 << 30), i64))
    # C '/' truncates toward zero, as TFLite's int64 division does.
    return tirx.truncdiv(ab + nudge, tirx.const(1 << 31, i64)).astype(i32)


def rounding_divide(high, shift, max_right: int = 31, left_shift: bool = True):
    """RoundingDivideByPOT(high, max(-shift, 0)): round half away from zero.

    `shift` is an int32 expression (per-channel load) or a Python int.  For loads, what is known
    of the constants keeps the C short: `max_right` bounds the right shift (0: no channel shifts
    right, so this is the identity), and without `left_shift` no shift is positive, so the right
    shift is simply -shift."""
    from tvm import te, tirx
    i32, i64 = "int32", "int64"
    c32 = lambda v: tirx.const(v, i32)  # noqa: E731
    if isinstance(shift, int):
        max_right = max(-shift, 0)
        right = c32(max_right)
    else:
        right = te.max(c32(0) - shift, c32(0)) if left_shift else c32(0) - shift
    if max_right == 0:
        return high
    if max_right <= 30:
        mask = tirx.shift_left(c32(1), right) - c32(1)
    else:   # (1 << 31) - 1 does not fit an int32 shift: build the mask in int64
        mask = (tirx.shift_left(tirx.const(1, i64), right.astype(i64)) - tirx.const(1, i64)).astype(i32)
    remainder = tirx.bitwise_and(high, mask)
    threshold = tirx.shift_right(mask, c32(1)) + tirx.Select(high < c32(0), c32(1), c32(0))
    return tirx.shift_right(high, right) + tirx.Select(remainder > threshold, c32(1), c32(0))




@dataclass(frozen=True)
class BoundedRequant:
    """MultiplyByQuantizedMultiplier(x, multiplier, shift) + zero_point for an int32 x with |x| <= bound and
    constant parameters (the glue ops' requantization), in two steps so that a stage boundary can sit between
    them: `prescale(x)` (x * 2^(left + 1)) and `apply(A)`.

    Where the bound allows, one 32x32->64 product: with A = x * 2^(left + 1) and s = A >> 31, the result is
    ((A * m + 2^31 + (2^(e-1) + s) * 2^32) >> (32 + e)) + zero_point (no 2^(e-1) + s where e = 0), the identity
    the templates road's SIMD requantization rests on (templates/simd/__init__.py, common.requant_plan), computed
    here in int64: exact for m in [0, 2^31) and e <= 31 wherever A fits int32 (then TFLite's int32 x << left does
    not wrap either). gcc makes it SMULL, ADDS/ADC and ASR on Cortex-M, for the generic form's ~20 instructions of
    nudge selection, 64-bit division and rounding fix-up. The prescale belongs in the stage that produces x: seen
    together, the simplifier folds the doubling into the multiplier, which then leaves int32 (a 64x32 product).
    Elsewhere (`exact` False) the generic form, and prescale is the identity."""
    multiplier: int
    shift: int
    zero_point: int
    exact: bool

    @staticmethod
    def make(multiplier: int, shift: int, bound: int, zero_point: int = 0) -> "BoundedRequant":
        exact = 0 <= multiplier <= INT32_MAX and -shift <= 31 and bound << (max(shift, 0) + 1) <= INT32_MAX
        return BoundedRequant(multiplier, shift, zero_point, exact)

    def prescale(self, x):
        from tvm import tirx
        return x * tirx.const(1 << (max(self.shift, 0) + 1), "int32") if self.exact else x

    def apply(self, a):
        from tvm import tirx
        i32, i64 = "int32", "int64"
        if not self.exact:
            y = rounding_divide(doubling_high_mul(a, self.multiplier, self.shift, self.shift > 0), self.shift)
            return y + tirx.const(self.zero_point, i32) if self.zero_point else y
        e = max(-self.shift, 0)
        t = a.astype(i64) * tirx.const(self.multiplier, i64) + tirx.const(1 << 31, i64)
        if e:
            rounding = tirx.shift_right(a, tirx.const(31, i32)) + tirx.const(1 << (e - 1), i32)
            t = t + rounding.astype(i64) * tirx.const(1 << 32, i64)
        y = tirx.shift_right(t, tirx.const(32 + e, i64)).astype(i32)
        return y + tirx.const(self.zero_point, i32) if self.zero_point else y


def requantized_bound(bound: int, multiplier: int, shift: int) -> int:
    """A bound of |MultiplyByQuantizedMultiplier(x, multiplier, shift)| for |x| <= bound (multiplier < 2^31)."""
    left, e = max(shift, 0), max(-shift, 0)
    return ((bound << left) * multiplier >> 31 >> e) + 1


def int8_offset_bound(offset: int) -> int:
    """max |v + offset| over int8 v."""
    return max(abs(-128 + offset), abs(127 + offset))


def add_bounds(q) -> tuple[int, int, int]:
    """Bounds of int8 Add's (AddQParams q) values: each input offset and shifted left (|v + offset| <= 255, the
    requantization's input), and their sum once rescaled (the output requantization's input). A constant operand
    rescaled at generation time (qparams.add_rescaled) is inside the same bound."""
    a, b = (int8_offset_bound(o) << q.left_shift for o in (q.input1_offset, q.input2_offset))
    total = (requantized_bound(a, q.input1_multiplier, q.input1_shift)
             + requantized_bound(b, q.input2_multiplier, q.input2_shift))
    return a, b, total


def clamp_int8(y, low: int, high: int):
    from tvm import te, tirx
    return te.min(te.max(y, tirx.const(low, "int32")), tirx.const(high, "int32")).astype("int8")


def clamp_float(y, low: float | None, high: float | None):
    from tvm import te, tirx
    if low is not None:
        y = te.max(y, tirx.const(float(low), "float32"))
    if high is not None:
        y = te.min(y, tirx.const(float(high), "float32"))
    return y


def round_half_away(v, dtype: str):
    """int32 round-half-away-from-zero of a float32/float64 expression, as the library's dws_round_f32
    / dws_round_f64 (and std::round): clamped to +-2^20 first (every caller saturates to int8 after,
    and the conversion stays defined), truncated, then the exact fraction decides."""
    from tvm import te, tirx
    i32 = "int32"
    bound = tirx.const(1048576.0, dtype)
    c = te.min(te.max(v, -bound), bound)
    t = c.astype(i32)                                   # truncates toward zero
    frac = c - t.astype(dtype)                          # exact
    one, zero = tirx.const(1, i32), tirx.const(0, i32)
    return (t + tirx.Select(frac >= tirx.const(0.5, dtype), one, zero)
            - tirx.Select(frac <= tirx.const(-0.5, dtype), one, zero))


def round_half_even(v):
    """int32 of a float32 `v` with |v| < 2^31, rounded half to even, in integer arithmetic on the truncation
    (no libm, no 1.5 * 2^23 trick that the simplifier could fold away)."""
    from tvm import tirx
    f32, i32 = "float32", "int32"
    t = v.astype(i32)                                   # truncates toward zero
    frac = v - t.astype(f32)                            # exact
    odd = tirx.bitwise_and(t, tirx.const(1, i32)) == tirx.const(1, i32)
    half = tirx.const(0.5, f32)
    up = tirx.Select(tirx.any(frac > half, tirx.all(frac == half, odd)), tirx.const(1, i32), tirx.const(0, i32))
    down = tirx.Select(tirx.any(frac < -half, tirx.all(frac == -half, odd)), tirx.const(1, i32), tirx.const(0, i32))
    return t + up - down


def requantize_onnx(acc, scale, output_offset: int, act_min: int, act_max: int):
    """onnxruntime's MlasRequantizeOutput: float32(acc) * scale (float32), clamped to
    [act_min - zp, act_max - zp], rounded half to even, plus the zero point, as int8.
    The rounding is integer arithmetic on the truncation (no libm, no 1.5 * 2^23 trick that the
    simplifier could fold away): |v| <= 255 after the clamp, so the conversions are exact."""
    from tvm import te, tirx
    f32, i32 = "float32", "int32"
    v = acc.astype(f32) * scale
    low, high = tirx.const(float(act_min - output_offset), f32), tirx.const(float(act_max - output_offset), f32)
    y = round_half_even(te.min(te.max(v, low), high))
    if output_offset:
        y = y + tirx.const(output_offset, i32)
    return y.astype("int8")
