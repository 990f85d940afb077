"""passes/fuse_tables.py: an int8 chain of elementwise ops of one tensor runs as one table, bit-exact with
TFLite running the ops one by one (real .tflite models, the TFLite interpreter as oracle, x86 and Cortex-M)."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("ai_edge_litert")
from dwscodegen.importers import load_model  # noqa: E402
from dwscodegen.targets import load_target  # noqa: E402
from dwscodegen.verify import verify_graph  # noqa: E402

from .support.layers import assert_verified  # noqa: E402
from .support.targets import target_or_skip  # noqa: E402
from .support.tflite_builder import OpSpec, TensorSpec, build_model  # noqa: E402

SHAPE = (2, 5, 3, 7)      # a batch of 2, odd sizes


def act(name: str, scale: float, zp: int, shape=SHAPE) -> TensorSpec:
    return TensorSpec(name, shape, "int8", scale=scale, zero_point=zp)


def scalar(name: str, value: int, scale: float, zp: int) -> TensorSpec:
    return TensorSpec(name, (1,), "int8", data=np.array([value], np.int8), scale=scale, zero_point=zp)


def swish(path, extra_reader: bool = False):
    """x -> LOGISTIC -> MUL(x, .): EfficientNet's swish; extra_reader: the logistic output is a graph output too."""
    x, s, y = act("x", 0.07, 5), act("sig", 1 / 256, -128), act("y", 0.05, -20)
    model = build_model([OpSpec("LOGISTIC", [x], [s]), OpSpec("MUL", [x, s], [y])],
                        outputs=[y, s] if extra_reader else [y])
    path.write_bytes(model)
    return path


def rescale_chain(path):
    """x -> MUL(c) -> ADD(c) -> TANH -> MUL(x, x-like): constants of one element, then a square of the chain."""
    x, m, a = act("x", 0.04, -3), act("m", 0.03, 2), act("a", 0.05, 1)
    t, y = act("t", 1 / 128, 0), act("y", 0.01, -100)
    model = build_model([OpSpec("MUL", [x, scalar("k", 77, 0.02, 0)], [m]),
                         OpSpec("ADD", [m, scalar("c", -40, 0.03, 3)], [a]),
                         OpSpec("TANH", [a], [t]),
                         OpSpec("MUL", [t, t], [y])])
    path.write_bytes(model)
    return path


def squeeze_excite_gate(path):
    """x * logistic(pooled): the gate is another tensor (broadcast): not a function of x alone."""
    x, p = act("x", 0.07, 5), act("p", 0.07, 5, (2, 1, 1, 7))
    s, y = act("sig", 1 / 256, -128, (2, 1, 1, 7)), act("y", 0.05, -20)
    model = build_model([OpSpec("MEAN", [x, TensorSpec("axes", (2,), "int32", data=np.array([1, 2], np.int32))], [p],
                                dict(keep_dims=True)),
                         OpSpec("LOGISTIC", [p], [s]), OpSpec("MUL", [x, s], [y])])
    path.write_bytes(model)
    return path


def types(graph) -> list[str]:
    return [op.type for op in graph.ops]


def test_swish_is_one_table(tmp_path):
    graph = load_model(swish(tmp_path / "swish.tflite"))
    assert types(graph) == ["Table"]
    (op,) = graph.ops
    assert op.attrs.what == "mul(x, logistic(x))" and op.inputs == graph.inputs and op.outputs == graph.outputs
    report = verify_graph(graph, load_target("x86_64"), runs=2, seed=0)
    assert report.oracle == "tflite"
    assert_verified(report)


def test_constants_and_squares_fold_into_the_table(tmp_path):
    graph = load_model(rescale_chain(tmp_path / "chain.tflite"))
    assert types(graph) == ["Table"]
    assert graph.ops[0].attrs.what == "mul(tanh(add(mul(x, 77), -40)), tanh(add(mul(x, 77), -40)))"
    assert_verified(verify_graph(graph, load_target("x86_64"), runs=2, seed=1))


def test_a_tensor_read_outside_the_chain_stays(tmp_path):
    graph = load_model(swish(tmp_path / "swish2.tflite", extra_reader=True))
    assert types(graph) == ["Logistic", "Mul"]
    assert_verified(verify_graph(graph, load_target("x86_64"), runs=2, seed=0))


def test_a_broadcast_gate_is_not_a_table(tmp_path):
    graph = load_model(squeeze_excite_gate(tmp_path / "se.tflite"))
    assert types(graph) == ["Mean", "Logistic", "Mul"]


def test_float_chains_stay(tmp_path):
    x, s, y = (TensorSpec(n, SHAPE, "float32") for n in ("x", "sig", "y"))
    path = tmp_path / "swish_f32.tflite"
    path.write_bytes(build_model([OpSpec("LOGISTIC", [x], [s]), OpSpec("MUL", [x, s], [y])]))
    assert types(load_model(path)) == ["Logistic", "Mul"]


@pytest.mark.qemu
@pytest.mark.parametrize("backend", ["templates", "tvm"])
@pytest.mark.parametrize("target_name", ["cortex-m4", "cortex-m55"])
def test_tables_bit_exact_on_cortex_m(tmp_path, target_name, backend):
    if backend == "tvm":
        pytest.importorskip("tvm")
    target = target_or_skip(target_name)
    for model in (swish(tmp_path / "swish.tflite"), rescale_chain(tmp_path / "chain.tflite")):
        graph = load_model(model)
        assert types(graph) == ["Table"]
        assert_verified(verify_graph(graph, target, backend=backend, runs=2, seed=2))


@pytest.mark.parametrize("level", ["x86_64-v3", "x86_64-v4"])
def test_tables_bit_exact_on_x86_simd(tmp_path, level):
    target = target_or_skip(level)
    assert_verified(verify_graph(load_model(rescale_chain(tmp_path / "chain.tflite")), target, runs=2, seed=3))
