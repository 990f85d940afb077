"""TE compute of SOFTMAX over the last axis, float32 and int8, rows [outer][depth].

int8 is TFLite's reference_ops::Softmax (reference/softmax.py) written out step by step as TE integer
expressions -- no library helper is called.  gemmlowp's fixed point becomes a chain of stages, each
one value per element (`e_*`) or per row (`r_*`), so no expression repeats another's int64 products:

    r_max                          row maximum (reduction in int8: identity -128, as TFLite starts)
    e_a      .. e_exp              diff -> Q5.26 (MultiplyByQuantizedMultiplier, a left shift as in
                                   TFLite's GreaterThanOne form, or a right one below its limit) ->
                                   exp_on_negative_values: Taylor part (e_x .. e_e0), barrel shifter
                                   (e_b0 .. e_b6), exp(0) = INT32_MAX
    r_sum                          sum of RoundingDivideByPOT(exp, 12) over diff >= diff_min (Q12.19),
                                   in uint32: it wraps around as TFLite's int32 sum does
    r_clz .. r_recip               GetReciprocal: count leading zeros of the uint32 sum (a reduction
                                   over the 32 bit positions), normalise, one_over_one_plus_x_for_x_in_0_1
                                   (3 Newton steps in Q2.29); r_exponent = min(num_bits_over_unit + 23, 31)
    o_scaled, output               RoundingDivideByPOT(SRDHM(recip, exp), exponent) - 128, clamped;
                                   -128 where diff < diff_min, and in a row whose exponent exceeds 31
                                   (sum >= 2^28, where TFLite aborts: reference/softmax.py)

The exp chain is built twice (`s_` prefix for the sum, `o_` for the output) so each copy is a scalar
computed inside its consumer's loop -- or once (`c_`), its last stage a row array shared by both
consumers (schedule knob cache_exp).

float32: e = exp((x - max) * beta) with a libm-free exp (Cody-Waite reduction by ln 2, degree-7
Taylor polynomial, then / 2^-n as a product of exact int->float powers of two), summed, divided.
Float immediates are chosen so that TVM's 7-digit printing keeps them (C1) or harmlessly rounds them
(polynomial coefficients, log2(e); float softmax is verified within tolerance).
"""
from __future__ import annotations

import numpy as np

from ...quant import INT32_MAX, INT32_MIN
from .arith import doubling_high_mul, rounding_divide

I32, I64, U32, F32 = "int32", "int64", "uint32", "float32"


def _c(v, dtype=I32):
    from tvm import tirx
    return tirx.const(v, dtype)


def _printed(v: float) -> float:
    """The float32 TVM's C printer (`%.6e`) emits for v."""
    return float(np.float32(float("%.6e" % np.float32(v))))


def srdhm(a, b):
    """gemmlowp SaturatingRoundingDoublingHighMul of two int32 expressions (b may be a Python int)."""
    from tvm import tirx
    ab = a.astype(I64) * (_c(b, I64) if isinstance(b, int) else b.astype(I64))
    nudge = tirx.Select(ab >= _c(0, I64), _c(1 << 30, I64), _c(1 - (1 << 30), I64))
    high = tirx.truncdiv(ab + nudge, _c(1 << 31, I64)).astype(I32)
    if isinstance(b, int) and b != INT32_MIN:
        return high
    # a == b == INT32_MIN, the one saturating case, is the one product equal to 2^62.  (Written as
    # `a == INT32_MIN`, the simplifier moves constants across the == and builds out-of-range int32
    # literals, e.g. for `2^29 - y == INT32_MIN`, and aborts.)
    return tirx.Select(ab == _c(1 << 62, I64), _c(INT32_MAX), high)


def sat_shift_left(x, exponent: int):
    """gemmlowp SaturatingRoundingMultiplyByPOT<exponent > 0>; the shift as an int64 product (a
    left shift of a negative int32 is undefined in C)."""
    from tvm import tirx
    threshold = (1 << (31 - exponent)) - 1
    shifted = (x.astype(I64) * _c(1 << exponent, I64)).astype(I32)
    return tirx.Select(x > _c(threshold), _c(INT32_MAX), tirx.Select(x < _c(-threshold), _c(INT32_MIN), shifted))


def _rdbpot(x, exponent):
    """RoundingDivideByPOT by a constant or per-row exponent in [0, 31]."""
    if isinstance(exponent, int):
        return rounding_divide(x, -exponent)
    return rounding_divide(x, _c(0) - exponent, max_right=31, left_shift=False)


EXP_BARREL = ((1 << 24, 1672461947), (1 << 25, 1302514674), (1 << 26, 790015084), (1 << 27, 290630308),
              (1 << 28, 39332535), (1 << 29, 720401), (1 << 30, 242))     # (remainder bit, exp(-2^k)) k=-2..4


