"""TE compute of hybrid (dynamic-range quantized) Conv2D: float32 activations, int8 filter, as
TFLite's reference kernels and reference/hybrid.py, step by step in the same float32/float64
precisions.  Per batch n, one value each (stages at the root):

  symmetric (per-tensor filter scale, EvalHybrid):
    range    max |x|                               factor   range / 127, 1 if the input is all 0
    inverse  127 / range
    quantized  clamp(round_half_away(x * inverse), -127, 127)
    output   float(acc) * (factor * filter_scale[o]) + bias[o]
  asymmetric (per-channel filter scales that differ, EvalHybridPerChannel):
    low, high  min(0, min x), max(0, max x)        scale    (high - low) / 255 in double
    offset   the nudged zero point (double), rounded half away, saturated to int8; 0 if low == high
    factor   float(scale), 1 if low == high        inverse  float(1 / double(factor))
    quantized  clamp(round_half_away(float(offset) + x * inverse), -128, 127)
    output   float(acc) * filter_scale[o] * factor + bias[o]    (acc sums (q - offset) * w)

then the int8 accumulation of tvm_compute.conv_acc over `quantized` (padding taps contribute 0) and
the fused activation.  `quantized` is a parameter of the PrimFunc (written by it), not a temporary:
the kernel passes its own `static int8_t` buffer, so no input-sized array lands on the stack or in
a TVM workspace.
"""
from __future__ import annotations

from .arith import clamp_float, round_half_away
from .compute import ConvSpec, conv_acc, filter_placeholder

HYBRID_STAGES = ("acc",)   # per output element (compute_at); the per-batch stages stay at the root
F32, F64, I32 = "float32", "float64", "int32"


def _reducer(combine: str):
    """min/max reduction with identity 0 (so it includes 0, as TFLite's min(0, .) / max(0, .)),
    combined with a Select (see tvm_compute_glue.select_max)."""
    from tvm import te, tirx
    if combine == "max":
        return te.comm_reducer(lambda a, b: tirx.Select(a > b, a, b), lambda t: tirx.const(0.0, t), name="max0")
    return te.comm_reducer(lambda a, b: tirx.Select(a < b, a, b), lambda t: tirx.const(0.0, t), name="min0")


def _symmetric(x, n_, axes):
    """(quantized stage, factor stage, None)."""
    from tvm import te, tirx
    zero, one, c127 = tirx.const(0.0, F32), tirx.const(1.0, F32), tirx.const(127.0, F32)

    def magnitude(v):
        return tirx.Select(v < zero, -v, v)

    rng = te.compute((n_,), lambda n: _reducer("max")(magnitude(x[(n, *axes)]), axis=list(axes)), name="range")
    factor = te.compute((n_,), lambda n: tirx.Select(rng[n] > zero, rng[n] / c127, one), name="factor")
    inverse = te.compute((n_,), lambda n: c127 / tirx.Select(rng[n] > zero, rng[n], one), name="inverse")

    def quantize(n, i, j, c):     # an all-zero input gives 0 * 127 = 0, as the degenerate case wants
        q = round_half_away(x[n, i, j, c] * inverse[n], F32)
        return te.min(te.max(q, tirx.const(-127, I32)), tirx.const(127, I32)).astype("int8")

    return te.compute(x.shape, quantize, name="quantized"), factor, None


def _asymmetric(x, n_, axes):
    """(quantized stage, factor stage, offset stage): PortableAsymmetricQuantizeFloats."""
    from tvm import te, tirx
    low = te.compute((n_,), lambda n: _reducer("min")(x[(n, *axes)], axis=list(axes)), name="low")
    high = te.compute((n_,), lambda n: _reducer("max")(x[(n, *axes)], axis=list(axes)), name="high")
    d = lambda v: tirx.const(v, F64)   # noqa: E731

    def degenerate(n):
        return low[n] == high[n]

    scale = te.compute((n_,), lambda n: tirx.Select(degenerate(n), d(1.0), (high[n].astype(F64) - low[n].astype(F64))
                                                    / d(255.0)), name="scale")

    def zero_point(n):
        from_low = (-low[n]).astype(F64) / scale[n]
        from_high = high[n].astype(F64) / scale[n]
        return tirx.Select(d(128.0) + from_low < d(127.0) + from_high, d(-128.0) + from_low, d(127.0) - from_high)

    zp = te.compute((n_,), zero_point, name="zero_point")

    def nudged(n):
        z = zp[n]
        rounded = tirx.Select(z <= d(-128.0), tirx.const(-128, I32),
                              tirx.Select(z >= d(127.0), tirx.const(127, I32), round_half_away(z, F64)))
        return tirx.Select(degenerate(n), tirx.const(0, I32), rounded)

    offset = te.compute((n_,), nudged, name="offset")
    factor = te.compute((n_,), lambda n: tirx.Select(degenerate(n), tirx.const(1.0, F32), scale[n].astype(F32)),
                        name="factor")
    inverse = te.compute((n_,), lambda n: (d(1.0) / factor[n].astype(F64)).astype(F32), name="inverse")

    def quantize(n, i, j, c):
        q = round_half_away(offset[n].astype(F32) + x[n, i, j, c] * inverse[n], F32)
        return te.min(te.max(q, tirx.const(-128, I32)), tirx.const(127, I32)).astype("int8")

    return te.compute(x.shape, quantize, name="quantized"), factor, offset


def hybrid_conv_func(spec: ConvSpec, per_channel: bool):
    """PrimFunc(input, filter, filter_scale, bias, quantized, output); spec.dtype is "float32". per_channel:
    asymmetric input quantization (always for depthwise, whose output is float(acc) * (scale[o] * factor))."""
    from tvm import te
    n_, h, w, c = spec.in_shape
    oc = spec.out_shape[3]
    x = te.placeholder(spec.in_shape, F32, "input")
    axes = (te.reduce_axis((0, h), "rh"), te.reduce_axis((0, w), "rw"), te.reduce_axis((0, c), "rc"))
    quantized, factor, offset = (_asymmetric if per_channel else _symmetric)(x, n_, axes)
    filt = filter_placeholder(spec, "int8")
    filter_scale = te.placeholder((oc,), F32, "filter_scale")
    bias = te.placeholder((oc,), F32, "bias")
    acc = conv_acc(spec, quantized, filt, (lambda n: offset[n]) if per_channel else None)

    def output(n, i, j, o):
        a = acc[n, i, j, o].astype(F32)
        if spec.kind == "depthwise":       # DepthwiseConvHybridPerChannel: the scales' product first
            scaled = a * (filter_scale[o] * factor[n])
        elif per_channel:
            scaled = a * filter_scale[o] * factor[n]
        else:
            scaled = a * (factor[n] * filter_scale[o])
        return clamp_float(scaled + bias[o], spec.act_low, spec.act_high)

    out = te.compute(spec.out_shape, output, name="output")
    return te.create_prim_func([x, filt, filter_scale, bias, quantized, out])
