"""ONNX QDQ models with uint8 activations (onnxruntime's default QuantType.QUInt8): imported as their int8 twins
(q - 128, zero point - 128, exact), verified against onnxruntime; what cannot be expressed that way is refused.
And the float output of a QDQ model's last DequantizeLinear is compared within the value of the int8 LSB."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from dwscodegen.compare import compare  # noqa: E402
from dwscodegen.errors import DwsError  # noqa: E402
from dwscodegen.importers import load_model  # noqa: E402
from dwscodegen.targets import load_target  # noqa: E402
from dwscodegen.verify import dequantized_tolerances, qdq_tolerance, verify_graph  # noqa: E402

from .support.layers import assert_verified  # noqa: E402
from .support.onnx_cases import layer_differences, quantize_qdq  # noqa: E402
from .support.targets import target_or_skip  # noqa: E402


FLOAT_MODEL = Path(__file__).resolve().parent.parent / "examples" / "mbv2_small.onnx"


def seeded_inputs(graph, seed: int, count: int) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [{n: rng.normal(0.0, 1.0, size=graph.tensor(n).shape).astype(np.float32) for n in graph.inputs}
            for _ in range(count)]


@pytest.fixture(scope="module")
def uint8_model(tmp_path_factory):
    return quantize_qdq(FLOAT_MODEL, tmp_path_factory.mktemp("u8") / "mbv2_small_qdq_u8.onnx", seed=3,
                        activations="uint8")


def _uint8_zero_points(path) -> dict[str, int]:
    model = onnx.load(str(path))
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    return {n.output[0]: int(inits[n.input[2]].reshape(-1)[0]) for n in model.graph.node
            if n.op_type == "QuantizeLinear" and inits[n.input[2]].dtype == np.uint8}


def test_uint8_activations_are_their_int8_twins(uint8_model):
    zero_points = _uint8_zero_points(uint8_model)
    assert len(zero_points) >= 8 and any(z not in (0, 128) for z in zero_points.values())
    graph = load_model(uint8_model)
    quantized = {t.name: int(t.quant.zero_point[0]) for t in graph.tensors.values()
                 if t.dtype == "int8" and not t.is_const and t.name in zero_points}
    assert quantized and all(quantized[n] == zero_points[n] - 128 for n in quantized)
    for inputs in seeded_inputs(graph, 4, 2):
        for where, (off, worst, size) in layer_differences(uint8_model, graph, inputs).items():
            assert worst <= 1 and off <= max(2, 1e-3 * size), (where, off, worst, size)


def test_uint8_model_verifies_against_onnxruntime_on_x86(uint8_model):
    report = verify_graph(load_model(uint8_model), load_target("x86_64"), runs=2, seed=1)
    assert report.oracle == "onnxruntime"
    assert_verified(report)


@pytest.mark.qemu
def test_uint8_model_verifies_on_cortex_m55(uint8_model):
    target = target_or_skip("cortex-m55")
    assert_verified(verify_graph(load_model(uint8_model), target, runs=2, seed=1))


def _qdq_relu(path, zero_point: np.ndarray | None, dequantize_at_end: bool = True):
    """x -> QuantizeLinear -> DequantizeLinear -> Relu -> QuantizeLinear [-> DequantizeLinear] -> y."""
    zp = [] if zero_point is None else ["zp"]
    nodes = [helper.make_node("QuantizeLinear", ["x", "s"] + zp, ["xq"], name="q0"),
             helper.make_node("DequantizeLinear", ["xq", "s"] + zp, ["xf"], name="dq0"),
             helper.make_node("Relu", ["xf"], ["r"], name="relu"),
             helper.make_node("QuantizeLinear", ["r", "s"] + zp, ["rq" if dequantize_at_end else "y"], name="q1")]
    if dequantize_at_end:
        nodes.append(helper.make_node("DequantizeLinear", ["rq", "s"] + zp, ["y"], name="dq1"))
    inits = {"s": np.array(0.05, np.float32)} | ({} if zero_point is None else {"zp": zero_point})
    out_type = TensorProto.FLOAT if dequantize_at_end else TensorProto.UINT8
    graph = helper.make_graph(nodes, "m", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 3, 3])],
                              [helper.make_tensor_value_info("y", out_type, [1, 4, 3, 3])],
                              initializer=[numpy_helper.from_array(v, k) for k, v in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize("zero_point", [np.array(100, np.uint8), None], ids=["uint8_zp", "no_zp"])
def test_uint8_quantize_with_or_without_zero_point(tmp_path, zero_point):
    """QuantizeLinear without a zero point means uint8 0, and so does DequantizeLinear of its output."""
    graph = load_model(_qdq_relu(tmp_path / "m.onnx", zero_point))
    int8 = [t for t in graph.tensors.values() if t.dtype == "int8"]
    expected = (100 if zero_point is not None else 0) - 128
    assert int8 and all(int(t.quant.zero_point[0]) == expected for t in int8)
    assert_verified(verify_graph(graph, load_target("x86_64"), runs=2, seed=0))


def test_uint8_graph_output_is_refused(tmp_path):
    with pytest.raises(DwsError, match=r"graph output 'y'.*uint8 tensor.*must end in DequantizeLinear"):
        load_model(_qdq_relu(tmp_path / "m.onnx", np.array(7, np.uint8), dequantize_at_end=False))


def test_dequantized_output_compared_within_one_int8_step(tmp_path):
    graph = load_model(_qdq_relu(tmp_path / "m.onnx", np.array(3, np.int8)))
    lsb = qdq_tolerance(graph, "onnxruntime")
    assert lsb == 1 and qdq_tolerance(graph, "numpy") == 0
    (out,) = graph.outputs
    slack = dequantized_tolerances(graph, lsb)
    step = slack[out]
    assert step == pytest.approx(0.05)
    assert graph.inputs[0] not in slack and dequantized_tolerances(graph, 0) == {}
    expected = (np.arange(36, dtype=np.float32) - 3) * np.float32(0.05)
    one_off, two_off = expected.copy(), expected.copy()
    one_off[5] += np.float32(0.05)
    two_off[5] += np.float32(0.10)
    assert compare(out, one_off, expected, float_tolerance=step).ok
    assert not compare(out, two_off, expected, float_tolerance=step).ok
    assert not compare(out, one_off, expected).ok
