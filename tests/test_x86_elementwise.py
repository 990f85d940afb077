"""x86 elementwise variants (backends/templates/simd/avx_elementwise.py): int8 table lookups by two vpshufb
chains, Mul (int8, float32) and float32 Add over broadcast operands, float32 HardSwish.

- The chains' arithmetic against the table it stands for, every one of the 256 inputs (no compiler needed).
- Single-op .tflite models against the TFLite interpreter (BUILTIN_REF) on x86_64-v3 and x86_64-v4, int8
  bit-exact, float32 within tolerance, each case asserting which kernel ran: the activations' tables, Keras'
  Rescaling (Mul / Add by a one-element constant), Mul of equal shapes, squeeze-excite and scalar broadcasts,
  extreme scales, odd sizes (vector tails) and batch 2; int8 Softmax by its exp tables (1000 classes, rows of
  which few entries count, and a scale TFLite's kernel refuses, against the NumPy reference).
x86_64-v4 cases skip on hosts without AVX-512 / VNNI.
"""
from __future__ import annotations

import numpy as np
import pytest

from dwscodegen.backends.templates import kernel_used
from dwscodegen.backends.templates.simd import avx_elementwise
from dwscodegen.verify import verify_graph
from .support import glue_cases as glue
from .support.layers import assert_verified
from .support.targets import target_or_skip
from .support.tflite_cases import act as act_spec

LEVELS = ("x86_64-v3", "x86_64-v4")


@pytest.fixture(params=LEVELS)
def level(request):
    return target_or_skip(request.param)


def _isa(target) -> str:
    return "avx512" if "avx512vnni" in target.features else "avx2"


@pytest.mark.parametrize("seed", range(6))
def test_lookup_chains_give_the_table_for_every_input(seed):
    rng = np.random.default_rng(seed)
    table = rng.integers(-128, 128, 256).astype(np.int8)
    if seed == 0:
        table = np.arange(-128, 128).astype(np.int8)[::-1].copy()     # every entry distinct
    x = np.arange(-128, 128).astype(np.int8)
    np.testing.assert_array_equal(avx_elementwise.lookup(table, x), table[x.astype(np.int64) + 128])


def _cases():
    from .support.tflite_builder import TensorSpec
    from .support.tflite_cases import act

    def unary(op, shape=(1, 9, 11, 19), **q):
        def make(dtype, rng):
            out = dict(scale=q.get("out_scale", 0.02), zp=q.get("out_zp", -40))
            return (op, [act("x", shape, dtype, q.get("scale", 0.05), q.get("zp", 3))],
                    [act("y", shape, dtype, out["scale"], out["zp"])], {})
        return make

    def constant(value, dtype, scale=0.007, zp=5):
        if dtype == "float32":
            return TensorSpec("c", (1,), "float32", data=np.array([value], np.float32))
        return TensorSpec("c", (1,), "int8", data=np.array([value], np.int8), scale=scale, zero_point=zp)

    def rescale(op):        # Keras' Rescaling: x * s, x + o with a one-element constant
        def make(dtype, rng):
            shape = (1, 13, 7, 3)
            c = constant(0.0078 if op == "MUL" else -1.0, dtype) if dtype == "float32" else constant(93, dtype)
            return op, [act("x", shape, dtype, 0.5, -128), c], [act("y", shape, dtype, 0.008, 0)], {}
        return make

    def mul(a_shape, b_shape, out_shape, fused="NONE", scales=(0.05, 0.03, 0.02)):
        def make(dtype, rng):
            return ("MUL", [act("a", a_shape, dtype, scales[0], -7), act("b", b_shape, dtype, scales[1], 20)],
                    [act("y", out_shape, dtype, scales[2], -3)], dict(fused_activation=fused))
        return make

    def add(a_shape, b_shape, out_shape):
        def make(dtype, rng):
            return ("ADD", [act("a", a_shape, dtype), act("b", b_shape, dtype, 0.03, 7)],
                    [act("y", out_shape, dtype, 0.07, -1)], dict(fused_activation="RELU6"))
        return make

    def softmax(shape, scale, beta=1.0):
        def make(dtype, rng):
            return "SOFTMAX", [act("x", shape, dtype, scale, 9)], [act("y", shape, dtype, 1 / 256, -128)], dict(beta=beta)
        return make

    return {
        "softmax_classes": softmax((1, 1000), 0.07),
        "softmax_rows_few_live": softmax((3, 37), 0.9, beta=2.0),
        "softmax_tiny_scale": softmax((2, 50), 4e-9),
        "hard_swish": unary("HARD_SWISH"),
        "hard_swish_batch2": unary("HARD_SWISH", shape=(2, 5, 3, 7)),
        "logistic": unary("LOGISTIC", out_scale=1 / 256, out_zp=-128),
        "tanh_extreme": unary("TANH", scale=2.0, zp=-128, out_scale=1 / 128, out_zp=0),
        "rescale_mul": rescale("MUL"),
        "rescale_add": rescale("ADD"),
        "mul_equal": mul((1, 9, 11, 19), (1, 9, 11, 19), (1, 9, 11, 19), "RELU6"),
        "mul_squeeze_excite": mul((1, 6, 5, 40), (1, 1, 1, 40), (1, 6, 5, 40)),
        "mul_pixel_broadcast": mul((1, 6, 5, 1), (1, 6, 5, 24), (1, 6, 5, 24)),
        "mul_extreme_scales": mul((1, 4, 4, 33), (1, 4, 4, 33), (1, 4, 4, 33), scales=(4.0, 3.0, 1e-3)),
        "mul_batch2": mul((2, 3, 3, 17), (2, 1, 1, 17), (2, 3, 3, 17), "RELU"),
        "add_squeeze_excite": add((1, 6, 5, 40), (1, 1, 1, 40), (1, 6, 5, 40)),
    }


