"""TE computes of the TVM backend: one PrimFunc per op, float32 and int8 (TFLite semantics).

Every op is a pipeline of named stages that the schedules (tvm_schedules.py) place:

    conv:  [pad] -> acc (reduction) -> [biased -> high (int8)] -> output
    add:   [high_a, high_b, sum, high (int8)] -> output

`pad` only exists with explicit padding and is always compute_inline'd, so padding costs a predicate
and no buffer.  For int8 the padded value is (x + input_offset) inside and 0 outside, i.e. padding
contributes nothing, exactly as TFLite skips it.

The int8 requantize is TFLite's MultiplyByQuantizedMultiplier written out as explicit int32/int64 TE
expressions: `tirx.q_multiply_shift` does not lower with a per-channel shift and its per-axis variant
rounds once, not with TFLite's double rounding.  Kernels store the SaturatingRoundingDoublingHighMul
result (`high`) in its own stage inside the channel loop: CSE leaves expressions with loads alone,
and one inlined expression would repeat the int64 product several times (and lower slowly).

TVM is imported inside the functions: importing this module costs nothing.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ConvSpec:
    """Everything the TE compute of one conv-like op depends on (shapes, attributes, int8 constants
    that are baked into the code as immediates)."""
    kind: str                     # "depthwise" | "conv" | "pointwise"
    dtype: str                    # "float32" | "int8"
    in_shape: tuple[int, int, int, int]     # N, H, W, C
    out_shape: tuple[int, int, int, int]    # N, OH, OW, OC
    kernel: tuple[int, int]
    stride: tuple[int, int]
    dilation: tuple[int, int]
    pad: tuple[int, int, int, int]          # top, bottom, left, right
    multiplier: int = 1                      # depthwise channel multiplier
    # float32: fused activation bounds (None = unbounded)
    act_low: float | None = None
    act_high: float | None = None
    # int8
    input_offset: int = 0         # 0 when folded into the bias
    output_offset: int = 0
    act_min: int = -128
    act_max: int = 127
    left_shift: bool = False      # some channel has shift > 0 (a left shift before the high mul)
    max_right: int = 31           # largest right shift (-shift) of any channel, 0 = none

    @property
    def padded(self) -> bool:
        return any(self.pad)


# ----------------------------------------------------------------------------- int8 requantize

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


def _clamp_int8(y, low: int, high: int):
    from tvm import te, tirx
    return te.min(te.max(y, tirx.const(low, "int32")), tirx.const(high, "int32")).astype("int8")


def _clamp_float(y, low: float | None, high: float | None):
    from tvm import te, tirx
    if low is not None:
        y = te.max(y, tirx.const(float(low), "float32"))
    if high is not None:
        y = te.min(y, tirx.const(float(high), "float32"))
    return y


# ----------------------------------------------------------------------------- conv-like ops

def _padded_input(spec: ConvSpec, x, acc_dtype: str):
    """Callable (n, y, x, c) over the padded input, already widened (int8: + input_offset).
    With padding it reads a `pad` stage, which the schedule inlines."""
    from tvm import te, tirx
    _, h, w, _ = spec.in_shape
    top, bottom, left, right = spec.pad

    def widen(v):
        if acc_dtype == "int32":
            v = v.astype("int32")
            return v + tirx.const(spec.input_offset, "int32") if spec.input_offset else v
        return v

    if not spec.padded:
        return lambda n, i, j, c: widen(x[n, i, j, c])
    n_, _, _, c_ = spec.in_shape
    xp = te.compute(
        (n_, h + top + bottom, w + left + right, c_),
        lambda n, i, j, c: tirx.if_then_else(
            tirx.all(i >= top, i < h + top, j >= left, j < w + left),
            widen(x[n, i - top, j - left, c]), tirx.const(0, acc_dtype)),
        name="pad")
    return lambda n, i, j, c: xp[n, i, j, c]


def conv_func(spec: ConvSpec):
    """PrimFunc(input, filter, bias[, multiplier, shift], output) of a conv-like op.

    Filter layouts (what the backend's constant arrays hold): depthwise [KH][KW][OC], conv
    [OC][KH][KW][C], pointwise [OC][C]."""
    from tvm import te, tirx
    int8 = spec.dtype == "int8"
    acc_dtype = "int32" if int8 else "float32"
    n_, h, w, c = spec.in_shape
    _, oh, ow, oc = spec.out_shape
    kh, kw = spec.kernel
    (sh, sw), (dh, dw) = spec.stride, spec.dilation
    x = te.placeholder(spec.in_shape, spec.dtype, "input")
    if spec.kind == "depthwise":
        filt = te.placeholder((kh, kw, oc), spec.dtype, "filter")
    elif spec.kind == "conv":
        filt = te.placeholder((oc, kh, kw, c), spec.dtype, "filter")
    elif spec.kind == "pointwise":
        filt = te.placeholder((oc, c), spec.dtype, "filter")
    else:
        raise ValueError(spec.kind)
    bias = te.placeholder((oc,), acc_dtype, "bias")
    xp = _padded_input(spec, x, acc_dtype)

    def wt(*index):
        v = filt[index]
        return v.astype("int32") if int8 else v

    if spec.kind == "depthwise":
        rh, rw = te.reduce_axis((0, kh), "rh"), te.reduce_axis((0, kw), "rw")
        mult = spec.multiplier
        acc = te.compute(
            spec.out_shape,
            lambda n, i, j, ch: te.sum(
                xp(n, i * sh + rh * dh, j * sw + rw * dw, ch // mult if mult > 1 else ch) * wt(rh, rw, ch),
                axis=[rh, rw]),
            name="acc")
    elif spec.kind == "conv":
        rh, rw = te.reduce_axis((0, kh), "rh"), te.reduce_axis((0, kw), "rw")
        rc = te.reduce_axis((0, c), "rc")
        acc = te.compute(
            spec.out_shape,
            lambda n, i, j, o: te.sum(xp(n, i * sh + rh * dh, j * sw + rw * dw, rc) * wt(o, rh, rw, rc),
                                      axis=[rh, rw, rc]),
            name="acc")
    else:
        rc = te.reduce_axis((0, c), "rc")
        acc = te.compute(spec.out_shape,
                         lambda n, i, j, o: te.sum(xp(n, i * sh, j * sw, rc) * wt(o, rc), axis=[rc]),
                         name="acc")

    if not int8:
        out = te.compute(spec.out_shape,
                         lambda n, i, j, o: _clamp_float(acc[n, i, j, o] + bias[o], spec.act_low, spec.act_high),
                         name="output")
        return te.create_prim_func([x, filt, bias, out])

    multiplier = te.placeholder((oc,), "int32", "multiplier")
    shift = te.placeholder((oc,), "int32", "shift")
    # acc + bias in a stage of its own: inlined into `high`, the simplifier widens both terms to
    # int64 before adding, and the product becomes a 64x64-bit multiply instead of 32x32->64.
    biased = te.compute(spec.out_shape, lambda n, i, j, o: acc[n, i, j, o] + bias[o], name="biased")
    high = te.compute(
        spec.out_shape,
        lambda n, i, j, o: doubling_high_mul(biased[n, i, j, o], multiplier[o], shift[o], spec.left_shift),
        name="high")

    def epilogue(n, i, j, o):
        y = rounding_divide(high[n, i, j, o], shift[o], spec.max_right, spec.left_shift)
        if spec.output_offset:
            y = y + tirx.const(spec.output_offset, "int32")
        return _clamp_int8(y, spec.act_min, spec.act_max)

    out = te.compute(spec.out_shape, epilogue, name="output")
    return te.create_prim_func([x, filt, bias, multiplier, shift, out])


CONV_STAGES = {"float32": ("acc",), "int8": ("high", "biased", "acc")}   # consumers first, for compute_at


# ----------------------------------------------------------------------------- add

def add_func(size: int, dtype: str, q=None, act_low: float | None = None, act_high: float | None = None):
    """PrimFunc(a, b, output) over `size` elements (the op is elementwise: NHWC flattens away).
    int8 follows tflite's Add with AddQParams `q`: both inputs rescaled to twice the larger scale
    with q.left_shift bits of headroom, summed, requantized to the output scale."""
    from tvm import te, tirx
    a = te.placeholder((size,), dtype, "a")
    b = te.placeholder((size,), dtype, "b")
    if dtype != "int8":
        out = te.compute((size,), lambda i: _clamp_float(a[i] + b[i], act_low, act_high), name="output")
        return te.create_prim_func([a, b, out])

    def scaled(t, offset):
        v = t.astype("int32")
        if offset:
            v = v + tirx.const(offset, "int32")
        return v * tirx.const(1 << q.left_shift, "int32")   # |(x + offset)| <= 255: no overflow

    def high_of(value, multiplier, shift):
        return doubling_high_mul(value, multiplier, shift, left_shift=shift > 0)

    ha = te.compute((size,), lambda i: high_of(scaled(a[i], q.input1_offset), q.input1_multiplier,
                                               q.input1_shift), name="high_a")
    hb = te.compute((size,), lambda i: high_of(scaled(b[i], q.input2_offset), q.input2_multiplier,
                                               q.input2_shift), name="high_b")
    # The sum in a stage of its own: inlined, the simplifier distributes the int64 product over it
    # (three products in C) and lowering takes ten times longer.
    total = te.compute((size,), lambda i: rounding_divide(ha[i], q.input1_shift)
                       + rounding_divide(hb[i], q.input2_shift), name="sum")
    hs = te.compute((size,), lambda i: high_of(total[i], q.output_multiplier, q.output_shift), name="high")

    def epilogue(i):
        y = rounding_divide(hs[i], q.output_shift)
        if q.output_offset:
            y = y + tirx.const(q.output_offset, "int32")
        return _clamp_int8(y, q.act_min, q.act_max)

    out = te.compute((size,), epilogue, name="output")
    return te.create_prim_func([a, b, out])


ADD_STAGES = {"float32": (), "int8": ("high", "sum", "high_b", "high_a")}   # consumers first