def _int8_exp_chain(stage, diff, p):
    """exp_on_negative_values(Q5.26 of diff) for every element, as stages; returns the last one."""
    from tvm import tirx
    # MultiplyByQuantizedMultiplier: SRDHM(diff * 2^max(shift, 0), multiplier) / 2^max(-shift, 0), rounded;
    # multiplier >= 0 (TFLite's GreaterThanOne form has shift >= 0)
    a = stage("a", lambda i, c: rounding_divide(doubling_high_mul(diff(i, c), p.input_multiplier, p.input_left_shift,
                                                                  True), p.input_left_shift))
    amq = stage("amq", lambda i, c: tirx.bitwise_and(a[i, c], _c((1 << 24) - 1)) - _c(1 << 24))
    x = stage("x", lambda i, c: sat_shift_left(amq[i, c], 5) + _c(1 << 28))        # Rescale<0>, + 1/8
    x2 = stage("x2", lambda i, c: srdhm(x[i, c], x[i, c]))
    x3 = stage("x3", lambda i, c: srdhm(x2[i, c], x[i, c]))
    x4 = stage("x4", lambda i, c: srdhm(x2[i, c], x2[i, c]))
    # one fixed-point primitive per stage: their operands are loads, so no expression is repeated
    x4q = stage("x4q", lambda i, c: _rdbpot(x4[i, c], 2) + x3[i, c])
    p1 = stage("p1", lambda i, c: srdhm(x4q[i, c], 715827883) + x2[i, c])                 # * 1/3
    xp = stage("xp", lambda i, c: x[i, c] + _rdbpot(p1[i, c], 1))
    result = stage("e0", lambda i, c: _c(1895147668) + srdhm(xp[i, c], 1895147668))      # exp(-1/8) * (1 + ...)
    def barrel(prev, bit, multiplier):     # te.compute rejects default arguments: a closure per step
        return lambda i, c: tirx.Select(tirx.bitwise_and(amq[i, c] - a[i, c], _c(bit)) != _c(0),
                                        srdhm(prev[i, c], multiplier), prev[i, c])
    for k, (bit, multiplier) in enumerate(EXP_BARREL):
        result = stage(f"b{k}", barrel(result, bit, multiplier))
    last = result
    return stage("exp", lambda i, c: tirx.Select(a[i, c] == _c(0), _c(INT32_MAX), last[i, c]))


def _reciprocal(te, row, total):
    """GetReciprocal(total, 12) of the uint32 sum: (Q0.31 1/(1+x) of the normalised sum, clz)."""
    from tvm import tirx
    b = te.reduce_axis((0, 32), "bit")
    # clz(total), total uint32: the number of bit positions b in [0, 32) with total < 2^b (32 for 0)
    clz = row("clz", lambda i: te.sum(tirx.Select(
        total[i].astype(I64) < tirx.shift_left(_c(1, I64), b.astype(I64)), _c(1), _c(0)), axis=b))
    shifted = row("shifted", lambda i: (tirx.bitwise_and(tirx.shift_left(total[i].astype(I64), clz[i].astype(I64)),
                                                         _c(0xFFFFFFFF, I64)) - _c(1 << 31, I64)).astype(I32))

    # one_over_one_plus_x_for_x_in_0_1: rounding half sum with INT32_MAX, Newton-Raphson in Q2.29
    def half_denominator(i):
        s = shifted[i].astype(I64) + _c(INT32_MAX, I64)
        return tirx.truncdiv(s + tirx.Select(s >= _c(0, I64), _c(1, I64), _c(-1, I64)), _c(2, I64)).astype(I32)

    hd = row("hd", half_denominator)
    x = row("x0", lambda i: _c(1515870810) + srdhm(hd[i], -1010580540))     # 48/17 - 32/17 * d

    def product(prev):                     # closures: te.compute rejects default arguments
        return lambda i: srdhm(hd[i], prev[i])

    def correction(prev, t):
        return lambda i: srdhm(prev[i], _c(1 << 29) - t[i])

    def newton(prev, u):
        return lambda i: prev[i] + sat_shift_left(u[i], 2)

    for step in range(3):
        t = row(f"t{step}", product(x))
        u = row(f"u{step}", correction(x, t))
        x = row(f"x{step + 1}", newton(x, u))
    last = x
    return row("recip", lambda i: sat_shift_left(last[i], 1)), clz


EXP_TABLE = 256     # int8: the differences to the row maximum are 0 .. -255


