"""The glue ops of real models: pooling, fully connected, softmax, mean, pad, concatenation,
quantize/dequantize, relu/relu6 and reshape.

1. Each NumPy reference (dwscodegen/reference/{pool,fully_connected,softmax,shape_ops,elementwise}.py)
   against TFLite's reference kernels (BUILTIN_REF) on single-op models: int8 bit-exact, float32
   within 1e-5 * max(1, max |ref|).
2. Each C kernel template rendered, compiled with gcc -std=c99 -Wall -Wextra -Werror -Wshadow
   -Wconversion together with the library helpers, run natively on seeded inputs and compared with
   the same NumPy reference (int8 bit-exact). One program per op family keeps compilation short.
   The k dicts built here (`*_k` functions) are the reference for what a backend must pass.
"""
from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from dwscodegen.backends.render import render
from dwscodegen.compare import compare
from dwscodegen import qparams as qp
from dwscodegen.quant import activation_range_int8, multiply_by_quantized_multiplier, quantize_multiplier, round_half_away_f64
from dwscodegen.reference import elementwise as ew
from dwscodegen.reference import fully_connected as fc
from dwscodegen.reference import pool, shape_ops, softmax

pytest.importorskip("ai_edge_litert")
from .support.contexts import template_context  # noqa: E402
from .support.tflite_builder import TensorSpec, build_single_op_model, run_reference  # noqa: E402

ACT_BOUNDS = {"NONE": (None, None), "RELU": (0.0, None), "RELU6": (0.0, 6.0), "RELU_N1_TO_1": (-1.0, 1.0)}
CFLAGS = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-Wshadow", "-Wconversion"]


def assert_matches(got: np.ndarray, expected: np.ndarray, what: str = "y") -> None:
    assert got.shape == expected.shape or got.size == expected.size, (got.shape, expected.shape)
    result = compare(what, np.asarray(got).astype(expected.dtype) if expected.dtype.kind == "i" else np.asarray(got),
                     expected)
    assert result.ok, result.summary()


def tflite(op: str, inputs: list, outputs: list, options: dict, values: list) -> np.ndarray:
    (out,) = run_reference(build_single_op_model(op, inputs, outputs, options), values)
    return out


def int8_input(rng, shape):
    return rng.integers(-128, 128, shape, dtype=np.int8)


def float_input(rng, shape, scale=3.0):
    return rng.normal(0, scale, shape).astype(np.float32)


# ==============================================================================================
# 1. NumPy reference vs TFLite BUILTIN_REF
# ==============================================================================================

@dataclass(frozen=True)
class PoolCase:
    shape: tuple
    filter: tuple
    stride: tuple
    padding: str
    act: str = "NONE"

    def id(self) -> str:
        return f"{'x'.join(map(str, self.shape))}-k{self.filter[0]}{self.filter[1]}-s{self.stride[0]}{self.stride[1]}-{self.padding}-{self.act}"

    @property
    def pad(self):
        return pool.window_padding(self.shape[1:3], self.filter, self.stride, self.padding)

    @property
    def out_shape(self):
        oh, ow = pool.pool_output_hw(self.shape[1:3], self.filter, self.stride, self.pad)
        return (self.shape[0], oh, ow, self.shape[3])


POOL_CASES = [
    PoolCase((1, 9, 9, 5), (3, 3), (2, 2), "SAME"),
    PoolCase((1, 8, 7, 3), (2, 2), (2, 2), "VALID", "RELU6"),
    PoolCase((2, 7, 7, 4), (7, 7), (1, 1), "VALID"),
    PoolCase((1, 10, 10, 2), (3, 2), (1, 2), "SAME", "RELU"),
    PoolCase((1, 6, 5, 3), (4, 4), (3, 2), "SAME", "RELU_N1_TO_1"),
]
POOL_Q = (0.05, -7)       # pooling keeps the input quantization


@pytest.mark.parametrize("dtype", ["int8", "float32"])
@pytest.mark.parametrize("op", ["AVERAGE_POOL_2D", "MAX_POOL_2D"])
@pytest.mark.parametrize("case", POOL_CASES, ids=PoolCase.id)
def test_pool_reference(case, op, dtype):
    q = dict(scale=POOL_Q[0], zero_point=POOL_Q[1]) if dtype == "int8" else {}
    options = dict(filter_h=case.filter[0], filter_w=case.filter[1], stride_h=case.stride[0],
                   stride_w=case.stride[1], padding=case.padding, fused_activation=case.act)
    model = build_single_op_model(op, [TensorSpec("x", case.shape, dtype, **q)],
                                  [TensorSpec("y", case.out_shape, dtype, **q)], options)
    rng = np.random.default_rng(POOL_CASES.index(case))
    low, high = ACT_BOUNDS[case.act]
    avg = op == "AVERAGE_POOL_2D"
    for _ in range(2):
        if dtype == "int8":
            x = int8_input(rng, case.shape)
            act_min, act_max = activation_range_int8(low, high, *POOL_Q)
            got = (pool.avg_pool_int8 if avg else pool.max_pool_int8)(x, case.filter, case.stride, case.pad, act_min, act_max)
        else:
            x = float_input(rng, case.shape)
            got = (pool.avg_pool_f32 if avg else pool.max_pool_f32)(x, case.filter, case.stride, case.pad, low, high)
        (expected,) = run_reference(model, [x])
        assert_matches(got, expected)


MEAN_CASES = [
    ((1, 7, 7, 16), (0.05, -3), (0.05, -3)),
    ((2, 5, 3, 8), (0.1, 10), (0.02, -20)),
    ((1, 49, 1, 4), (0.02, -128), (0.5, 5)),
    ((1, 13, 11, 3), (0.3, 0), (0.01, 0)),
    ((1, 1, 1, 6), (0.1, 3), (0.07, -2)),
    ((1, 10, 10, 5), (0.0123, 7), (0.0045, -1)),
]


