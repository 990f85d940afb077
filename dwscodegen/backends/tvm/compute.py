"""TE computes of the TVM backend: one PrimFunc per op, float32 and int8 (TFLite semantics).

Every op is a pipeline of named stages that the schedules (schedules.py) place:

    conv:  [pad] -> acc (reduction) -> [biased -> [high] (int8)] -> output
    add:   [high_a, high_b, sum, high (int8)] -> output

`pad` only exists with explicit padding and is always compute_inline'd, so padding costs a predicate
and no buffer.  For int8 the padded value is (x + input_offset) inside and 0 outside, i.e. padding
contributes nothing, exactly as TFLite skips it.

The int8 requantize (arith.py) is TFLite's MultiplyByQuantizedMultiplier written out as explicit
int32/int64 TE expressions: `tirx.q_multiply_shift` does not lower with a per-channel shift and its
per-axis variant rounds once, not with TFLite's double rounding.  Kernels store the
SaturatingRoundingDoublingHighMul result (`high`) in its own stage inside the channel loop: CSE leaves
expressions with loads alone, and one inlined expression would repeat the int64 product several times
(and lower slowly).  Graphs imported from ONNX (requant "onnx") requantize as onnxruntime does instead:
`biased` -> output through a float32 scale per channel and round half to even.

The other ops: compute_glue.py (pools, mean, pad, concatenation, fully connected, elementwise),
compute_softmax.py, compute_hybrid.py (float32 conv with an int8 filter).

TVM is imported inside the functions: importing this module costs nothing.
"""
from __future__ import annotations

from dataclasses import dataclass

from .arith import (BoundedRequant, add_bounds, clamp_float, clamp_int8, doubling_high_mul, requantize_onnx,
                    rounding_divide)



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
    requant: str = "tflite"       # "onnx": float32 scale per channel, round half to even

    @property
    def padded(self) -> bool:
        return any(self.pad)


# ----------------------------------------------------------------------------- conv-like ops

def _padded_input(spec: ConvSpec, x, acc_dtype: str, offset=None):
    """Callable (n, y, x, c) over the padded input, already widened (int8: + input_offset, or
    - offset(n), a per-batch expression, for hybrid conv's asymmetric quantization).
    With padding it reads a `pad` stage, which the schedule inlines."""
    from tvm import te, tirx
    _, h, w, _ = spec.in_shape
    top, bottom, left, right = spec.pad

    def widen(v, n):
        if acc_dtype == "int32":
            v = v.astype("int32")
            if offset is not None:
                return v - offset(n)
            return v + tirx.const(spec.input_offset, "int32") if spec.input_offset else v
        return v

    if not spec.padded:
        return lambda n, i, j, c: widen(x[n, i, j, c], n)
    n_, _, _, c_ = spec.in_shape
    xp = te.compute(
        (n_, h + top + bottom, w + left + right, c_),
        lambda n, i, j, c: tirx.if_then_else(
            tirx.all(i >= top, i < h + top, j >= left, j < w + left),
            widen(x[n, i - top, j - left, c], n), tirx.const(0, acc_dtype)),
        name="pad")
    return lambda n, i, j, c: xp[n, i, j, c]