def softmax_func(dtype: str, outer: int, depth: int, cache_exp: bool, p=None, beta: float = 1.0,
                 exp_table: bool = False):
    """(PrimFunc(input, output), stage plan) -- the plan lists, consumers first, the row stages and the
    element stages of each exp chain with the block they are computed in (see tvm_schedules_glue).
    int8 with exp_table: PrimFunc(input, exps, output), exps[0][d] the exp of the difference -d, computed
    first (one chain, `t_` prefix) and read by the sum and the output instead of their own chains."""
    from tvm import te, tirx
    x = te.placeholder((outer, depth), dtype, "input")
    rc = te.reduce_axis((0, depth), "c")
    row_max = te.compute((outer,), lambda i: te.max(x[i, rc], axis=rc), name="r_max")
    plan = dict(row=[], chains={})

    def row(name, fn):
        t = te.compute((outer,), fn, name=f"r_{name}")
        plan["row"].insert(0, t.op.name)
        return t

    def chain(prefix):
        names = []

        def stage(name, fn):
            t = te.compute((outer, depth), fn, name=f"{prefix}{name}")
            names.insert(0, t.op.name)
            return t
        return stage, names

    int8 = dtype == "int8"
    if int8:
        def diff(i, c):
            return x[i, c].astype(I32) - row_max[i].astype(I32)
        build = lambda stage: _int8_exp_chain(stage, diff, p)   # noqa: E731
    else:
        def diff(i, c):
            d = x[i, c] - row_max[i]
            return d * _c(_printed(beta), F32) if beta != 1.0 else d
        build = lambda stage: _float_exp_chain(stage, diff)    # noqa: E731

    table = None
    if int8 and exp_table:
        names = []

        def table_stage(name, fn):
            t = te.compute((1, EXP_TABLE), fn, name=f"t_{name}")
            names.insert(0, t.op.name)
            return t
        # the difference a stage of its own: seen through, the simplifier folds the loop variable into the
        # constants of the left-shift path and builds out-of-range int32 literals
        negated = table_stage("diff", lambda i, d: _c(0) - d)
        table = _int8_exp_chain(table_stage, lambda i, d: negated[i, d], p)
        plan["chains"]["t_"] = names

        def looked_up(i, c):
            return table[0, row_max[i].astype(I32) - x[i, c].astype(I32)]
        sum_exp = out_exp = _Lookup(looked_up)
    else:
        chains = ["c_"] if cache_exp else ["s_", "o_"]
        exps = {}
        for prefix in chains:
            stage, names = chain(prefix)
            exps[prefix] = build(stage)
            plan["chains"][prefix] = names
        sum_exp, out_exp = (exps["c_"], exps["c_"]) if cache_exp else (exps["s_"], exps["o_"])
    live = (lambda i, c: diff(i, c) >= _c(p.diff_min)) if int8 else None
    if int8:
        # uint32: TFLite's int32 sum wraps around (an int32 overflow would be undefined in C)
        total = row("sum", lambda i: te.sum(tirx.Select(live(i, rc), _rdbpot(sum_exp[i, rc], 12), _c(0)).astype(U32),
                                            axis=rc))
        recip, clz = _reciprocal(te, row, total)
        # num_bits_over_unit + 31 - 8; above 31 (clz < 4) the row is all -128, so it is capped there
        exponent = row("exponent", lambda i: te.min(_c(12 + 31 - 8) - clz[i], _c(31)))
        scaled = te.compute((outer, depth), lambda i, c: srdhm(recip[i], out_exp[i, c]), name="o_scaled")
        plan["out"] = ["o_scaled"]

        def out_fn(i, c):
            unsat = _rdbpot(scaled[i, c], exponent[i])
            y = te.min(te.max(unsat - _c(128), _c(-128)), _c(127))
            return tirx.Select(tirx.all(live(i, c), clz[i] >= _c(4)), y, _c(-128)).astype("int8")
    else:
        total = row("sum", lambda i: te.sum(sum_exp[i, rc], axis=rc))

        def out_fn(i, c):
            return out_exp[i, c] / total[i]
    out = te.compute((outer, depth), out_fn, name="output")
    plan["row"].append("r_max")
    return te.create_prim_func([x, out] if table is None else [x, table, out]), plan


class _Lookup:
    """exp[i, c] read from the exp table, indexed as the chains' last stages are."""
    def __init__(self, fn):
        self.fn = fn

    def __getitem__(self, index):
        return self.fn(*index)


LN2_HI, LN2_LO = 0.693359375, _printed(-2.12194440e-4)       # Cody-Waite: n * LN2_HI is exact
EXP_TAYLOR = [_printed(1.0 / f) for f in (5040, 720, 120, 24, 6, 2, 1, 1)]


def _float_exp_chain(stage, diff):
    """exp(d) for d <= 0 in three stages: n = round(d / ln2), the polynomial of the reduced r, and
    p / 2^-n; below -87.3 (under FLT_MIN against a sum >= 1) exactly 0."""
    from tvm import te, tirx
    floor = _c(-87.3, F32)
    n = stage("n", lambda i, c: (te.max(diff(i, c), floor) * _c(_printed(1.44269504), F32) - _c(0.5, F32)).astype(I32))

    def poly(i, c):
        nf = n[i, c].astype(F32)
        r = (te.max(diff(i, c), floor) - nf * _c(LN2_HI, F32)) - nf * _c(LN2_LO, F32)
        p = _c(EXP_TAYLOR[0], F32)
        for coefficient in EXP_TAYLOR[1:]:
            p = p * r + _c(coefficient, F32)
        return p
    p = stage("p", poly)

    def scaled(i, c):
        m = _c(0) - n[i, c]                                   # in [0, 126]
        power = None
        for k in range(5):                                     # 2^m as exact powers of two of <= 30 bits
            part = te.min(te.max(m - _c(30 * k), _c(0)), _c(30))
            f = tirx.shift_left(_c(1), part).astype(F32)
            power = f if power is None else power * f
        return tirx.Select(diff(i, c) < floor, _c(0.0, F32), p[i, c] / power)
    return stage("e", scaled)
