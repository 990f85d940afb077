"""TVM backend, the glue ops and hybrid Conv2D: every op of the templates backend through TE/s_tir to C.

1. Every op of test_tflite_import's single-op matrix (and QUANTIZE / DEQUANTIZE), int8 and float32,
   built as a .tflite file, generated with backend "tvm", run on x86 and compared with the TFLite
   interpreter's reference kernels: int8 bit-exact, float32 within tolerance.
2. Edge cases of each glue op against the interpreter: batches, windows covering the image, clamp
   activations, per-channel / bias-less / offset-weight fully connected, softmax rows beyond the exp
   cache (recomputed exps) and with beta, padding of N and C, three-way and non-channel concatenation,
   requantizing relu; hybrid conv in both input-quantization modes; an int8 concatenation whose
   inputs are requantized (NumPy oracle, as TFLite's int8 concatenation rejects them); the ONNX
   round-half-even requantize.
3. Non-default schedule knobs change the code and keep the results; bad knobs are user errors.
"""
from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.tvm
tvm = pytest.importorskip("tvm")
pytest.importorskip("ai_edge_litert")

from dwscodegen.backends.tvm import generate_kernels  # noqa: E402
from dwscodegen.errors import DwsError  # noqa: E402
from dwscodegen.importers import load_model  # noqa: E402
from dwscodegen.ir import ConcatAttrs, Graph, Op, Quant, Tensor  # noqa: E402
from dwscodegen.targets import load_target  # noqa: E402
from dwscodegen.validate import validate  # noqa: E402
from dwscodegen.verify import verify_graph  # noqa: E402
from .support.tflite_builder import TensorSpec, build_single_op_model  # noqa: E402
from .support.tflite_cases import OPS, act, bias, conv_weights, single_op  # noqa: E402
from .support.layers import assert_verified  # noqa: E402


@pytest.fixture(scope="module")
def x86():
    return load_target("x86_64")


def _graph(tmp_path, name, inputs, outputs, options, file="op"):
    path = tmp_path / f"{file}.tflite"
    path.write_bytes(build_single_op_model(name, inputs, outputs, options))
    return load_model(path)


_check = assert_verified


def _verify(graph, target, schedules=None, oracle="tflite"):
    return verify_graph(graph, target, backend="tvm", runs=3, seed=2, oracle=oracle, schedules=schedules)


# ----------------------------------------------------------------------------- 1. every op

@pytest.mark.parametrize("dtype", ["int8", "float32"])
@pytest.mark.parametrize("op", OPS)
def test_single_op_matches_tflite(tmp_path, op, dtype, x86):
    graph = _graph(tmp_path, *single_op(op, dtype, np.random.default_rng(5)))
    _check(_verify(graph, x86))


@pytest.mark.parametrize("op", ["QUANTIZE", "DEQUANTIZE"])
@pytest.mark.parametrize("scale,zp", [(0.02, 3), (0.0123, 100), (1 / 255, -128)])
def test_quantize_dequantize_match_tflite(tmp_path, op, scale, zp, x86):
    floats, ints = act("x", (1, 7, 9), "float32"), act("x", (1, 7, 9), "int8", scale, zp)
    inp = floats if op == "QUANTIZE" else ints
    out = act("y", (1, 7, 9), "int8", scale, zp) if op == "QUANTIZE" else act("y", (1, 7, 9), "float32")
    _check(_verify(_graph(tmp_path, op, [inp], [out], {}), x86))


# ----------------------------------------------------------------------------- 2. edge cases

def _pool(op, shape, out_shape, filt, stride, padding, act_name="NONE"):
    def build(dtype, rng):
        return (op, [act("x", shape, dtype, 0.05, -7)], [act("y", out_shape, dtype, 0.05, -7)],
                dict(filter_h=filt[0], filter_w=filt[1], stride_h=stride[0], stride_w=stride[1], padding=padding,
                     fused_activation=act_name))
    return build


def _mean(shape, keep_dims, in_q, out_q):
    def build(dtype, rng):
        out_shape = (shape[0], 1, 1, shape[3]) if keep_dims else (shape[0], shape[3])
        return ("MEAN", [act("x", shape, dtype, *in_q)], [act("y", out_shape, dtype, *out_q)],
                dict(axis=[1, 2], keep_dims=keep_dims))
    return build


