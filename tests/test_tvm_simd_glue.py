"""The TVM road's tensorized glue ops on Cortex-M (backends/tvm/simd_glue.py) against the TFLite interpreter's
reference kernels, under QEMU: which layers are tensorized (micro-kernel calls in the TVM function), and bit-exact
outputs for odd sizes, batch 2, the broadcast forms, chunk tails, and extreme scales."""
from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.tvm
pytest.importorskip("tvm")

from dwscodegen.backends.tvm import backend as tvm_backend  # noqa: E402
from dwscodegen.backends.tvm import simd_glue  # noqa: E402
from dwscodegen.verify import verify_graph  # noqa: E402
from .support import glue_cases as glue  # noqa: E402
from .support.layers import assert_verified  # noqa: E402
from .support.targets import target_or_skip  # noqa: E402


MUL_CASES = {
    "se_batch": dict(shape_a=(2, 5, 3, 19), shape_b=(2, 1, 1, 19), out_shape=(2, 5, 3, 19)),   # C % 4 = 3
    "se_first": dict(shape_a=(1, 1, 1, 6), shape_b=(1, 4, 5, 6), out_shape=(1, 4, 5, 6)),      # vector first
    "se_shared": dict(shape_a=(2, 3, 3, 5), shape_b=(1, 1, 1, 5), out_shape=(2, 3, 3, 5)),     # one vector, 2 images
    "same": dict(shape_a=(2, 3, 7, 5), shape_b=(2, 3, 7, 5), out_shape=(2, 3, 7, 5), activation="NONE"),  # 210: tail
    "one": dict(shape_a=(1, 1), shape_b=(1, 1), out_shape=(1, 1)),
    "tiny_scale": dict(shape_a=(1, 2, 2, 9), shape_b=(1, 1, 1, 9), out_shape=(1, 2, 2, 9),
                       qa=(0.5, 120), qb=(0.9, -127), qy=(1e-4, 0), activation="NONE"),    # every output saturates
    "big_scale": dict(shape_a=(1, 2, 2, 9), shape_b=(1, 1, 1, 9), out_shape=(1, 2, 2, 9),
                      qa=(1e-4, 0), qb=(2e-4, 0), qy=(0.5, 0), activation="NONE"),
}


def _check(graph, target_name, expected, schedules=None):
    target = target_or_skip(target_name)
    op = graph.ops[0]
    assert simd_glue.applies(graph, op, target) == expected
    source = "\n".join(k.source for k in tvm_backend.generate_kernels(graph, target, schedules))
    if expected is not None:
        isa = "MVE" if "mve" in target.features and expected != "add" else "DSP"
        assert f"tensorized for {isa}" in source and f"_{expected}_" in source
    else:
        assert "tensorized" not in source
    assert_verified(verify_graph(graph, target, backend="tvm", runs=3, seed=5, oracle="tflite", footprint=False,
                                 schedules=schedules))


@pytest.mark.parametrize("target_name", ["cortex-m4", "cortex-m55"])
def test_mul_squeeze_excite_matches_tflite(tmp_path, target_name):
    _check(glue.single_op_graph(tmp_path, *glue.mul(**MUL_CASES["se_batch"])), target_name, "mul")


@pytest.mark.slow
@pytest.mark.parametrize("case", ["se_first", "se_shared", "same", "one", "tiny_scale", "big_scale"])
@pytest.mark.parametrize("target_name", ["cortex-m4", "cortex-m55"])
def test_mul_cases_match_tflite(tmp_path, case, target_name):
    _check(glue.single_op_graph(tmp_path, *glue.mul(**MUL_CASES[case])), target_name, "mul")


@pytest.mark.slow
@pytest.mark.parametrize("target_name", ["cortex-m4", "cortex-m55"])
def test_mul_other_broadcast_is_portable(tmp_path, target_name):
    """[2,3,1,4] x [1,1,6,1]: not a form of the micro-kernels; the portable TVM schedule, still exact."""
    graph = glue.single_op_graph(tmp_path, *glue.mul((2, 3, 1, 4), (1, 1, 6, 1), (2, 3, 6, 4), qa=(0.05, 3)))
    _check(graph, target_name, None)


