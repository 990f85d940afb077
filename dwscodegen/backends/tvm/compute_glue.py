"""TE computes of the TVM backend's glue ops, float32 and int8 (TFLite semantics, reference/*.py):

    elementwise  Relu, Relu6, Quantize, Dequantize, Reshape: [high (int8 relu) | scaled (quantize)] -> output
    pool         AveragePool2D, MaxPool2D, Mean: [pad] -> acc (window reduction) -> output
    pad          Pad: output (topi.nn.pad: an if_then_else over the input's box)
    concat       Concatenation: output (an if_then_else chain over the axis; int8 requantizes inline)
    slice        Slice: output (the input at begin + i * stride per dimension)
    fc           FullyConnected: acc (reduction over K) -> [biased -> [scaled] (int8)] -> output

Each function returns (PrimFunc, stages): `stages` are the intermediate stages computed per output
element (consumers first), which the schedules compute_at their consumer's innermost loop.

Genuine TE throughout (Pad through topi; topi's pools, dense and concatenate do not fit: pools round
int8 averages differently and reduce with max (see select_max), dense/concatenate name their stages
their own way and cannot requantize).  Constants that must be exact floats (quantize/dequantize scales, the double
fully-connected scales) are function parameters backed by `static const` arrays: TVM's C printer
writes float immediates with 7 significant digits (`1.234568e-02f`), which is not exact.  Likewise
TE drops a reduction's `where=` predicate (te.create_prim_func), so padded windows read a `pad`
stage (if_then_else, inlined) or clamp their indices instead.
"""
from __future__ import annotations

from .arith import (clamp_float, clamp_int8, doubling_high_mul, requantize_onnx, round_half_away, round_half_even,
                    rounding_divide)

I32 = "int32"


def select_max(*args, **kwargs):
    """te.max as a reduction whose combiner is a Select, not a max: the C printer caches each max
    operand (`v_ = acc[0]`) and reuses that stale value in the next unrolled tap (tvm_backend's
    stale_ssa_use guard catches it); a Select prints inline.  Identity: the type's lowest value."""
    from tvm import te, tirx
    reducer = te.comm_reducer(lambda a, b: tirx.Select(a > b, a, b), lambda t: tirx.min_value(t), name="select_max")
    return reducer(*args, **kwargs)


def _c32(v):
    from tvm import tirx
    return tirx.const(v, I32)


def _requantize(high, q, act_min: int = -128, act_max: int = 127):
    """Second half of MultiplyByQuantizedMultiplier (scalar shift), + output zero point, clamped."""
    y = rounding_divide(high, q.shift)
    if q.output_zero_point:
        y = y + _c32(q.output_zero_point)
    return clamp_int8(y, act_min, act_max)


def _high(t, index, q):
    """SaturatingRoundingDoublingHighMul((t[index] - input zero point) * 2^left, multiplier)."""
    v = t[index].astype(I32)
    if q.input_zero_point:
        v = v - _c32(q.input_zero_point)
    return doubling_high_mul(v, q.multiplier, q.shift, q.shift > 0)


# ----------------------------------------------------------------------------- elementwise

def elementwise_func(op_type: str, size: int, dtype: str, q=None, zero_point: int = 0, rounding: str = "half_away"):
    """Over `size` flat values.  Relu/Relu6 int8: q = RequantizeParams (identity: a clamp);
    Quantize float32 -> int8 and Dequantize int8 -> float32 read their scale from a 1-element
    `scale` parameter (float32, exact) and take the zero point as an immediate."""
    from tvm import te, tirx
    f32 = "float32"
    in_dtype = "float32" if op_type == "Quantize" else dtype
    x = te.placeholder((size,), in_dtype, "input")
    if op_type == "Reshape":
        return te.create_prim_func([x, te.compute((size,), lambda i: x[i], name="output")]), ()
    if op_type in ("Quantize", "Dequantize"):
        scale = te.placeholder((1,), f32, "scale")
        if op_type == "Quantize":    # divided in float32; TFLite rounds half away from zero, ONNX half to even
            scaled = te.compute((size,), lambda i: x[i] / scale[0], name="scaled")

            def body(i):
                if rounding == "half_even":   # clamped first: beyond int8 either way, and the int32 cast stays defined
                    y = round_half_even(te.min(te.max(scaled[i], tirx.const(-512.0, f32)), tirx.const(512.0, f32)))
                else:
                    y = round_half_away(scaled[i], f32)
                return clamp_int8(y + _c32(zero_point) if zero_point else y, -128, 127)
            out = te.compute((size,), body, name="output")
            return te.create_prim_func([x, scale, out]), ("scaled",)
        else:                        # float(double(scale) * (q - zp)): the float32 product is the same float
            def body(i):
                v = x[i].astype(I32)
                return scale[0] * (v - _c32(zero_point) if zero_point else v).astype(f32)
        return te.create_prim_func([x, scale, te.compute((size,), body, name="output")]), ()
    high6 = op_type == "Relu6"
    if dtype != "int8":
        out = te.compute((size,), lambda i: clamp_float(x[i], 0.0, 6.0 if high6 else None), name="output")
        return te.create_prim_func([x, out]), ()
    if q.multiplier == 1 << 30 and q.shift == 1 and q.input_zero_point == q.output_zero_point:   # same scale
        out = te.compute((size,), lambda i: clamp_int8(x[i].astype(I32), q.act_min, q.act_max), name="output")
        return te.create_prim_func([x, out]), ()
    high = te.compute((size,), lambda i: _high(x, i, q), name="high")
    out = te.compute((size,), lambda i: _requantize(high[i], q, q.act_min, q.act_max), name="output")
    return te.create_prim_func([x, out]), ("high",)