def _fc(in_shape, units, per_channel, has_bias=True, act_name="NONE", in_q=(0.04, -5), out_q=(0.2, 3)):
    def build(dtype, rng):
        depth = in_shape[-1] if len(in_shape) == 2 else int(np.prod(in_shape[1:]))
        rows = int(np.prod(in_shape)) // depth
        if dtype == "float32":
            data = rng.normal(0, depth ** -0.5, (units, depth)).astype(np.float32)
            w = TensorSpec("w", (units, depth), dtype, data=data)
            b = TensorSpec("b", (units,), dtype, data=rng.normal(0, 0.5, units).astype(np.float32))
        else:
            scales = rng.uniform(0.002, 0.02, units if per_channel else 1).astype(np.float32)
            wq = (dict(scale=[float(s) for s in scales], zero_point=[0] * units) if per_channel
                  else dict(scale=float(scales[0]), zero_point=0))
            data = rng.integers(-127, 128, (units, depth), dtype=np.int8)
            w = TensorSpec("w", (units, depth), dtype, data=data, **wq)
            bscale = [float(np.float32(in_q[0]) * s) for s in scales]
            b = TensorSpec("b", (units,), "int32", data=rng.integers(-3000, 3000, units, dtype=np.int32),
                           scale=bscale if per_channel else bscale[0], zero_point=[0] * units if per_channel else 0)
        return ("FULLY_CONNECTED", [act("x", in_shape, dtype, *in_q), w, b if has_bias else None],
                [act("y", (rows, units), dtype, *out_q)], dict(fused_activation=act_name))
    return build


def _softmax(shape, scale, zp, beta):
    def build(dtype, rng):
        return ("SOFTMAX", [act("x", shape, dtype, scale, zp)], [act("y", shape, dtype, 1 / 256, -128)],
                dict(beta=beta))
    return build


def _pad(shape, paddings):
    def build(dtype, rng):
        out_shape = tuple(d + a + b for d, (a, b) in zip(shape, paddings))
        return ("PAD", [act("x", shape, dtype, 0.1, -5)], [act("y", out_shape, dtype, 0.1, -5)],
                dict(paddings=paddings))
    return build


def _concat(shapes, axis):
    def build(dtype, rng):
        out = list(shapes[0])
        out[axis] = sum(s[axis] for s in shapes)
        return ("CONCATENATION", [act(f"x{k}", s, dtype, 0.1, 2) for k, s in enumerate(shapes)],
                [act("y", tuple(out), dtype, 0.1, 2)], dict(axis=axis))
    return build


def _relu(op, in_q, out_q):
    def build(dtype, rng):
        return (op, [act("x", (1, 5, 6, 7), dtype, *in_q)], [act("y", (1, 5, 6, 7), dtype, *out_q)], {})
    return build


EDGE = {
    "avgpool-batch2-whole-image": _pool("AVERAGE_POOL_2D", (2, 7, 7, 4), (2, 1, 1, 4), (7, 7), (1, 1), "VALID"),
    "avgpool-k43-s32-same-clamp": _pool("AVERAGE_POOL_2D", (1, 6, 5, 3), (1, 2, 3, 3), (4, 4), (3, 2), "SAME",
                                        "RELU_N1_TO_1"),
    "maxpool-k32-s12-same-relu": _pool("MAX_POOL_2D", (1, 10, 10, 2), (1, 10, 5, 2), (3, 2), (1, 2), "SAME", "RELU"),
    "maxpool-k22-valid-relu6": _pool("MAX_POOL_2D", (1, 8, 7, 3), (1, 4, 3, 3), (2, 2), (2, 2), "VALID", "RELU6"),
    "mean-batch2-flat": _mean((2, 5, 3, 8), False, (0.1, 10), (0.02, -20)),
    "mean-49x1-zp-128": _mean((1, 49, 1, 4), True, (0.02, -128), (0.5, 5)),
    "fc-per-channel-relu6": _fc((3, 40), 17, True, act_name="RELU6"),
    "fc-4d-nobias-relu": _fc((1, 2, 2, 8), 5, True, has_bias=False, act_name="RELU"),
    "fc-per-tensor-batch2": _fc((2, 30), 9, False),
    "fc-depth-1280": _fc((1, 1280), 16, True, in_q=(0.02, -128), out_q=(0.15, 10)),
    "softmax-2x100": _softmax((2, 100), 0.05, -10, 1.0),
    "softmax-3x33-beta2": _softmax((3, 33), 0.02, 0, 2.0),
    "softmax-5x7-diffmin": _softmax((5, 7), 0.5, 0, 1.0),
    "pad-n-and-c": _pad((2, 2, 3, 2), [[1, 0], [1, 2], [0, 1], [1, 1]]),
    "pad-c-only": _pad((1, 3, 3, 4), [[0, 0], [0, 0], [0, 0], [2, 3]]),
    "concat-3-inputs": _concat([(1, 3, 3, 2), (1, 3, 3, 4), (1, 3, 3, 1)], 3),
    "concat-axis1": _concat([(1, 2, 5, 3), (1, 4, 5, 3)], 1),
    "relu-same-quant": _relu("RELU", (0.05, -10), (0.05, -10)),
    "relu6-requantize": _relu("RELU6", (0.1, 20), (0.0235, -128)),
}


