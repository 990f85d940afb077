"""TE computes of the TVM backend's elementwise ops, float32 and int8 (TFLite semantics, reference/binary.py
and reference/activations.py):

    binary       Add (when broadcast or with a constant; compute.add_func otherwise), Mul, Maximum,
                 Minimum, PRelu: the output over the loop nest of broadcast.loop_nest, one dimension per
                 loop (equal shapes: one flat loop); each operand a flat buffer read at its own strides,
                 0 along the loops it is broadcast over.  int8 stages, consumers first:
                 Add   high_a, high_b -> sum -> high -> output   (as compute.add_func; a constant
                       addend comes rescaled to the common scale, int32, without its high_ stage)
                 Mul   product -> high -> output
                 PRelu product -> neg_high, pos_high -> output (both sides computed, then selected)
    activation   HardSwish, Logistic, Tanh, LeakyRelu over flat values: int8 a lookup in the op's
                 256-entry `table` parameter (int8_elementwise.py); float32 computed, Logistic and
                 Tanh from e^-|x| by a libm-free exp in three stages (n, p, e), LeakyRelu's alpha a
                 1-element parameter (TVM prints float immediates with 7 digits, which is not exact).

Each function returns (PrimFunc, stages) like compute_glue: the stages computed per output element.
"""
from __future__ import annotations

import numpy as np

from .arith import (BoundedRequant, add_bounds, clamp_float, clamp_int8, doubling_high_mul, int8_offset_bound,
                    rounding_divide)

I32, F32 = "int32", "float32"


def _c(v, dtype=I32):
    from tvm import tirx
    return tirx.const(v, dtype)


def _requantized(high, shift: int, zero_point: int, low: int = -128, high_bound: int = 127):
    y = rounding_divide(high, shift)
    return clamp_int8(y + _c(zero_point) if zero_point else y, low, high_bound)


def binary_func(op_type: str, dtype: str, loops, sizes: tuple[int, int], names: tuple[str, str], q=None,
                act=(None, None), rescaled: tuple[bool, bool] = (False, False)):
    """PrimFunc(<names[0]> [sizes[0]], <names[1]> [sizes[1]], output [extents of `loops`]).  int8 Add:
    an operand marked `rescaled` is int32, already on the common scale (a constant: qparams.add_rescaled)."""
    from tvm import te, tirx
    extents = tuple(loop.extent for loop in loops)
    a, b = (te.placeholder((size,), I32 if pre else dtype, name) for size, name, pre in zip(sizes, names, rescaled))

    def at(t, d, idx):
        flat = None
        for i, loop in zip(idx, loops):
            stride = loop.strides[d]
            if stride:
                term = i if stride == 1 else i * stride
                flat = term if flat is None else flat + term
        return t[flat if flat is not None else 0]

    stages = []

    def stage(name, fn):
        stages.insert(0, name)
        return te.compute(extents, fn, name=name)

    int8 = dtype == "int8"
    if op_type in ("Maximum", "Minimum"):
        def body(*i):
            x, y = at(a, 0, i), at(b, 1, i)
            return tirx.Select(x > y if op_type == "Maximum" else x < y, x, y)
    elif not int8 and op_type == "PRelu":
        def body(*i):
            x = at(a, 0, i)
            return tirx.Select(x >= _c(0.0, F32), x, x * at(b, 1, i))
    elif not int8:
        def body(*i):
            x, y = at(a, 0, i), at(b, 1, i)
            return clamp_float(x + y if op_type == "Add" else x * y, *act)
    elif op_type == "Add":
        bounds = add_bounds(q)
        rq = [BoundedRequant.make(m, sh, bound) for m, sh, bound in
              ((q.input1_multiplier, q.input1_shift, bounds[0]), (q.input2_multiplier, q.input2_shift, bounds[1]))]
        out_rq = BoundedRequant.make(q.output_multiplier, q.output_shift, bounds[2], q.output_offset)

        def side(t, d, offset):
            if rescaled[d]:
                return lambda i: at(t, d, i)
            def scaled(*i):
                v = at(t, d, i).astype(I32)
                return rq[d].prescale((v + _c(offset) if offset else v) * _c(1 << q.left_shift))   # |v + offset| <= 255
            x = stage(f"scaled_{'ab'[d]}", scaled)
            high = stage(f"high_{'ab'[d]}", lambda *i: rq[d].apply(x(*i)))
            return lambda i: high(*i)
        sa = side(a, 0, q.input1_offset)
        sb = side(b, 1, q.input2_offset)
        total = stage("sum", lambda *i: out_rq.prescale(sa(i) + sb(i)))
        hs = stage("high", lambda *i: out_rq.apply(total(*i)))
        def body(*i):
            return clamp_int8(hs(*i), q.act_min, q.act_max)
    elif op_type == "Mul":
        def offset(v, off):
            v = v.astype(I32)
            return v + _c(off) if off else v
        rq = BoundedRequant.make(q.multiplier, q.shift, int8_offset_bound(q.input1_offset)
                                 * int8_offset_bound(q.input2_offset), q.output_offset)
        # the product in a stage of its own: inlined, the simplifier distributes the int64 product over it
        product = stage("product", lambda *i: rq.prescale(offset(at(a, 0, i), q.input1_offset)
                                                          * offset(at(b, 1, i), q.input2_offset)))
        high = stage("high", lambda *i: rq.apply(product(*i)))
        def body(*i):
            return clamp_int8(high(*i), q.act_min, q.act_max)
    else:   # int8 PRelu
        def x_of(i):
            v = at(a, 0, i).astype(I32)
            return v + _c(q.input_offset) if q.input_offset else v
        def alpha_of(i):
            v = at(b, 1, i).astype(I32)
            return v + _c(q.alpha_offset) if q.alpha_offset else v
        product = stage("product", lambda *i: x_of(i) * alpha_of(i))
        pos = stage("pos_high", lambda *i: doubling_high_mul(x_of(i), q.multiplier_1, q.shift_1, q.shift_1 > 0))
        neg = stage("neg_high", lambda *i: doubling_high_mul(product(*i), q.multiplier_2, q.shift_2, q.shift_2 > 0))
        def body(*i):
            y = tirx.Select(x_of(i) >= _c(0), rounding_divide(pos(*i), q.shift_1), rounding_divide(neg(*i), q.shift_2))
            return clamp_int8(y + _c(q.output_offset) if q.output_offset else y, -128, 127)
    out = te.compute(extents, body, name="output")
    return te.create_prim_func([a, b, out]), tuple(stages)