@pytest.mark.parametrize("keep_dims", [True, False])
@pytest.mark.parametrize("dtype", ["int8", "float32"])
@pytest.mark.parametrize("case", MEAN_CASES, ids=lambda c: "x".join(map(str, c[0])))
def test_mean_reference(case, dtype, keep_dims):
    shape, (si, zi), (so, zo) = case
    out_shape = (shape[0], 1, 1, shape[3]) if keep_dims else (shape[0], shape[3])
    qi = dict(scale=si, zero_point=zi) if dtype == "int8" else {}
    qo = dict(scale=so, zero_point=zo) if dtype == "int8" else {}
    model = build_single_op_model("MEAN", [TensorSpec("x", shape, dtype, **qi)], [TensorSpec("y", out_shape, dtype, **qo)],
                                  {"axis": [1, 2], "keep_dims": keep_dims})
    params = qp.mean_params(si, zi, so, zo, shape[1] * shape[2])
    rng = np.random.default_rng(MEAN_CASES.index(case))
    for _ in range(4):
        if dtype == "int8":
            x = int8_input(rng, shape)
            got = pool.mean_int8(x, params, keep_dims)
        else:
            x = float_input(rng, shape)
            got = pool.mean_f32(x, keep_dims)
        (expected,) = run_reference(model, [x])
        assert got.shape == expected.shape
        assert_matches(got, expected)