# (case, dtypes, the kernel family expected)
CASES = [("hard_swish", ("int8", "float32")), ("hard_swish_batch2", ("int8", "float32")), ("logistic", ("int8",)),
         ("tanh_extreme", ("int8",)), ("rescale_mul", ("int8", "float32")), ("rescale_add", ("int8", "float32")),
         ("mul_equal", ("int8", "float32")), ("mul_squeeze_excite", ("int8", "float32")),
         ("mul_pixel_broadcast", ("int8", "float32")), ("mul_extreme_scales", ("int8",)),
         ("mul_batch2", ("int8", "float32")), ("add_squeeze_excite", ("float32",)),
         ("softmax_classes", ("int8",)), ("softmax_rows_few_live", ("int8",))]
PARAMS = [(case, dtype) for case, dtypes in CASES for dtype in dtypes]


def _expected_kernel(graph, op) -> str:
    if graph.op_dtype(op) == "int8" and (op.type in ("HardSwish", "Logistic", "Tanh")
                                         or any(graph.tensor(n).is_const for n in op.inputs)):
        return "lookup_table_s8"
    if op.type == "Softmax":
        return "softmax_s8"
    return f"{'hard_swish' if op.type == 'HardSwish' else op.type.lower()}_{'s8' if graph.op_dtype(op) == 'int8' else 'f32'}"


@pytest.mark.parametrize("case,dtype", PARAMS, ids=[f"{c}-{d}" for c, d in PARAMS])
def test_elementwise_op_matches_tflite(tmp_path, case, dtype, level):
    graph = glue.single_op_graph(tmp_path, *_cases()[case](dtype, np.random.default_rng(len(case))))
    op = graph.ops[0]
    used = kernel_used(graph, op, level)
    assert used.startswith(_expected_kernel(graph, op) + "_" + _isa(level)), used
    assert_verified(verify_graph(graph, level, runs=3, seed=7, oracle="tflite", footprint=False))


def test_softmax_of_a_scale_tflite_refuses_matches_the_reference(tmp_path, level):
    """beta * input scale <= 2^-26, where TFLite's reference kernel aborts in Prepare: every difference counts
    and the exps come from the general MultiplyByQuantizedMultiplier; checked against the NumPy reference."""
    graph = glue.single_op_graph(tmp_path, *_cases()["softmax_tiny_scale"]("int8", np.random.default_rng(1)))
    assert kernel_used(graph, graph.ops[0], level) == f"softmax_s8_{_isa(level)}_exp_table"
    assert_verified(verify_graph(graph, level, runs=3, seed=7, oracle="numpy", footprint=False))


def _quantize_inputs(shape, scale, seed):
    """Float inputs for a Quantize: random values over and beyond the int8 range, exact halves of the scale
    (ties: x / scale lands on k + 0.5 wherever the float32 quotient is exact), and the extremes."""
    rng = np.random.default_rng(seed)
    n = int(np.prod(shape))
    x = rng.uniform(-200, 200, n) * scale
    halves = (rng.integers(-150, 150, n) + 0.5) * scale
    x = np.where(np.arange(n) % 3 == 0, halves, x)
    x[:4] = (-1e6, 1e6, 0.0, -0.0)
    return x.astype(np.float32).reshape(shape)


@pytest.mark.parametrize("shape", [(1, 11, 19, 3), (1, 4, 4, 8), (2, 1, 1, 5)], ids=["odd", "whole", "tail-only"])
def test_quantize_half_away_matches_tflite(tmp_path, shape, level):
    """float32 -> int8 QUANTIZE (rounded half away from zero as TFLite): vector body and masked tails."""
    graph = glue.single_op_graph(tmp_path, "QUANTIZE", [act_spec("x", shape, "float32")],
                                 [act_spec("y", shape, "int8", 0.0371, -9)], {})
    assert graph.ops[0].attrs.rounding == "half_away"
    assert kernel_used(graph, graph.ops[0], level) == f"quantize_s8_{_isa(level)}_{8 if _isa(level) == 'avx2' else 16}c"
    inputs = [{graph.inputs[0]: _quantize_inputs(graph.tensor(graph.inputs[0]).shape, 0.0371, s)} for s in range(2)]
    assert_verified(verify_graph(graph, level, oracle="tflite", footprint=False, input_sets=inputs))


@pytest.mark.parametrize("zp,scale", [(-9, 0.0371), (127, 0.5), (-128, 1e-3)])
def test_quantize_half_even_matches_onnxruntime(tmp_path, zp, scale, level):
    """ONNX QuantizeLinear (half to even, the input of a QDQ model) against onnxruntime, ties included."""
    pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper, numpy_helper, save
    from dwscodegen.importers import load_model
    node = helper.make_node("QuantizeLinear", ["x", "s", "z"], ["y"], name="quant")
    inits = [numpy_helper.from_array(np.float32(scale), "s"), numpy_helper.from_array(np.int8(zp), "z")]
    model = helper.make_model(helper.make_graph(
        [node], "q", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 11, 19])],
        [helper.make_tensor_value_info("y", TensorProto.INT8, [1, 3, 11, 19])], inits),
        opset_imports=[helper.make_opsetid("", 13)])
    save(model, tmp_path / "q.onnx")
    graph = load_model(tmp_path / "q.onnx")
    assert kernel_used(graph, graph.ops[0], level).startswith(f"quantize_s8_{_isa(level)}_")
    inputs = [{graph.inputs[0]: _quantize_inputs(graph.tensor(graph.inputs[0]).shape, scale, s)} for s in range(2)]
    assert_verified(verify_graph(graph, level, oracle="onnxruntime", footprint=False, input_sets=inputs))