@pytest.mark.parametrize("dtype", ["int8", "float32"])
@pytest.mark.parametrize("case", list(EDGE))
def test_glue_edge_cases_match_tflite(tmp_path, case, dtype, x86):
    _check(_verify(_graph(tmp_path, *EDGE[case](dtype, np.random.default_rng(3))), x86))


def _hybrid(kind, per_channel, rng):
    shape, oc = ((1, 7, 6, 2), 4) if kind == "conv" else ((1, 5, 5, 8), 6)
    k = (3, 3) if kind == "conv" else (1, 1)
    w_shape = (oc, *k, shape[3])
    w = (conv_weights(rng, w_shape, "int8", 0) if per_channel else
         TensorSpec("w", w_shape, "int8", data=rng.integers(-127, 128, w_shape, dtype=np.int8), scale=[0.01],
                    zero_point=[0]))
    options = dict(padding="SAME", stride_h=2, stride_w=2, fused_activation="RELU") if kind == "conv" else \
        dict(padding="VALID")
    out_hw = (4, 3) if kind == "conv" else shape[1:3]
    return ("CONV_2D", [act("x", shape, "float32"), w, bias(rng, oc, "float32")],
            [act("y", (1, *out_hw, oc), "float32")], options)


@pytest.mark.parametrize("per_channel", [True, False], ids=["asymmetric", "symmetric"])
@pytest.mark.parametrize("kind", ["conv", "pointwise"])
def test_hybrid_conv_matches_tflite_and_templates(tmp_path, kind, per_channel, x86):
    """float32 activations, int8 filter; the quantized input lives in a static buffer of the kernel."""
    graph = _graph(tmp_path, *_hybrid(kind, per_channel, np.random.default_rng(0)))
    _check(_verify(graph, x86))
    source = generate_kernels(graph, x86)[0].source
    assert f"static int8_t layer0_conv_2d_0_quantized[{graph.tensor(graph.inputs[0]).size}];" in source
    outputs = {}
    for backend in ("templates", "tvm"):
        build = tmp_path / backend
        _check(verify_graph(graph, x86, backend=backend, runs=2, seed=4, build_dir=build))
        outputs[backend] = np.fromfile(build / "out_1_0.bin", np.float32)
    np.testing.assert_array_equal(outputs["templates"], outputs["tvm"])


def _requantizing_concat() -> Graph:
    """int8 concatenation whose inputs carry their own scales and zero points (the reference
    requantizes them as TFLite's int8->int8 QUANTIZE would)."""
    def t(name, shape, scale, zp):
        return Tensor(name, shape, "int8", Quant(np.array([scale]), np.array([zp], np.int32)))
    tensors = {n: t(n, s, sc, zp) for n, s, sc, zp in (("a", (1, 3, 3, 2), 0.05, -10), ("b", (1, 3, 3, 4), 0.1, 2),
                                                         ("c", (1, 3, 3, 1), 0.2, 0), ("y", (1, 3, 3, 7), 0.1, 2))}
    op = Op(0, "cat", "Concatenation", ["a", "b", "c"], ["y"], ConcatAttrs(axis=3))
    return validate(Graph("concat_requant", tensors, [op], ["a", "b", "c"], ["y"], source="<test>"))