def activation_func(op_type: str, dtype: str, size: int):
    """PrimFunc(input, [table | alpha], output) over `size` flat values."""
    from tvm import te, tirx
    x = te.placeholder((size,), dtype, "input")
    if dtype == "int8":
        table = te.placeholder((256,), "int8", "table")
        out = te.compute((size,), lambda i: table[x[i].astype(I32) + _c(128)], name="output")
        return te.create_prim_func([x, table, out]), ()
    if op_type == "HardSwish":      # as reference_ops::HardSwish: x * min(6, max(0, x + 3)) / 6
        out = te.compute((size,), lambda i: x[i] * clamp_float(x[i] + _c(3.0, F32), 0.0, 6.0) / _c(6.0, F32),
                         name="output")
        return te.create_prim_func([x, out]), ()
    if op_type == "LeakyRelu":
        alpha = te.placeholder((1,), F32, "alpha")
        out = te.compute((size,), lambda i: tirx.Select(x[i] > _c(0.0, F32), x[i], x[i] * alpha[0]), name="output")
        return te.create_prim_func([x, alpha, out]), ()
    stages = []

    def stage(name, fn):
        stages.insert(0, name)
        return te.compute((size,), fn, name=name)

    factor = 1.0 if op_type == "Logistic" else 2.0       # e^-|x| or e^-2|x|
    e = _exp_nonpositive(stage, lambda i: tirx.Select(x[i] > _c(0.0, F32), x[i] * _c(-factor, F32),
                                                      x[i] * _c(factor, F32)))
    one = _c(1.0, F32)
    if op_type == "Logistic":
        out = te.compute((size,), lambda i: tirx.Select(x[i] > _c(0.0, F32), one / (one + e[i]), e[i] / (one + e[i])),
                         name="output")
    else:
        t = stage("t", lambda i: (one - e[i]) / (one + e[i]))
        out = te.compute((size,), lambda i: tirx.Select(x[i] < _c(0.0, F32), _c(0.0, F32) - t[i], t[i]),
                         name="output")
    return te.create_prim_func([x, out]), tuple(stages)


def _printed(v: float) -> float:
    """The float32 TVM's C printer (`%.6e`) emits for v: constants are chosen so that it keeps them."""
    return float(np.float32(float("%.6e" % np.float32(v))))


LN2_HI, LN2_LO = 0.693359375, _printed(-2.12194440e-4)       # Cody-Waite: n * LN2_HI is exact
EXP_TAYLOR = [_printed(1.0 / f) for f in (5040, 720, 120, 24, 6, 2, 1, 1)]


def _exp_nonpositive(stage, d):
    """e^d(i) for d <= 0: n = round(d / ln2), the degree-7 Taylor polynomial of the reduced r, then p / 2^-n
    (a product of exact powers of two); below -87.3 (under FLT_MIN) exactly 0."""
    from tvm import te, tirx
    floor = _c(-87.3, F32)
    n = stage("n", lambda i: (te.max(d(i), floor) * _c(_printed(1.44269504), F32) - _c(0.5, F32)).astype(I32))

    def poly(i):
        nf = n[i].astype(F32)
        r = (te.max(d(i), floor) - nf * _c(LN2_HI, F32)) - nf * _c(LN2_LO, F32)
        p = _c(EXP_TAYLOR[0], F32)
        for coefficient in EXP_TAYLOR[1:]:
            p = p * r + _c(coefficient, F32)
        return p
    p = stage("p", poly)

    def scaled(i):
        m = _c(0) - n[i]                                   # in [0, 126]
        power = None
        for k in range(5):                                 # 2^m as exact powers of two of <= 30 bits
            part = te.min(te.max(m - _c(30 * k), _c(0)), _c(30))
            f = tirx.shift_left(_c(1), part).astype(F32)
            power = f if power is None else power * f
        return tirx.Select(d(i) < floor, _c(0.0, F32), p[i] / power)
    return stage("e", scaled)
