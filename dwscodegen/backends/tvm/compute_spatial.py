"""TE computes of the spatial ops, float32 and int8 (TFLite semantics, reference/spatial.py):

    resize nearest    output[n, y, x, c] = input[n, rows[y], cols[x], c]
    resize bilinear   output = the four neighbours weighted by the per-row / per-column tables of
                      dwscodegen/resize.py (int8: integer weights in 1/1024, rounded division by 2^20)
    transpose conv    pad (the input dilated by the stride and padded, inlined) -> acc -> [biased -> high] ->
                      output, i.e. an ordinary convolution with the flipped filter over the dilated input,
                      scheduled like Conv2D (schedules.schedule_conv)

The tables are parameters of the PrimFunc backed by `static const` arrays: indices and float fractions must be
exact, and TVM's C printer would round float immediates to 7 digits.
"""
from __future__ import annotations

from .arith import clamp_float, clamp_int8, doubling_high_mul, rounding_divide
from .compute import ConvSpec

I32 = "int32"


def resize_nearest_func(dtype: str, in_shape, out_shape):
    """PrimFunc(input, rows [OH], cols [OW], output): rows/cols hold the input index to copy."""
    from tvm import te
    x = te.placeholder(tuple(in_shape), dtype, "input")
    rows = te.placeholder((out_shape[1],), I32, "rows")
    cols = te.placeholder((out_shape[2],), I32, "cols")
    out = te.compute(tuple(out_shape), lambda n, i, j, c: x[n, rows[i], cols[j], c], name="output")
    return te.create_prim_func([x, rows, cols, out])


def resize_bilinear_func(dtype: str, in_shape, out_shape):
    """PrimFunc(input, row_index [OH, 2], row_weight, col_index [OW, 2], col_weight, output).
    float32: weights [OH] / [OW] are the fractions toward the upper neighbour; int8: [OH, 2] / [OW, 2] integer
    weights (1024 - f, f), summed in int32 (enough: resize.ResizePlan.int8_sum_bound)."""
    from tvm import te, tirx
    oh, ow = out_shape[1], out_shape[2]
    x = te.placeholder(tuple(in_shape), dtype, "input")
    row_index = te.placeholder((oh, 2), I32, "row_index")
    col_index = te.placeholder((ow, 2), I32, "col_index")
    if dtype != "int8":
        dy = te.placeholder((oh,), "float32", "row_weight")
        dx = te.placeholder((ow,), "float32", "col_weight")
        one = tirx.const(1.0, "float32")

        def blend(n, i, j, c):
            def v(a, b):
                return x[n, row_index[i, a], col_index[j, b], c]
            return (v(0, 0) * (one - dy[i]) * (one - dx[j]) + v(1, 0) * dy[i] * (one - dx[j])
                    + v(0, 1) * (one - dy[i]) * dx[j] + v(1, 1) * dy[i] * dx[j])
        out = te.compute(tuple(out_shape), blend, name="output")
        return te.create_prim_func([x, row_index, dy, col_index, dx, out])
    acc = I32
    wy = te.placeholder((oh, 2), I32, "row_weight")
    wx = te.placeholder((ow, 2), I32, "col_weight")

    def weighted(n, i, j, c):
        def v(a, b):
            return x[n, row_index[i, a], col_index[j, b], c].astype(acc) * wy[i, a].astype(acc) * wx[j, b].astype(acc)
        return v(0, 0) + v(1, 0) + v(0, 1) + v(1, 1)
    total = te.compute(tuple(out_shape), weighted, name="total")

    def rounded(n, i, j, c):
        t = total[n, i, j, c]
        half = tirx.Select(t > tirx.const(0, acc), tirx.const(1 << 19, acc), tirx.const(-(1 << 19), acc))
        return tirx.truncdiv(t + half, tirx.const(1 << 20, acc)).astype("int8")
    out = te.compute(tuple(out_shape), rounded, name="output")
    return te.create_prim_func([x, row_index, wy, col_index, wx, out])


RESIZE_STAGES = {"float32": (), "int8": ("total",)}


def transpose_conv_func(spec: ConvSpec):
    """PrimFunc(input, filter [OC][KH][KW][C], bias[, multiplier, shift], output). spec.pad: (top, bottom,
    left, right) cropped from the full output; spec.kind "conv"."""
    from tvm import te, tirx
    int8 = spec.dtype == "int8"
    acc_dtype = I32 if int8 else "float32"
    n_, h, w, c = spec.in_shape
    _, oh, ow, oc = spec.out_shape
    kh, kw = spec.kernel
    sh, sw = spec.stride
    top, left = spec.pad[0], spec.pad[2]
    x = te.placeholder(spec.in_shape, spec.dtype, "input")
    filt = te.placeholder((oc, kh, kw, c), spec.dtype, "filter")
    bias = te.placeholder((oc,), acc_dtype, "bias")
    c32 = lambda v: tirx.const(v, I32)  # noqa: E731

    def dilated(n, i, j, ch):
        """The input spread `stride` apart, offset so that output row oy reads rows oy .. oy + KH - 1."""
        di, dj = i + c32(top - kh + 1), j + c32(left - kw + 1)
        inside = tirx.all(di >= c32(0), dj >= c32(0), tirx.floormod(di, c32(sh)) == c32(0),
                          tirx.floormod(dj, c32(sw)) == c32(0), tirx.floordiv(di, c32(sh)) < c32(h),
                          tirx.floordiv(dj, c32(sw)) < c32(w))
        v = x[n, tirx.floordiv(di, c32(sh)), tirx.floordiv(dj, c32(sw)), ch].astype(acc_dtype)
        if int8 and spec.input_offset:
            v = v + c32(spec.input_offset)
        return tirx.if_then_else(inside, v, tirx.const(0, acc_dtype))
    xp = te.compute((n_, oh + kh - 1, ow + kw - 1, c), dilated, name="pad")
    rh, rw, rc = te.reduce_axis((0, kh), "rh"), te.reduce_axis((0, kw), "rw"), te.reduce_axis((0, c), "rc")

    def wt(o, i, j, ch):
        v = filt[o, kh - 1 - i, kw - 1 - j, ch]
        return v.astype(I32) if int8 else v
    acc = te.compute(spec.out_shape, lambda n, i, j, o: te.sum(xp[n, i + rh, j + rw, rc] * wt(o, rh, rw, rc),
                                                               axis=[rh, rw, rc]), name="acc")
    if not int8:
        out = te.compute(spec.out_shape, lambda n, i, j, o: clamp_float(acc[n, i, j, o] + bias[o], spec.act_low,
                                                                        spec.act_high), name="output")
        return te.create_prim_func([x, filt, bias, out])
    biased = te.compute(spec.out_shape, lambda n, i, j, o: acc[n, i, j, o] + bias[o], name="biased")
    multiplier = te.placeholder((oc,), I32, "multiplier")
    shift = te.placeholder((oc,), I32, "shift")
    high = te.compute(spec.out_shape, lambda n, i, j, o: doubling_high_mul(biased[n, i, j, o], multiplier[o],
                                                                           shift[o], spec.left_shift), name="high")

    def epilogue(n, i, j, o):
        y = rounding_divide(high[n, i, j, o], shift[o], spec.max_right, spec.left_shift)
        if spec.output_offset:
            y = y + c32(spec.output_offset)
        return clamp_int8(y, spec.act_min, spec.act_max)
    out = te.compute(spec.out_shape, epilogue, name="output")
    return te.create_prim_func([x, filt, bias, multiplier, shift, out])


TRANSPOSE_CONV_STAGES = {"float32": ("acc",), "int8": ("high", "biased", "acc")}