def test_mul_on_cortex_m3_is_portable(tmp_path):
    """No SMMLAR without the DSP extension: the portable TVM schedule (generation only)."""
    graph = glue.single_op_graph(tmp_path, *glue.mul(**MUL_CASES["se_batch"]))
    target = target_or_skip("cortex-m3")
    assert simd_glue.applies(graph, graph.ops[0], target) is None
    assert "tensorized" not in tvm_backend.generate_kernels(graph, target)[0].source


def test_mul_flat_chunk_knob(tmp_path):
    """210 values in chunks of 16: 13 calls and a tail call of 2 (two micro-kernels), exact."""
    graph = glue.single_op_graph(tmp_path, *glue.mul(**MUL_CASES["same"]))
    target = target_or_skip("cortex-m55")
    source = tvm_backend.generate_kernels(graph, target, {0: {"chunk": 16}})[0].source
    assert "_mul_16(" in source and "_mul_2(" in source
    _check(graph, "cortex-m55", "mul", {0: {"chunk": 16}})


@pytest.mark.parametrize("op", ["LOGISTIC", "HARD_SWISH"])
def test_lookup_matches_tflite(tmp_path, op):
    """74 values (a chunk of 64 and a tail of 10, predicated), batch 2."""
    from .support.tflite_cases import act
    out_q = {"LOGISTIC": (1 / 256, -128)}.get(op, (0.04, -20))
    graph = glue.single_op_graph(tmp_path, op, [act("x", (2, 37), "int8", 0.06, -7)], [act("y", (2, 37), "int8", *out_q)], {})
    _check(graph, "cortex-m55", "lookup")


@pytest.mark.slow
@pytest.mark.parametrize("op", ["TANH", "LEAKY_RELU", "MUL"])
def test_more_lookups_match_tflite(tmp_path, op):
    from .support.tflite_builder import TensorSpec
    from .support.tflite_cases import act
    inputs = [act("x", (1, 300), "int8", 0.06, -7)]
    if op == "MUL":         # beside a one-element constant: a table
        inputs.append(TensorSpec("c", (1,), "int8", scale=0.01, zero_point=3, data=np.array([-90], np.int8)))
    out_q = {"TANH": (1 / 128, 0)}.get(op, (0.04, -20))
    graph = glue.single_op_graph(tmp_path, op, inputs, [act("y", (1, 300), "int8", *out_q)],
                          dict(alpha=0.2) if op == "LEAKY_RELU" else {})
    _check(graph, "cortex-m55", "lookup", {0: {"chunk": 256}})


def test_not_tensorized_without_mve(tmp_path):
    """Cortex-M4 has no MVE: the portable TVM schedule (generation only)."""
    from .support.tflite_cases import act
    graph = glue.single_op_graph(tmp_path, "LOGISTIC", [act("x", (1, 20), "int8", 0.06, -7)],
                          [act("y", (1, 20), "int8", 1 / 256, -128)], {})
    target = target_or_skip("cortex-m4")
    assert simd_glue.applies(graph, graph.ops[0], target) is None
    assert tvm_backend.schedule_kind(graph, graph.ops[0], target) == "activation"
    assert tvm_backend.schedule_kind(graph, graph.ops[0], target_or_skip("cortex-m55")) == "activation_mve"


def _check_fc(tmp_path, case, target_name):
    target = target_or_skip(target_name)
    graph = glue.single_op_graph(tmp_path, *glue.fully_connected(np.random.default_rng(len(case)), **glue.FC_CASES[case]))
    source = tvm_backend.generate_kernels(graph, target)[0].source
    isa = "MVE" if "mve" in target.features else "DSP"
    # fewer units than a tile of 4: the portable schedule
    assert (f"tensorized for {isa}" in source and "_dot4(" in source) == (glue.FC_CASES[case]["units"] >= 4)
    assert_verified(verify_graph(graph, target, backend="tvm", runs=3, seed=3, oracle="tflite", footprint=False))