def test_mean_int8_is_quantized_mean_or_sum_not_the_4d_integer_mean():
    """Pin the code path: the older reference_integer_ops::Mean (requantize, then divide rounding half
    away) would differ from TFLite on these inputs; QuantizedMeanOrSum (1/count folded into the
    multiplier) must not."""
    shape, si, zi, so, zo = (1, 7, 7, 64), 0.05, -3, 0.013, 4
    rng = np.random.default_rng(3)
    old_mismatches = 0
    for keep_dims in (True, False):
        out_shape = (1, 1, 1, 64) if keep_dims else (1, 64)
        model = build_single_op_model("MEAN", [TensorSpec("x", shape, "int8", scale=si, zero_point=zi)],
                                      [TensorSpec("y", out_shape, "int8", scale=so, zero_point=zo)],
                                      {"axis": [1, 2], "keep_dims": keep_dims})
        params = qp.mean_params(si, zi, so, zo, 49)
        m, s = quantize_multiplier(float(np.float32(si)) / float(np.float32(so)))
        for _ in range(5):
            x = int8_input(rng, shape)
            (expected,) = run_reference(model, [x])
            assert_matches(pool.mean_int8(x, params, keep_dims), expected)
            acc = multiply_by_quantized_multiplier(x.astype(np.int64).sum(axis=(1, 2), keepdims=keep_dims) - zi * 49, m, s)
            old = np.clip(np.where(acc > 0, (acc + 24) // 49, -((-acc + 24) // 49)) + zo, -128, 127)
            old_mismatches += int((old != expected).sum())
    assert old_mismatches > 0


@dataclass(frozen=True)
class FcCase:
    in_shape: tuple
    units: int
    per_channel: bool
    bias: bool = True
    act: str = "NONE"
    in_q: tuple = (0.04, -5)
    out_q: tuple = (0.2, 3)
    weights_zp: int = 0

    def id(self) -> str:
        return (f"{'x'.join(map(str, self.in_shape))}-o{self.units}-{'pc' if self.per_channel else 'pt'}"
                f"{'' if self.bias else '-nobias'}-{self.act}{f'-wzp{self.weights_zp}' if self.weights_zp else ''}")

    @property
    def depth(self) -> int:
        return self.in_shape[-1] if len(self.in_shape) == 2 else int(np.prod(self.in_shape[1:]))

    @property
    def rows(self) -> int:
        return int(np.prod(self.in_shape)) // self.depth


FC_CASES = [
    FcCase((1, 64), 10, per_channel=False),
    FcCase((3, 40), 17, per_channel=True, act="RELU6"),
    FcCase((1, 2, 2, 8), 5, per_channel=True, bias=False, act="RELU"),
    FcCase((4, 100), 12, per_channel=False, act="RELU_N1_TO_1", in_q=(0.01, 20), out_q=(0.03, -4)),
    FcCase((2, 30), 9, per_channel=False, weights_zp=3),
    FcCase((1, 1280), 16, per_channel=True, in_q=(0.02, -128), out_q=(0.15, 10)),
]


def fc_tensors(case: FcCase, dtype: str, seed: int):
    """(specs, weights, bias, weight scales) of a FULLY_CONNECTED model."""
    rng = np.random.default_rng(seed)
    k, o = case.depth, case.units
    if dtype == "float32":
        w = rng.normal(0, 1 / np.sqrt(k), (o, k)).astype(np.float32)
        b = rng.normal(0, 0.5, o).astype(np.float32) if case.bias else None
        specs = [TensorSpec("x", case.in_shape, "float32"), TensorSpec("w", (o, k), "float32", data=w),
                 None if b is None else TensorSpec("b", (o,), "float32", data=b)]
        return specs, TensorSpec("y", (case.rows, o), "float32"), w, b, None
    w = rng.integers(-127, 128, (o, k)).astype(np.int8)
    w_scales = rng.uniform(0.002, 0.02, o) if case.per_channel else np.array([0.01])
    w_scales = w_scales.astype(np.float32)
    b = rng.integers(-3000, 3000, o).astype(np.int32) if case.bias else None
    bias_scale = [float(np.float32(case.in_q[0]) * s) for s in w_scales]
    if case.per_channel:
        wq = dict(scale=[float(s) for s in w_scales], zero_point=[0] * o)
        bq = dict(scale=bias_scale, zero_point=[0] * o)
    else:
        wq = dict(scale=float(w_scales[0]), zero_point=case.weights_zp)
        bq = dict(scale=bias_scale[0], zero_point=0)
    specs = [TensorSpec("x", case.in_shape, "int8", scale=case.in_q[0], zero_point=case.in_q[1]),
             TensorSpec("w", (o, k), "int8", data=w, **wq),
             None if b is None else TensorSpec("b", (o,), "int32", data=b, **bq)]
    return specs, TensorSpec("y", (case.rows, o), "int8", scale=case.out_q[0], zero_point=case.out_q[1]), w, b, w_scales


def fc_params(case: FcCase, w_scales) -> qp.FullyConnectedParams:
    low, high = ACT_BOUNDS[case.act]
    return qp.fully_connected_params(case.in_q[0], case.in_q[1], w_scales, case.weights_zp, case.out_q[0],
                                     case.out_q[1], case.units, low, high)


@pytest.mark.parametrize("case,dtype", [(c, "int8") for c in FC_CASES]
                         + [(c, "float32") for c in FC_CASES if not c.per_channel and not c.weights_zp],
                         ids=lambda v: v.id() if isinstance(v, FcCase) else v)
def test_fully_connected_reference(case, dtype):
    seed = FC_CASES.index(case)
    specs, out, w, b, w_scales = fc_tensors(case, dtype, seed)
    model = build_single_op_model("FULLY_CONNECTED", specs, [out], {"fused_activation": case.act})
    rng = np.random.default_rng(100 + seed)
    seen = set()
    for _ in range(3):
        if dtype == "int8":
            x = int8_input(rng, case.in_shape)
            got = fc.fully_connected_int8(x, w, b, fc_params(case, w_scales))
            seen.update(got.flat)
        else:
            x = float_input(rng, case.in_shape, 1.0)
            got = fc.fully_connected_f32(x, w, b, *ACT_BOUNDS[case.act])
        (expected,) = run_reference(model, [x])
        assert_matches(got, expected)
    assert dtype == "float32" or len(seen) > 4, "the case must exercise requantization, not just saturate"


@pytest.mark.parametrize("per_channel", [False, True])
def test_fully_connected_int8_requantizes_in_double(per_channel):
    """Exact ties (scale 1/2, 1/4, ...): TFLite's reference FC rounds acc * scale half away from zero
    in double; MultiplyByQuantizedMultiplier would round the negative ties up. Pin the former."""
    rows, depth, units = 64, 4, 6
    rng = np.random.default_rng(5)
    w = rng.integers(-3, 4, (units, depth)).astype(np.int8)
    w_scales = np.array([0.25, 0.125, 0.25, 0.0625, 0.25, 0.125] if per_channel else [0.25], dtype=np.float32)
    wq = dict(scale=[float(s) for s in w_scales], zero_point=[0] * units) if per_channel else dict(scale=0.25, zero_point=0)
    model = build_single_op_model("FULLY_CONNECTED", [TensorSpec("x", (rows, depth), "int8", scale=0.5, zero_point=0),
                                                      TensorSpec("w", (units, depth), "int8", data=w, **wq), None],
                                  [TensorSpec("y", (rows, units), "int8", scale=1.0, zero_point=0)], {})
    x = rng.integers(-10, 10, (rows, depth), dtype=np.int8)
    (expected,) = run_reference(model, [x])
    params = qp.fully_connected_params(0.5, 0, w_scales, 0, 1.0, 0, units)
    assert_matches(fc.fully_connected_int8(x, w, None, params), expected)
    acc = x.astype(np.int64) @ w.T.astype(np.int64)
    pairs = [quantize_multiplier(float(s)) for s in params.scale]
    fixed = np.clip(multiply_by_quantized_multiplier(acc, np.array([m for m, _ in pairs]), np.array([s for _, s in pairs])),
                    -128, 127)
    assert (fixed != expected).any(), "case does not discriminate double from fixed-point requantization"


SOFTMAX_CASES = [
    ((4, 10), 0.1, 3, 1.0),
    ((2, 100), 0.05, -10, 1.0),
    ((1, 1, 1, 1001), 1 / 16, 0, 0.5),
    ((3, 33), 0.02, 0, 2.0),
    ((5, 7), 0.5, 0, 1.0),            # diff_min -31: most differences contribute exactly 0
    ((2, 300), 0.25, -128, 0.1),
    ((6, 2), 0.003, 1, 1.0),
]


@pytest.mark.parametrize("dtype", ["int8", "float32"])
@pytest.mark.parametrize("case", SOFTMAX_CASES, ids=lambda c: f"{'x'.join(map(str, c[0]))}-s{c[1]:.3g}-b{c[3]}")
def test_softmax_reference(case, dtype):
    shape, scale, zp, beta = case
    if dtype == "int8":
        ins = [TensorSpec("x", shape, "int8", scale=scale, zero_point=zp)]
        outs = [TensorSpec("y", shape, "int8", scale=softmax.OUTPUT_SCALE, zero_point=softmax.OUTPUT_ZERO_POINT)]
    else:
        ins, outs = [TensorSpec("x", shape, "float32")], [TensorSpec("y", shape, "float32")]
    model = build_single_op_model("SOFTMAX", ins, outs, {"beta": beta})
    params = qp.softmax_params(scale, beta)
    rng = np.random.default_rng(SOFTMAX_CASES.index(case))
    for _ in range(3):
        if dtype == "int8":
            x = int8_input(rng, shape)
            got = softmax.softmax_int8(x, params)
        else:
            x = float_input(rng, shape, 4.0)
            got = softmax.softmax_f32(x, beta)
        (expected,) = run_reference(model, [x])
        assert_matches(got, expected)


def softmax_sweep(n: int, seed: int):
    """Random (shape, input scale, beta, input) inside the domain of TFLite's reference kernel, which
    aborts the process outside it (run_reference runs in this one): draws where it would (a row's sum
    of exps reaching 2^28) are replaced. test_softmax_any_depth.py covers the rest, isolated."""
    rng = np.random.default_rng(seed)
    cases = []
    while len(cases) < n:
        shape = (int(rng.integers(1, 4)), int(rng.integers(1, 600)))
        scale = float(np.exp(rng.uniform(np.log(0.004), np.log(1.0))))
        beta = float(rng.choice([1.0, 1.0, 0.5, 2.0, float(rng.uniform(0.05, 3))]))
        x = rng.integers(int(rng.integers(-128, 100)), 128, shape, dtype=np.int8)   # narrow ranges crowd the max
        reason, rows = softmax.tflite_reference_rejects(x, scale, beta)
        if reason or rows.any():
            continue
        cases.append((shape, scale, beta, x))
    return cases


def test_softmax_int8_sweep():
    """The fixed-point port over many scales, betas and depths: bit-exact every time."""
    for shape, scale, beta, x in softmax_sweep(40, 1):
        model = build_single_op_model("SOFTMAX", [TensorSpec("x", shape, "int8", scale=scale, zero_point=0)],
                                      [TensorSpec("y", shape, "int8", scale=1 / 256, zero_point=-128)], {"beta": beta})
        (expected,) = run_reference(model, [x])
        assert_matches(softmax.softmax_int8(x, qp.softmax_params(scale, beta)), expected, f"{shape} {scale} {beta}")


def test_softmax_int8_beyond_tflite_reference_limit_is_all_minimum():
    """Sum of exps 1000 >= 2^28 in Q12.19, where TFLite's kernel aborts: probabilities below 1/512."""
    x = np.full((1, 1000), 127, dtype=np.int8)
    assert softmax.tflite_reference_rejects(x, 0.1, 1.0)[1].all()
    assert (softmax.softmax_int8(x, qp.softmax_params(0.1, 1.0)) == -128).all()


def test_softmax_params_match_tflite_preprocessing():
    p = qp.softmax_params(0.5, 1.0)
    assert (p.input_multiplier, p.input_left_shift, p.diff_min) == (1 << 30, 26, -31)
    assert softmax.tflite_reference_rejects(None, 0.5, 1.0) == (None, None)
    # beta * scale * 2^26 <= 1: TFLite's Prepare aborts; here a right shift, every difference live
    p = qp.softmax_params(1e-9, 1.0)
    assert (p.input_multiplier, p.input_left_shift, p.diff_min) == (1152921472, -3, -(2 ** 31 - 1))
    assert "2^-26" in softmax.tflite_reference_rejects(None, 1e-9, 1.0)[0]
    assert "2^-26" in softmax.tflite_reference_rejects(None, 2.0 ** -26, 1.0)[0]     # needs > 1, not >= 1


PAD_CASES = [
    ((1, 5, 5, 3), [[0, 0], [1, 1], [1, 1], [0, 0]]),
    ((1, 4, 6, 2), [[0, 0], [0, 1], [2, 0], [0, 0]]),
    ((1, 3, 3, 4), [[0, 0], [0, 0], [0, 0], [2, 3]]),
    ((2, 2, 3, 2), [[1, 0], [1, 2], [0, 1], [1, 1]]),
]


@pytest.mark.parametrize("dtype", ["int8", "float32"])
@pytest.mark.parametrize("case", PAD_CASES, ids=lambda c: "x".join(map(str, c[0])) + "-" + "".join(str(v) for p in c[1] for v in p))
def test_pad_reference(case, dtype):
    shape, paddings = case
    out_shape = tuple(d + a + b for d, (a, b) in zip(shape, paddings))
    q = dict(scale=0.1, zero_point=-5) if dtype == "int8" else {}
    model = build_single_op_model("PAD", [TensorSpec("x", shape, dtype, **q)], [TensorSpec("y", out_shape, dtype, **q)],
                                  {"paddings": paddings})
    rng = np.random.default_rng(PAD_CASES.index(case))
    x = int8_input(rng, shape) if dtype == "int8" else float_input(rng, shape)
    got = shape_ops.pad_int8(x, paddings, -5) if dtype == "int8" else shape_ops.pad_f32(x, paddings)
    (expected,) = run_reference(model, [x])
    assert_matches(got, expected)


CONCAT_CASES = [
    # (input shapes, input (scale, zp) for int8, output (scale, zp), axis)
    ([(1, 4, 4, 3), (1, 4, 4, 5)], [(0.1, 2), (0.1, 2)], (0.1, 2), 3),
    ([(1, 3, 3, 2), (1, 3, 3, 4), (1, 3, 3, 1)], [(0.05, -10), (0.1, 2), (0.2, 0)], (0.1, 2), 3),
    ([(1, 2, 5, 3), (1, 4, 5, 3)], [(0.07, 1), (0.03, -100)], (0.06, 0), 1),
]


@pytest.mark.parametrize("dtype", ["int8", "float32"])
@pytest.mark.parametrize("case", CONCAT_CASES, ids=lambda c: f"{len(c[0])}in-axis{c[3]}")
def test_concatenation_reference(case, dtype):
    """int8 inputs with their own quantization go through a TFLite int8->int8 QUANTIZE first (what a
    converter emits; TFLite's int8 CONCATENATION only accepts the output's quantization)."""
    shapes, in_q, out_q, axis = case
    rng = np.random.default_rng(CONCAT_CASES.index(case))
    out_shape = list(shapes[0])
    out_shape[axis] = sum(s[axis] for s in shapes)
    if dtype == "float32":
        xs = [float_input(rng, s) for s in shapes]
        ins = [TensorSpec(f"x{i}", s, "float32") for i, s in enumerate(shapes)]
        expected = tflite("CONCATENATION", ins, [TensorSpec("y", tuple(out_shape), "float32")], {"axis": axis}, xs)
        assert_matches(shape_ops.concatenation_f32(xs, axis), expected)
        return
    xs = [int8_input(rng, s) for s in shapes]
    aligned = []
    for i, (x, (s, z)) in enumerate(zip(xs, in_q)):
        if (s, z) == out_q:
            aligned.append(x)
        else:
            aligned.append(tflite("QUANTIZE", [TensorSpec("q", x.shape, "int8", scale=s, zero_point=z)],
                                  [TensorSpec("r", x.shape, "int8", scale=out_q[0], zero_point=out_q[1])], {}, [x]))
    ins = [TensorSpec(f"x{i}", s, "int8", scale=out_q[0], zero_point=out_q[1]) for i, s in enumerate(shapes)]
    expected = tflite("CONCATENATION", ins, [TensorSpec("y", tuple(out_shape), "int8", scale=out_q[0], zero_point=out_q[1])],
                      {"axis": axis}, aligned)
    got = shape_ops.concatenation_int8(xs, qp.concat_params(in_q, *out_q), axis)
    assert_matches(got, expected)


QUANT_CASES = [(0.037, -12), (0.5, 0), (1 / 255, -128), (0.0123, 100)]


def quantize_input(rng, scale: float, size: int) -> np.ndarray:
    """Normal values plus exact halves of the scale (where round-half-away and the division's
    precision matter) and saturating extremes."""
    s = np.float32(scale)
    x = rng.normal(0, 60 * scale, size).astype(np.float32)
    halves = np.arange(60) - 30 + 0.5
    x[:60] = (halves * np.float64(s)).astype(np.float32)
    x[60:120] = halves.astype(np.float32) * s
    x[120:124] = [1e6, -1e6, 0.0, -0.0]
    return x


@pytest.mark.parametrize("scale,zp", QUANT_CASES)
def test_quantize_dequantize_reference(scale, zp):
    shape = (1, 10, 10, 3)
    rng = np.random.default_rng(QUANT_CASES.index((scale, zp)))
    x = quantize_input(rng, scale, 300).reshape(shape)
    q = tflite("QUANTIZE", [TensorSpec("x", shape, "float32")], [TensorSpec("y", shape, "int8", scale=scale, zero_point=zp)],
               {}, [x])
    assert_matches(ew.quantize_int8(x, scale, zp), q)
    # the float32 division is what TFLite does here, not the double one of older TFLite source
    v = x.astype(np.float64) / float(np.float32(scale))
    in_double = np.clip(round_half_away_f64(np.clip(v, -1024, 1024)) + zp, -128, 127)
    assert (in_double != q).any() or scale == 0.5
    qi = int8_input(rng, shape)
    d = tflite("DEQUANTIZE", [TensorSpec("x", shape, "int8", scale=scale, zero_point=zp)], [TensorSpec("y", shape, "float32")],
               {}, [qi])
    got = ew.dequantize_int8(qi, scale, zp)
    assert got.dtype == np.float32 and np.array_equal(got.view(np.int32), d.view(np.int32)), "dequantize is bit-exact"


RELU_QUANT = [((0.05, -10), (0.05, -10)), ((0.05, -10), (0.03, -128)), ((0.1, 20), (0.0235, -128))]


@pytest.mark.parametrize("quant,dtype", [(RELU_QUANT[0], "float32")] + [(q, "int8") for q in RELU_QUANT],
                         ids=["float32", "int8-same-q", "int8-requant", "int8-requant2"])
@pytest.mark.parametrize("op", ["RELU", "RELU6"])
def test_relu_reference(op, quant, dtype):
    shape = (1, 6, 6, 4)
    (si, zi), (so, zo) = quant
    qi = dict(scale=si, zero_point=zi) if dtype == "int8" else {}
    qo = dict(scale=so, zero_point=zo) if dtype == "int8" else {}
    rng = np.random.default_rng(7)
    x = int8_input(rng, shape) if dtype == "int8" else float_input(rng, shape, 5.0)
    expected = tflite(op, [TensorSpec("x", shape, dtype, **qi)], [TensorSpec("y", shape, dtype, **qo)], {}, [x])
    if dtype == "int8":
        got = ew.relu_int8(x, qp.relu_params(op.lower(), si, zi, so, zo))
    else:
        got = ew.relu_f32(x) if op == "RELU" else ew.relu6_f32(x)
    assert_matches(got, expected)


@pytest.mark.parametrize("dtype", ["int8", "float32"])
def test_reshape_reference(dtype):
    q = dict(scale=0.1, zero_point=1) if dtype == "int8" else {}
    rng = np.random.default_rng(1)
    x = int8_input(rng, (1, 2, 2, 8)) if dtype == "int8" else float_input(rng, (1, 2, 2, 8))
    expected = tflite("RESHAPE", [TensorSpec("x", (1, 2, 2, 8), dtype, **q)], [TensorSpec("y", (1, 32), dtype, **q)],
                      {"new_shape": [1, 32]}, [x])
    assert_matches(shape_ops.reshape(x, (1, 32)), expected)


# ==============================================================================================
# 2. C templates vs the NumPy reference, natively
# ==============================================================================================

@dataclass
class CCase:
    template: str                      # e.g. "avg_pool2d_s8"
    k: dict
    inputs: list                       # numpy arrays, int8 or float32, in argument order
    expected: np.ndarray               # NumPy reference (float64 for float kernels)
    out_dtype: type = np.int8
    label: str = ""
    bit_exact_float: bool = False      # float output that must match the reference bit for bit


@dataclass
class CProgram:
    cases: list = field(default_factory=list)

    def add(self, case: CCase) -> None:
        case.k = dict(case.k, fn=f"kernel{len(self.cases)}", title=case.label or case.template)
        self.cases.append(case)


C_TYPE = {np.dtype(np.int8): "int8_t", np.dtype(np.float32): "float"}


def library_prelude() -> str:
    return ("#include <stdint.h>\n#include <stdio.h>\n\n" + render("library/requantize.c.j2") + "\n"
            + render("library/fixedpoint.c.j2") + render("library/float_activation.c.j2") + "\n")


def c_source(program: CProgram) -> str:
    parts = [library_prelude()]
    buffers, body = [], []
    for i, case in enumerate(program.cases):
        parts.append(render(f"kernels/{case.template}.c.j2", k=case.k))
        args = []
        for j, x in enumerate(case.inputs):
            name = f"in{i}_{j}"
            buffers.append(f"static {C_TYPE[x.dtype]} {name}[{x.size}];")
            body.append(f"    if (fread({name}, sizeof {name}[0], (size_t){x.size}, fin) != (size_t){x.size}) return 3;")
            args.append(name)
        out = f"out{i}"
        size = case.expected.size
        buffers.append(f"static {C_TYPE[np.dtype(case.out_dtype)]} {out}[{size}];")
        body.append(f"    {case.k['fn']}({', '.join(args + [out])});")
        body.append(f"    if (fwrite({out}, sizeof {out}[0], (size_t){size}, fout) != (size_t){size}) return 4;")
    main = ["int main(int argc, char **argv)", "{", "    if (argc != 3) return 2;",
            '    FILE *fin = fopen(argv[1], "rb");', '    FILE *fout = fopen(argv[2], "wb");',
            "    if (!fin || !fout) return 2;", *body, "    fclose(fin);", "    return fclose(fout) == 0 ? 0 : 5;", "}"]
    return "\n".join(parts + buffers + [""] + main) + "\n"


def run_program(program: CProgram, workdir: Path) -> None:
    """Compile, run, and compare every case (int8 bit-exact, float within tolerance)."""
    source = workdir / "glue.c"
    source.write_text(c_source(program))
    exe = workdir / "glue"
    build = subprocess.run(["gcc", *CFLAGS, str(source), "-o", str(exe)], capture_output=True, text=True)
    assert build.returncode == 0, build.stderr[-4000:]
    (workdir / "in.bin").write_bytes(b"".join(np.ascontiguousarray(x).tobytes() for c in program.cases for x in c.inputs))
    run = subprocess.run([str(exe), str(workdir / "in.bin"), str(workdir / "out.bin")], capture_output=True, timeout=60)
    assert run.returncode == 0, run
    raw = (workdir / "out.bin").read_bytes()
    offset = 0
    for case in program.cases:
        n = case.expected.size * np.dtype(case.out_dtype).itemsize
        got = np.frombuffer(raw[offset:offset + n], dtype=case.out_dtype).reshape(case.expected.shape)
        offset += n
        expected = case.expected.astype(np.int8) if case.out_dtype == np.int8 else case.expected
        result = compare(case.k["title"], got, expected)
        assert result.ok, result.summary()
        if case.bit_exact_float:
            assert np.array_equal(got.view(np.int32), expected.astype(np.float32).view(np.int32)), case.k["title"]
    assert offset == len(raw)


needs_gcc = pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")


# -- contexts: what the templates road hands each template, built by the road itself ------------

def _q(dtype: str, scale: float, zero_point: int) -> dict:
    return dict(scale=scale, zero_point=zero_point) if dtype == "int8" else {}


def pool_k(case: PoolCase, dtype: str, op: str) -> dict:
    options = dict(filter_h=case.filter[0], filter_w=case.filter[1], stride_h=case.stride[0],
                   stride_w=case.stride[1], padding=case.padding, fused_activation=case.act)
    return template_context(op, [TensorSpec("x", case.shape, dtype, **_q(dtype, *POOL_Q))],
                            [TensorSpec("y", case.out_shape, dtype, **_q(dtype, *POOL_Q))], options)


def fc_k(case: FcCase, dtype: str, seed: int) -> dict:
    specs, out, *_ = fc_tensors(case, dtype, seed)
    return template_context("FULLY_CONNECTED", specs, [out], {"fused_activation": case.act})


def mean_k(shape, dtype: str, in_q=(0.05, 0), out_q=(0.05, 0)) -> dict:
    return template_context("MEAN", [TensorSpec("x", shape, dtype, **_q(dtype, *in_q))],
                            [TensorSpec("y", (shape[0], 1, 1, shape[3]), dtype, **_q(dtype, *out_q))],
                            {"axis": [1, 2], "keep_dims": True})


def softmax_k(shape, dtype: str, scale: float = 0.1, beta: float = 1.0) -> dict:
    out_q = (softmax.OUTPUT_SCALE, softmax.OUTPUT_ZERO_POINT)
    return template_context("SOFTMAX", [TensorSpec("x", shape, dtype, **_q(dtype, scale, 0))],
                            [TensorSpec("y", shape, dtype, **_q(dtype, *out_q))], {"beta": beta})


def concat_k(shapes, axis, dtype: str, in_q=None, out_q=(0.1, 0)) -> dict:
    in_q = in_q or [out_q] * len(shapes)
    out_shape = list(shapes[0])
    out_shape[axis] = sum(s[axis] for s in shapes)
    ins = [TensorSpec(f"x{i}", s, dtype, **_q(dtype, *q)) for i, (s, q) in enumerate(zip(shapes, in_q))]
    return template_context("CONCATENATION", ins, [TensorSpec("y", tuple(out_shape), dtype, **_q(dtype, *out_q))],
                            {"axis": axis})


def relu_k(op: str, size: int, dtype: str, in_q=(0.05, 0), out_q=(0.05, 0)) -> dict:
    return template_context(op, [TensorSpec("x", (size,), dtype, **_q(dtype, *in_q))],
                            [TensorSpec("y", (size,), dtype, **_q(dtype, *out_q))])


def pad_k(shape, paddings, dtype: str, zero_point: int = 0) -> dict:
    out_shape = tuple(d + a + b for d, (a, b) in zip(shape, paddings))
    return template_context("PAD", [TensorSpec("x", shape, dtype, **_q(dtype, 0.1, zero_point))],
                            [TensorSpec("y", out_shape, dtype, **_q(dtype, 0.1, zero_point))], {"paddings": paddings})


def quantize_k(op: str, size: int, scale: float, zero_point: int) -> dict:
    x, y = ("float32", "int8") if op == "QUANTIZE" else ("int8", "float32")
    return template_context(op, [TensorSpec("x", (size,), x, **_q(x, scale, zero_point))],
                            [TensorSpec("y", (size,), y, **_q(y, scale, zero_point))])


# -- one program per op family ------------------------------------------------------------------

def pool_program(avg: bool) -> CProgram:
    program = CProgram()
    rng = np.random.default_rng(21)
    for case in POOL_CASES + [PoolCase((1, 4, 4, 2), (5, 5), (1, 1), "SAME", "RELU6")]:
        low, high = ACT_BOUNDS[case.act]
        x8 = int8_input(rng, case.shape)
        act_min, act_max = activation_range_int8(low, high, *POOL_Q)
        ref8 = (pool.avg_pool_int8 if avg else pool.max_pool_int8)(x8, case.filter, case.stride, case.pad, act_min, act_max)
        name = "avg_pool2d" if avg else "max_pool2d"
        op = "AVERAGE_POOL_2D" if avg else "MAX_POOL_2D"
        program.add(CCase(f"{name}_s8", pool_k(case, "int8", op), [x8], ref8, label=f"{name} s8 {case.id()}"))
        xf = float_input(rng, case.shape)
        reff = (pool.avg_pool_f32 if avg else pool.max_pool_f32)(xf, case.filter, case.stride, case.pad, low, high)
        program.add(CCase(f"{name}_f32", pool_k(case, "float32", op), [xf], reff, np.float32, f"{name} f32 {case.id()}"))
    return program


def fully_connected_program() -> CProgram:
    program = CProgram()
    rng = np.random.default_rng(22)
    for i, case in enumerate(FC_CASES):
        if case.weights_zp:
            continue    # validation refuses asymmetric int8 weights from a .tflite (ONNX's reach them: test_onnx_import)
        _, _, w, b, w_scales = fc_tensors(case, "int8", i)
        x = int8_input(rng, case.in_shape)
        ref = fc.fully_connected_int8(x, w, b, fc_params(case, w_scales))
        program.add(CCase("fully_connected_s8", fc_k(case, "int8", i), [x], ref, label=f"fc s8 {case.id()}"))
        _, _, wf, bf, _ = fc_tensors(case, "float32", i)
        xf = float_input(rng, case.in_shape, 1.0)
        reff = fc.fully_connected_f32(xf, wf, bf, *ACT_BOUNDS[case.act])
        program.add(CCase("fully_connected_f32", fc_k(case, "float32", i), [xf], reff, np.float32,
                          f"fc f32 {case.id()}"))
    # the rounding ties of test_fully_connected_int8_requantizes_in_double
    w = rng.integers(-3, 4, (6, 4)).astype(np.int8)
    tie = FcCase((64, 4), 6, per_channel=True, bias=False, in_q=(0.5, 0), out_q=(1.0, 0))
    w_scales = np.array([0.25, 0.125, 0.25, 0.0625, 0.25, 0.125], dtype=np.float32)
    x = rng.integers(-10, 10, (64, 4), dtype=np.int8)
    ref = fc.fully_connected_int8(x, w, None, fc_params(tie, w_scales))
    specs = [TensorSpec("x", tie.in_shape, "int8", scale=0.5, zero_point=0),
             TensorSpec("w", w.shape, "int8", data=w, scale=[float(s) for s in w_scales], zero_point=[0] * 6)]
    k = template_context("FULLY_CONNECTED", specs, [TensorSpec("y", (64, 6), "int8", scale=1.0, zero_point=0)])
    program.add(CCase("fully_connected_s8", k, [x], ref, label="fc s8 ties"))
    return program


def softmax_program() -> CProgram:
    program = CProgram()
    rng = np.random.default_rng(23)
    for shape, scale, _, beta in SOFTMAX_CASES:
        params = qp.softmax_params(scale, beta)
        x = int8_input(rng, shape)
        x.flat[:3] = [127, 127, -128]       # ties at the maximum, and the minimum
        program.add(CCase("softmax_s8", softmax_k(shape, "int8", scale, beta), [x], softmax.softmax_int8(x, params),
                          label=f"softmax s8 {shape} {scale:.3g} {beta}"))
        xf = float_input(rng, shape, 4.0)
        xf.flat[:2] = [-90.0, 0.0]
        program.add(CCase("softmax_f32", softmax_k(shape, "float32", beta=beta), [xf], softmax.softmax_f32(xf, beta), np.float32,
                          f"softmax f32 {shape} {beta}"))
    for shape, scale, beta, x in softmax_sweep(20, 2):
        params = qp.softmax_params(scale, beta)
        program.add(CCase("softmax_s8", softmax_k(shape, "int8", scale, beta), [x], softmax.softmax_int8(x, params),
                          label=f"softmax s8 sweep {shape} {scale:.3g} {beta:.3g}"))
    # beyond the limits of TFLite's reference kernel (test_softmax_any_depth.py pins these against
    # TFLite): a right-shifted input multiplier, rows summing to >= 2^28, the int32 sum wrapping around
    for shape, scale, beta in [((2, 10), 1e-9, 1.0), ((3, 1000), 0.1, 1.0), ((1, 8193), 0.1, 1.0), ((2, 10), 40.0, 2.0)]:
        params = qp.softmax_params(scale, beta)
        x = int8_input(rng, shape)
        x[0] = 3                            # a flat row
        program.add(CCase("softmax_s8", softmax_k(shape, "int8", scale, beta), [x], softmax.softmax_int8(x, params),
                          label=f"softmax s8 beyond {shape} {scale:.3g} {beta}"))
    # exp over its whole input range: one wide row, beta 1
    xf = np.linspace(-100, 0, 2001, dtype=np.float32).reshape(1, -1)
    program.add(CCase("softmax_f32", softmax_k(xf.shape, "float32"), [xf], softmax.softmax_f32(xf), np.float32, "softmax f32 ramp"))
    return program


def mean_program() -> CProgram:
    program = CProgram()
    rng = np.random.default_rng(24)
    for shape, (si, zi), (so, zo) in MEAN_CASES:
        params = qp.mean_params(si, zi, so, zo, shape[1] * shape[2])
        x = int8_input(rng, shape)
        program.add(CCase("mean_s8", mean_k(shape, "int8", (si, zi), (so, zo)), [x], pool.mean_int8(x, params), label=f"mean s8 {shape}"))
        xf = float_input(rng, shape)
        program.add(CCase("mean_f32", mean_k(shape, "float32"), [xf], pool.mean_f32(xf), np.float32, f"mean f32 {shape}"))
    return program


def pad_program() -> CProgram:
    program = CProgram()
    rng = np.random.default_rng(25)
    for shape, paddings in PAD_CASES + [((1, 2, 2, 3), [[0, 0], [0, 0], [0, 0], [0, 0]])]:
        x = int8_input(rng, shape)
        program.add(CCase("pad_s8", pad_k(shape, paddings, "int8", -5), [x],
                          shape_ops.pad_int8(x, paddings, -5), label=f"pad s8 {shape}"))
        xf = float_input(rng, shape)
        program.add(CCase("pad_f32", pad_k(shape, paddings, "float32"), [xf], shape_ops.pad_f32(xf, paddings),
                          np.float32, f"pad f32 {shape}"))
    return program


def concatenation_program() -> CProgram:
    program = CProgram()
    rng = np.random.default_rng(26)
    for shapes, in_q, out_q, axis in CONCAT_CASES:
        xs = [int8_input(rng, s) for s in shapes]
        params = qp.concat_params(in_q, *out_q)
        program.add(CCase("concatenation_s8", concat_k(shapes, axis, "int8", in_q, out_q), xs,
                          shape_ops.concatenation_int8(xs, params, axis), label=f"concat s8 axis {axis}"))
        xfs = [float_input(rng, s) for s in shapes]
        program.add(CCase("concatenation_f32", concat_k(shapes, axis, "float32"), xfs, shape_ops.concatenation_f32(xfs, axis),
                          np.float32, f"concat f32 axis {axis}"))
    return program


def quantize_program() -> CProgram:
    program = CProgram()
    rng = np.random.default_rng(27)
    for scale, zp in QUANT_CASES:
        x = quantize_input(rng, scale, 500)
        program.add(CCase("quantize_s8", quantize_k("QUANTIZE", x.size, scale, zp), [x], ew.quantize_int8(x, scale, zp),
                          label=f"quantize {scale:.3g} {zp}"))
        q = np.arange(-128, 128, dtype=np.int8)
        program.add(CCase("dequantize_s8", quantize_k("DEQUANTIZE", q.size, scale, zp), [q],
                          ew.dequantize_int8(q, scale, zp).astype(np.float64), np.float32, f"dequantize {scale:.3g} {zp}",
                          bit_exact_float=True))
    return program


def relu_program() -> CProgram:
    program = CProgram()
    q = np.arange(-128, 128, dtype=np.int8)
    for op in ("RELU", "RELU6"):
        for (si, zi), (so, zo) in RELU_QUANT:
            params = qp.relu_params(op.lower(), si, zi, so, zo)
            program.add(CCase("relu_s8", relu_k(op, q.size, "int8", (si, zi), (so, zo)), [q], ew.relu_int8(q, params),
                              label=f"{op} s8 {si}/{so}"))
        xf = np.linspace(-10, 10, 301, dtype=np.float32)
        ref = ew.relu_f32(xf) if op == "RELU" else ew.relu6_f32(xf)
        program.add(CCase("relu_f32", relu_k(op, xf.size, "float32"), [xf], ref, np.float32, f"{op} f32"))
    return program


def reshape_program() -> CProgram:
    program = CProgram()
    rng = np.random.default_rng(28)
    x = int8_input(rng, (1, 2, 2, 8))
    program.add(CCase("reshape_s8", dict(size=x.size), [x], shape_ops.reshape(x, (1, 32)), label="reshape s8"))
    xf = float_input(rng, (1, 2, 2, 8))
    program.add(CCase("reshape_f32", dict(size=xf.size), [xf], shape_ops.reshape(xf, (1, 32)), np.float32, "reshape f32"))
    return program


PROGRAMS = {
    "avg_pool2d": lambda: pool_program(avg=True),
    "max_pool2d": lambda: pool_program(avg=False),
    "fully_connected": fully_connected_program,
    "softmax": softmax_program,
    "mean": mean_program,
    "pad": pad_program,
    "concatenation": concatenation_program,
    "quantize_dequantize": quantize_program,
    "relu": relu_program,
    "reshape": reshape_program,
}


@needs_gcc
@pytest.mark.parametrize("family", list(PROGRAMS))
def test_c_kernels_match_reference(family, tmp_path):
    run_program(PROGRAMS[family](), tmp_path)


@needs_gcc
def test_softmax_f32_exp_accuracy(tmp_path):
    """The float softmax kernel's own exp(), alone: within 4e-7 relative of exp() over [-87, 0]."""
    x = np.concatenate([np.linspace(-87.0, 0.0, 20001), -np.geomspace(1e-8, 1.0, 200), [0.0, -0.5, -0.25]]).astype(np.float32)
    source = (library_prelude() + render("kernels/softmax_f32.c.j2", k=dict(softmax_k((1, 1), "float32"), fn="sm", title="exp"))
              + "int main(void)\n{\n    float x;\n    while (fread(&x, sizeof x, 1, stdin) == 1) {\n"
              + "        const float y = sm_exp(x);\n        if (fwrite(&y, sizeof y, 1, stdout) != 1) return 1;\n    }\n"
              + "    (void)sm;\n    return 0;\n}\n")
    (tmp_path / "exp.c").write_text(source)
    build = subprocess.run(["gcc", *CFLAGS, str(tmp_path / "exp.c"), "-o", str(tmp_path / "exp")], capture_output=True, text=True)
    assert build.returncode == 0, build.stderr[-3000:]
    run = subprocess.run([str(tmp_path / "exp")], input=x.tobytes(), capture_output=True, check=True)
    got = np.frombuffer(run.stdout, dtype=np.float32).astype(np.float64)
    expected = np.exp(x.astype(np.float64))
    assert np.max(np.abs(got - expected) / expected) < 4e-7


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="needs arm-none-eabi-gcc")
@pytest.mark.parametrize("cpu", [("-mcpu=cortex-m4", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"), ("-mcpu=cortex-m0",)],
                         ids=["cortex-m4", "cortex-m0"])
def test_c_kernels_warning_free_on_cortex_m(cpu, tmp_path):
    """Every template, compiled for Cortex-M (int32_t is long there), warning-free and calling no libc
    or libm function (only libgcc's arithmetic helpers, e.g. soft double on an FPU-less core)."""
    cases = [c for make in PROGRAMS.values() for c in make().cases]
    kernels = [render(f"kernels/{c.template}.c.j2", k=dict(c.k, fn=f"arm{i}")) for i, c in enumerate(cases)]
    keep = ", ".join(f"(void (*)(void))arm{i}" for i in range(len(cases)))
    source = tmp_path / "glue_arm.c"
    source.write_text(library_prelude().replace("#include <stdio.h>\n", "") + "\n".join(kernels)
                      + f"\nvoid (*const glue_kernels[])(void) = {{{keep}}};\n")
    obj = tmp_path / "glue_arm.o"
    build = subprocess.run(["arm-none-eabi-gcc", *CFLAGS, "-mthumb", *cpu, "-ffreestanding", "-c", str(source), "-o", str(obj)],
                           capture_output=True, text=True)
    assert build.returncode == 0, build.stderr[-4000:]
    nm = subprocess.run(["arm-none-eabi-nm", "-u", str(obj)], capture_output=True, text=True, check=True)
    undefined = {line.split()[-1] for line in nm.stdout.splitlines() if line.strip()}
    assert all(name.startswith("__aeabi_") or name in {"memcpy", "memset", "memmove"} for name in undefined), undefined