# ----------------------------------------------------------------------------- pools and mean

def pool_func(op_type: str, dtype: str, in_shape, out_shape, filt, stride, pad, act=(None, None),
              act_range=(-128, 127), mean_q=None):
    """AveragePool2D / MaxPool2D (explicit pad (top, bottom, left, right)), and Mean over H, W as an
    average pool whose window is the whole image (mean_q: MeanParams for int8).  Padded taps are
    skipped as TFLite does: the average pools sum a `pad` stage that is 0 outside the input and divide
    by the count of taps inside; max pools read the nearest in-bounds tap of the same window instead
    (clamped indices, no predicate: the maximum is always over real taps, so the reduction's identity
    only seeds it -- -128 for int8; for float32 TVM prints -3.402823e+38f, a hair above -FLT_MAX)."""
    from tvm import te, tirx
    int8 = dtype == "int8"
    acc_dtype = I32 if int8 else "float32"
    _, h, w, c = in_shape
    kh, kw = filt
    (sh, sw), (top, bottom, left, right) = stride, pad
    x = te.placeholder(in_shape, dtype, "input")
    rh, rw = te.reduce_axis((0, kh), "rh"), te.reduce_axis((0, kw), "rw")
    padded = any(pad)
    if op_type == "MaxPool2D":
        def clamped(v, size):
            return te.min(te.max(v, _c32(0)), _c32(size - 1)) if padded else v
        # reduced in the input type: the identity is then -128 (int8), as TFLite's initial value
        acc = te.compute(out_shape, lambda n, i, j, ch: select_max(
            x[n, clamped(i * sh + rh - top, h), clamped(j * sw + rw - left, w), ch], axis=[rh, rw]), name="acc")
    else:
        if padded:
            xp = te.compute((in_shape[0], h + top + bottom, w + left + right, c), lambda n, i, j, ch: tirx.if_then_else(
                tirx.all(i >= top, i < h + top, j >= left, j < w + left),
                x[n, i - top, j - left, ch].astype(acc_dtype), tirx.const(0, acc_dtype)), name="pad")
        else:
            xp = te.compute(in_shape, lambda n, i, j, ch: x[n, i, j, ch].astype(acc_dtype), name="pad")
        acc = te.compute(out_shape, lambda n, i, j, ch: te.sum(xp[n, i * sh + rh, j * sw + rw, ch], axis=[rh, rw]),
                         name="acc")

    def count(i, j):
        """Taps of the window at (i, j) that lie inside the input."""
        if not padded:
            return _c32(kh * kw)
        y0, x0 = i * sh - top, j * sw - left
        rows = te.min(y0 + kh, _c32(h)) - te.max(y0, _c32(0))
        cols = te.min(x0 + kw, _c32(w)) - te.max(x0, _c32(0))
        return rows * cols

    def epilogue(n, i, j, ch):
        a = acc[n, i, j, ch]
        if mean_q is not None:        # QuantizedMeanOrSum: sum - zp * count, requantized (1/count folded in)
            if mean_q.input_zero_point:
                a = a - _c32(mean_q.input_zero_point * mean_q.count)
            high = doubling_high_mul(a, mean_q.multiplier, mean_q.shift, mean_q.shift > 0)
            y = rounding_divide(high, mean_q.shift)
            return clamp_int8(y + _c32(mean_q.output_zero_point) if mean_q.output_zero_point else y, -128, 127)
        if op_type == "MaxPool2D":
            return clamp_int8(a.astype(I32), *act_range) if int8 else clamp_float(a, *act)
        k = count(i, j)
        if not int8:
            return clamp_float(a / k.astype("float32"), *act)
        half = tirx.truncdiv(k, _c32(2))   # acc > 0 ? (acc + n/2) / n : (acc - n/2) / n, C division
        y = tirx.Select(a > _c32(0), tirx.truncdiv(a + half, k), tirx.truncdiv(a - half, k))
        return clamp_int8(y, *act_range)

    out = te.compute(out_shape, epilogue, name="output")
    return te.create_prim_func([x, out]), ("acc",)     # `pad` (average pools) is always inlined


# ----------------------------------------------------------------------------- pad, concatenation