@pytest.mark.parametrize("target_name", ["cortex-m4", "cortex-m55"])
def test_fully_connected_matches_tflite(tmp_path, target_name):
    _check_fc(tmp_path, "odd", target_name)


@pytest.mark.slow
@pytest.mark.parametrize("case", ["round", "tiny", "saturating", "wide", "per_channel", "no_bias"])
@pytest.mark.parametrize("target_name", ["cortex-m4", "cortex-m55", "cortex-m33"])
def test_fully_connected_cases_match_tflite(tmp_path, case, target_name):
    _check_fc(tmp_path, case, target_name)


def test_fully_connected_knob(tmp_path):
    """The tensorized kernel's own knob family: unroll_epilogue=false changes the code and keeps the results; the
    portable schedule's knobs are refused there."""
    from dwscodegen.errors import DwsError
    target = target_or_skip("cortex-m55")
    graph = glue.single_op_graph(tmp_path, *glue.fully_connected(np.random.default_rng(3), **glue.FC_CASES["odd"]))
    assert tvm_backend.schedule_kind(graph, graph.ops[0], target) == "fully_connected_mve"
    rolled = {0: {"unroll_epilogue": False}}
    assert (tvm_backend.generate_kernels(graph, target, rolled)[0].source
            != tvm_backend.generate_kernels(graph, target)[0].source)
    with pytest.raises(DwsError, match="o_tile"):
        tvm_backend.generate_kernels(graph, target, {0: {"o_tile": 2}})
    assert_verified(verify_graph(graph, target, backend="tvm", runs=2, seed=3, oracle="tflite", footprint=False,
                                 schedules=rolled))


@pytest.mark.parametrize("target_name", ["cortex-m4", "cortex-m55"])
def test_mul_constant_output_matches_tflite(tmp_path, target_name):
    """RELU with output zero point 127: the activation range collapses to one value, which the micro-kernel's clamp
    gives."""
    graph = glue.single_op_graph(tmp_path, *glue.mul(**dict(MUL_CASES["se_batch"], qy=(0.002, 127), activation="RELU")))
    _check(graph, target_name, "mul")


def _add(shape, qa=(0.05, -3), qb=(0.03, 7), qy=(0.07, -1), activation="RELU"):
    from .support.tflite_cases import act
    return ("ADD", [act("a", shape, "int8", *qa), act("c", shape, "int8", *qb)], [act("y", shape, "int8", *qy)],
            dict(fused_activation=activation))


ADD_CASES = {
    "same": dict(shape=(2, 4, 5, 6)),                                           # residual, batch 2; 240 values
    "equal_scales": dict(shape=(1, 3, 3, 7), qa=(0.03, 7), activation="NONE"),   # input shifts of 0
    "one": dict(shape=(1,)),
    "extreme": dict(shape=(1, 4, 9), qa=(1e-3, 127), qb=(2.0, -128), qy=(1e-2, 0), activation="NONE"),
}


@pytest.mark.parametrize("target_name", ["cortex-m4", "cortex-m55"])
def test_add_matches_tflite(tmp_path, target_name):
    graph = glue.single_op_graph(tmp_path, *_add(**ADD_CASES["same"]))
    assert tvm_backend.schedule_kind(graph, graph.ops[0], target_or_skip(target_name)) == "add_dsp"
    _check(graph, target_name, "add")


@pytest.mark.slow
@pytest.mark.parametrize("case", ["equal_scales", "one", "extreme"])
@pytest.mark.parametrize("target_name", ["cortex-m4", "cortex-m55", "cortex-m33"])
def test_add_cases_match_tflite(tmp_path, case, target_name):
    _check(glue.single_op_graph(tmp_path, *_add(**ADD_CASES[case])), target_name, "add")