def conv_acc(spec: ConvSpec, x, filt, offset=None):
    """The accumulator stage `acc` (float32, or int32 for int8 and hybrid) of a conv-like op over the
    input tensor `x` (a placeholder, or hybrid conv's quantized-input stage; `offset`: see
    _padded_input)."""
    from tvm import te
    int8 = x.dtype == "int8"
    acc_dtype = "int32" if int8 else "float32"
    kh, kw = spec.kernel
    (sh, sw), (dh, dw) = spec.stride, spec.dilation
    c = spec.in_shape[3]
    xp = _padded_input(spec, x, acc_dtype, offset)

    def wt(*index):
        v = filt[index]
        return v.astype("int32") if int8 else v

    if spec.kind == "depthwise":
        rh, rw = te.reduce_axis((0, kh), "rh"), te.reduce_axis((0, kw), "rw")
        mult = spec.multiplier
        return te.compute(
            spec.out_shape,
            lambda n, i, j, ch: te.sum(
                xp(n, i * sh + rh * dh, j * sw + rw * dw, ch // mult if mult > 1 else ch) * wt(rh, rw, ch),
                axis=[rh, rw]),
            name="acc")
    if spec.kind == "conv":
        rh, rw = te.reduce_axis((0, kh), "rh"), te.reduce_axis((0, kw), "rw")
        rc = te.reduce_axis((0, c), "rc")
        return te.compute(
            spec.out_shape,
            lambda n, i, j, o: te.sum(xp(n, i * sh + rh * dh, j * sw + rw * dw, rc) * wt(o, rh, rw, rc),
                                      axis=[rh, rw, rc]),
            name="acc")
    rc = te.reduce_axis((0, c), "rc")
    return te.compute(spec.out_shape, lambda n, i, j, o: te.sum(xp(n, i * sh, j * sw, rc) * wt(o, rc), axis=[rc]),
                      name="acc")


def filter_placeholder(spec: ConvSpec, dtype: str):
    """Filter layouts (what the backend's constant arrays hold): depthwise [KH][KW][OC], conv
    [OC][KH][KW][C], pointwise [OC][C]."""
    from tvm import te
    kh, kw = spec.kernel
    oc, c = spec.out_shape[3], spec.in_shape[3]
    shape = {"depthwise": (kh, kw, oc), "conv": (oc, kh, kw, c), "pointwise": (oc, c)}[spec.kind]
    return te.placeholder(shape, dtype, "filter")


def conv_func(spec: ConvSpec):
    """PrimFunc(input, filter, bias[, multiplier, shift | scale], output) of a conv-like op; int8
    with requant "onnx" takes a float32 `scale` per channel instead of multiplier and shift."""
    from tvm import te, tirx
    int8 = spec.dtype == "int8"
    acc_dtype = "int32" if int8 else "float32"
    oc = spec.out_shape[3]
    x = te.placeholder(spec.in_shape, spec.dtype, "input")
    filt = filter_placeholder(spec, spec.dtype)
    bias = te.placeholder((oc,), acc_dtype, "bias")
    acc = conv_acc(spec, x, filt)

    if not int8:
        out = te.compute(spec.out_shape,
                         lambda n, i, j, o: clamp_float(acc[n, i, j, o] + bias[o], spec.act_low, spec.act_high),
                         name="output")
        return te.create_prim_func([x, filt, bias, out])

    # acc + bias in a stage of its own: inlined into `high`, the simplifier widens both terms to
    # int64 before adding, and the product becomes a 64x64-bit multiply instead of 32x32->64.
    biased = te.compute(spec.out_shape, lambda n, i, j, o: acc[n, i, j, o] + bias[o], name="biased")
    if spec.requant == "onnx":
        scale = te.placeholder((oc,), "float32", "scale")
        out = te.compute(spec.out_shape, lambda n, i, j, o: requantize_onnx(
            biased[n, i, j, o], scale[o], spec.output_offset, spec.act_min, spec.act_max), name="output")
        return te.create_prim_func([x, filt, bias, scale, out])
    multiplier = te.placeholder((oc,), "int32", "multiplier")
    shift = te.placeholder((oc,), "int32", "shift")
    high = te.compute(
        spec.out_shape,
        lambda n, i, j, o: doubling_high_mul(biased[n, i, j, o], multiplier[o], shift[o], spec.left_shift),
        name="high")

    def epilogue(n, i, j, o):
        y = rounding_divide(high[n, i, j, o], shift[o], spec.max_right, spec.left_shift)
        if spec.output_offset:
            y = y + tirx.const(spec.output_offset, "int32")
        return clamp_int8(y, spec.act_min, spec.act_max)

    out = te.compute(spec.out_shape, epilogue, name="output")
    return te.create_prim_func([x, filt, bias, multiplier, shift, out])


def conv_stages(spec: ConvSpec) -> tuple[str, ...]:
    """The stages conv_func computes per output element, consumers first (for compute_at)."""
    if spec.dtype != "int8":
        return ("acc",)
    return ("biased", "acc") if spec.requant == "onnx" else ("high", "biased", "acc")




# ----------------------------------------------------------------------------- add

def add_func(size: int, dtype: str, q=None, act_low: float | None = None, act_high: float | None = None):
    """PrimFunc(a, b, output) over `size` elements (the op is elementwise: NHWC flattens away).
    int8 follows tflite's Add with AddQParams `q`: both inputs rescaled to twice the larger scale
    with q.left_shift bits of headroom, summed, requantized to the output scale."""
    from tvm import te, tirx
    a = te.placeholder((size,), dtype, "a")
    b = te.placeholder((size,), dtype, "b")
    if dtype != "int8":
        out = te.compute((size,), lambda i: clamp_float(a[i] + b[i], act_low, act_high), name="output")
        return te.create_prim_func([a, b, out])

    bounds = add_bounds(q)
    rq_a, rq_b = (BoundedRequant.make(m, sh, bound) for m, sh, bound in
                  ((q.input1_multiplier, q.input1_shift, bounds[0]), (q.input2_multiplier, q.input2_shift, bounds[1])))
    rq_out = BoundedRequant.make(q.output_multiplier, q.output_shift, bounds[2], q.output_offset)

    def scaled(t, offset, rq):
        v = t.astype("int32")
        if offset:
            v = v + tirx.const(offset, "int32")
        return rq.prescale(v * tirx.const(1 << q.left_shift, "int32"))   # |(x + offset)| <= 255: no overflow

    # Each requantization's input in a stage of its own (BoundedRequant.prescale); inlined, the simplifier
    # distributes the int64 products over the sums (three products in C) and lowering takes ten times longer.
    xa = te.compute((size,), lambda i: scaled(a[i], q.input1_offset, rq_a), name="scaled_a")
    xb = te.compute((size,), lambda i: scaled(b[i], q.input2_offset, rq_b), name="scaled_b")
    ha = te.compute((size,), lambda i: rq_a.apply(xa[i]), name="high_a")
    hb = te.compute((size,), lambda i: rq_b.apply(xb[i]), name="high_b")
    total = te.compute((size,), lambda i: rq_out.prescale(ha[i] + hb[i]), name="sum")
    hs = te.compute((size,), lambda i: rq_out.apply(total[i]), name="high")

    def epilogue(i):
        return clamp_int8(hs[i], q.act_min, q.act_max)

    out = te.compute((size,), epilogue, name="output")
    return te.create_prim_func([a, b, out])


ADD_STAGES = {"float32": (), "int8": ("high", "sum", "high_b", "high_a", "scaled_b", "scaled_a")}   # consumers first