def test_concatenation_requantizes_inputs(x86):
    graph = _requantizing_concat()
    source = generate_kernels(graph, x86)[0].source
    assert "input0, input1, input2, output" in source
    _check(verify_graph(graph, x86, backend="tvm", runs=3, seed=1))


def test_onnx_round_half_even_requantize(tmp_path, x86):
    """Conv and fully connected with requant "onnx" (float32 scale, round half to even): exact ties."""
    pytest.importorskip("onnxruntime")
    from .support.onnx_cases import tie_model
    for kind in ("conv", "fc"):
        graph = load_model(tie_model(tmp_path / f"ties_{kind}.onnx", kind))
        assert graph.ops[1].attrs.requant == "onnx"
        _check(verify_graph(graph, x86, backend="tvm", runs=3, seed=5, oracle="numpy", check_layers=True))


# ----------------------------------------------------------------------------- 3. schedule knobs

KNOBS = [
    ("avgpool-k43-s32-same-clamp", "int8", dict(c_tile=2, unroll_tile=False, unroll_kernel=False)),
    ("maxpool-k32-s12-same-relu", "float32", dict(c_tile=2, unroll_kernel=False)),
    ("mean-batch2-flat", "int8", dict(c_tile=3, unroll_kernel=True)),
    ("fc-per-channel-relu6", "int8", dict(o_tile=8, unroll_tile=True, k_unroll=3)),
    ("fc-per-tensor-batch2", "float32", dict(o_tile=1, k_unroll=1)),
    ("softmax-5x7-diffmin", "int8", dict(cache_exp=False)),
    ("softmax-5x7-diffmin", "int8", dict(exp_table=True)),          # the table with differences below diff_min
    ("softmax-2x100", "int8", dict(exp_table=False)),               # the chains the table replaces by default
    ("softmax-3x33-beta2", "float32", dict(cache_exp=True)),
    ("pad-n-and-c", "int8", dict(decompose=False)),
    ("concat-3-inputs", "int8", dict(partition=False)),
    ("relu6-requantize", "int8", dict(split=8, unroll=True)),
]


@pytest.mark.parametrize("case,dtype,knobs", KNOBS, ids=[f"{c}-{d}" for c, d, _ in KNOBS])
def test_glue_knobs_keep_results(tmp_path, case, dtype, knobs, x86):
    graph = _graph(tmp_path, *EDGE[case](dtype, np.random.default_rng(3)))
    tuned = generate_kernels(graph, x86, {0: knobs})[0].source
    assert generate_kernels(graph, x86)[0].source != tuned
    _check(_verify(graph, x86, schedules={0: knobs}))


def test_hybrid_knobs_keep_results(tmp_path, x86):
    graph = _graph(tmp_path, *_hybrid("conv", True, np.random.default_rng(0)))
    _check(_verify(graph, x86, schedules={0: dict(oc_tile=1, unroll_kernel=False)}))


def test_bad_glue_knobs_are_user_errors(tmp_path, x86):
    pool = _graph(tmp_path, *EDGE["maxpool-k22-valid-relu6"]("int8", np.random.default_rng(0)), file="pool")
    with pytest.raises(DwsError, match="unknown schedule parameter 'oc_tile' for a pool kernel; known: c_tile"):
        generate_kernels(pool, x86, {0: {"oc_tile": 4}})
    with pytest.raises(DwsError, match="c_tile=17 must be in"):
        generate_kernels(pool, x86, {0: {"c_tile": 17}})
    softmax = _graph(tmp_path, *EDGE["softmax-2x100"]("int8", np.random.default_rng(0)), file="softmax")
    with pytest.raises(DwsError, match="cache_exp=1 must be true/false"):
        generate_kernels(softmax, x86, {0: {"cache_exp": 1}})
    # a row of 100 cached exps (without the exp table, which replaces them) does not fit the 256-byte temporary
    # limit: refused, not put on the stack
    with pytest.raises(DwsError, match="temporaries need .* bytes \\(limit 256\\)"):
        generate_kernels(softmax, x86, {0: {"cache_exp": True, "exp_table": False}})
    float_softmax = _graph(tmp_path, *EDGE["softmax-2x100"]("float32", np.random.default_rng(0)), file="softmax_f32")
    with pytest.raises(DwsError, match="exp_table applies to int8 softmax only"):
        generate_kernels(float_softmax, x86, {0: {"exp_table": True}})