def pad_func(dtype: str, in_shape, paddings, pad_value):
    """Constant PAD of an N-D tensor (topi.nn.pad): the input inside its box, `pad_value` (0, or
    the int8 zero point) outside."""
    from tvm import te, tirx, topi
    x = te.placeholder(tuple(in_shape), dtype, "input")
    out = topi.nn.pad(x, [b for b, _ in paddings], [a for _, a in paddings], pad_value=tirx.const(pad_value, dtype),
                      name="output")
    return te.create_prim_func([x, out]), ()


def concat_func(dtype: str, outer: int, sizes: list[int], qs=None):
    """Concatenation as [outer][sum(sizes)] of inputs [outer][size_k] (everything from the axis on
    flattened).  int8 inputs whose RequantizeParams are not the identity are requantized inline as
    TFLite's int8->int8 QUANTIZE (reference.shape_ops)."""
    from tvm import te, tirx
    xs = [te.placeholder((outer, s), dtype, f"input{k}") for k, s in enumerate(sizes)]
    offsets = [sum(sizes[:k]) for k in range(len(sizes))]

    def part(k, i, j):
        v = xs[k][i, j - offsets[k]]
        q = qs[k] if qs else None
        if q is None or q.identity:
            return v
        return _requantize(_high(xs[k], (i, j - offsets[k]), q), q)

    def body(i, j):
        value = part(len(sizes) - 1, i, j)
        for k in range(len(sizes) - 2, -1, -1):
            value = tirx.if_then_else(j < offsets[k + 1], part(k, i, j), value)
        return value

    out = te.compute((outer, sum(sizes)), body, name="output")
    return te.create_prim_func(xs + [out]), ()


def slice_func(dtype: str, in_shape, begin, strides, out_shape):
    """Slice: output[i...] = input[begin + i * stride ...] per dimension (int8 and float32 alike: a copy)."""
    from tvm import te
    x = te.placeholder(tuple(in_shape), dtype, "input")

    def at(*index):
        return x[tuple(i * s + b if s != 1 else i + b for i, b, s in zip(index, begin, strides))]

    return te.create_prim_func([x, te.compute(tuple(out_shape), at, name="output")]), ()


# ----------------------------------------------------------------------------- fully connected

def fc_func(dtype: str, rows: int, depth: int, units: int, has_bias: bool, act=(None, None), q=None,
            requant: str = "tflite", per_channel: bool = True, padded: tuple[int, int] | None = None):
    """PrimFunc(input [rows][depth], weights [units][depth], [bias [units]], [scale], output).

    float32: sum + bias, fused activation.  int8 (q: FullyConnectedParams): the accumulator starts
    from the folded bias (qparams.folded_bias, so the input offset is already in
    it) and adds (w + weights_offset) * x; then TFLite's float-scale requantize in double:
    round_half_away(double(acc) * scale[o]) + output offset, clamped -- `scale` a float64 parameter
    ([units], or [1] per tensor).  requant "onnx": a float32 scale per unit, round half to even.
    padded (units, row length): the weights' shape with zero rows and columns after the real ones, and acc over
    the padded units (the tensorized kernels' whole tiles, simd_fc.py)."""
    from tvm import te
    int8 = dtype == "int8"
    acc_dtype = I32 if int8 else "float32"
    x = te.placeholder((rows, depth), dtype, "input")
    units_acc, row = padded or (units, depth)
    wts = te.placeholder((units_acc, row), dtype, "weights")
    bias = te.placeholder((units,), acc_dtype, "bias")
    k = te.reduce_axis((0, depth), "k")

    def weight(o, kk):
        v = wts[o, kk].astype(acc_dtype)
        return v + _c32(q.weights_offset) if int8 and q.weights_offset else v

    acc = te.compute((rows, units_acc), lambda n, o: te.sum(x[n, k].astype(acc_dtype) * weight(o, k), axis=k), name="acc")
    params = [x, wts] + ([bias] if has_bias or int8 else [])
    if not int8:
        out = te.compute((rows, units), lambda n, o: clamp_float(acc[n, o] + bias[o] if has_bias else acc[n, o], *act),
                         name="output")
        return te.create_prim_func(params + [out]), ("acc",)
    biased = te.compute((rows, units), lambda n, o: acc[n, o] + bias[o], name="biased")
    if requant == "onnx":
        scale = te.placeholder((units,), "float32", "scale")
        out = te.compute((rows, units), lambda n, o: requantize_onnx(biased[n, o], scale[o], q.output_offset,
                                                                     q.act_min, q.act_max), name="output")
        return te.create_prim_func(params + [scale, out]), ("biased", "acc")
    scale = te.placeholder((units if per_channel else 1,), "float64", "scale")
    # the double product in a stage of its own: round_half_away reads it three times
    scaled = te.compute((rows, units), lambda n, o: biased[n, o].astype("float64") * scale[o if per_channel else 0],
                        name="scaled")

    def epilogue(n, o):
        y = round_half_away(scaled[n, o], "float64")
        return clamp_int8(y + _c32(q.output_offset) if q.output_offset else y, q.act_min, q.act_max)

    out = te.compute((rows, units), epilogue, name="output")
    return te.create_prim_func(params + [scale, out]), ("scaled", "biased", "acc")
