"""ONNX import: float32 and int8 (QDQ, QLinearConv/QLinearMatMul) models against onnxruntime, generated C
against the NumPy reference, and clear errors for what is not supported.

The int8 bounds asserted here are the ones docs/graph-format.md ("ONNX models") documents:
  * QLinearConv / QLinearMatMul (onnxruntime's integer kernels): bit-exact, every layer;
  * QDQ models against onnxruntime with ORT_DISABLE_ALL (DequantizeLinear, float op, QuantizeLinear):
    every int8 tensor within 1 LSB, at most 1e-4 of its values off; the final output within 1 LSB on at
    most 1 % of its values (measured on examples/mbv2_small_qdq.onnx, 100 inputs: 8 of 4.6 million
    intermediate values and none of the outputs differ).
"""
from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from dwscodegen.cli import main  # noqa: E402
from dwscodegen.errors import DwsError  # noqa: E402
from dwscodegen.importers import load_model  # noqa: E402
from dwscodegen.oracles.onnxruntime_session import run_onnxruntime, run_onnxruntime_batch  # noqa: E402
from dwscodegen.reference.graph import run_graph  # noqa: E402
from dwscodegen.reference.ops import KERNELS  # noqa: E402
from dwscodegen.targets import load_target  # noqa: E402

from .support.layers import assert_verified  # noqa: E402
from .support.onnx_cases import tie_model  # noqa: E402
from dwscodegen.toolchain import toolchain_available  # noqa: E402
from dwscodegen.verify import verify_graph  # noqa: E402

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
FLOAT_MODEL = EXAMPLES / "mbv2_small.onnx"
QDQ_MODEL = EXAMPLES / "mbv2_small_qdq.onnx"


def seeded_inputs(graph, seed: int, count: int) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [{n: rng.normal(0.0, 1.0, size=graph.tensor(n).shape).astype(np.float32) for n in graph.inputs}
            for _ in range(count)]


def op_by_name(graph, name):
    return next(op for op in graph.ops if op.name == name)


# ---------------------------------------------------------------------------------------------- import

def test_float_model_imports_as_nhwc():
    g = load_model(FLOAT_MODEL)
    assert g.tensor(g.inputs[0]).shape == (1, 32, 32, 3)             # ONNX [1, 3, 32, 32]
    assert g.tensor(g.outputs[0]).shape == (1, 10)
    assert [op.type for op in g.ops] == ["Conv2D", "Conv2D", "DepthwiseConv2D", "Conv2D", "Add", "Mean", "Reshape",
                                         "FullyConnected", "Softmax"]
    stem = op_by_name(g, "stem")
    assert stem.attrs.activation.kind == "relu6" and stem.attrs.stride == (2, 2) and stem.attrs.pad == (1, 1, 1, 1)
    assert g.tensor(stem.inputs[1]).shape == (16, 3, 3, 3)            # OIHW -> [O, KH, KW, I]
    assert g.tensor(op_by_name(g, "dw").inputs[1]).shape == (1, 3, 3, 64)
    w = onnx.numpy_helper.to_array(next(i for i in onnx.load(str(FLOAT_MODEL)).graph.initializer if i.name == "dw_w"))
    np.testing.assert_array_equal(g.tensor(op_by_name(g, "dw").inputs[1]).data[0, :, :, 5], w[5, 0])
    assert all(g.origin[t] for t in g.tensors) and g.origin["stem_relu6"] == "stem_relu6"


def test_qdq_model_imports_as_int8_ops():
    g = load_model(QDQ_MODEL)
    types = [(op.type, g.op_dtype(op)) for op in g.ops]
    assert types[:9] == [("Quantize", "float32"), ("Conv2D", "int8"), ("Conv2D", "int8"), ("DepthwiseConv2D", "int8"),
                         ("Conv2D", "int8"), ("Add", "int8"), ("DepthwiseConv2D", "int8"), ("Reshape", "int8"),
                         ("FullyConnected", "int8")]
    # Softmax's 1/255 output scale is not TFLite's int8 softmax: it runs in float between Dequantize/Quantize.
    assert [op.type for op in g.ops[9:]] == ["Dequantize", "Softmax", "Quantize", "Dequantize"]
    conv = op_by_name(g, "stem")
    assert conv.attrs.requant == "onnx" and g.tensor(conv.inputs[1]).quant.axis == 0
    assert g.tensor(op_by_name(g, "dw").inputs[1]).quant.axis == 3
    assert g.tensor(conv.inputs[2]).dtype == "int32"


# ------------------------------------------------------------------- reference vs onnxruntime

def test_float_reference_matches_onnxruntime():
    g = load_model(FLOAT_MODEL)
    acts = [t.name for t in g.activation_tensors()]
    for inputs in seeded_inputs(g, 3, 4):
        ref = run_graph(g, inputs)
        ort = run_onnxruntime(FLOAT_MODEL, g, inputs, tensors=acts)
        for name in acts:
            tol = 1e-5 * max(1.0, float(np.abs(ref[name]).max()))
            assert np.abs(ref[name].astype(np.float64) - ort[name]).max() <= tol, name


def _lsb_diffs(graph, refs, orts, name):
    t = graph.tensor(name)
    a = np.stack([r[name] for r in refs]).astype(np.float64)
    b = np.stack([o[name] for o in orts]).astype(np.float64)
    if t.dtype == "float32":      # a dequantized output: in steps of the quantized tensor it came from
        producer = next(op for op in graph.ops if op.outputs[0] == name)
        a, b = (v / graph.tensor(producer.inputs[0]).quant.scale[0] for v in (a, b))
    return np.abs(np.rint(a - b))


def test_qdq_reference_matches_onnxruntime_within_bound():
    g = load_model(QDQ_MODEL)
    int8 = [t.name for t in g.activation_tensors() if t.dtype == "int8"]
    inputs = seeded_inputs(g, 11, 20)
    refs = [run_graph(g, x) for x in inputs]
    orts = run_onnxruntime_batch(QDQ_MODEL, g, inputs, tensors=int8)     # one onnxruntime process for all 20
    for name in int8:
        d = _lsb_diffs(g, refs, orts, name)
        assert d.max() <= 1 and (d != 0).mean() <= 1e-4, (name, d.max(), int((d != 0).sum()))
    for name in g.outputs:
        d = _lsb_diffs(g, refs, orts, name)
        assert d.max() <= 1 and (d != 0).mean() <= 0.01, (name, d.max(), int((d != 0).sum()))


def test_qdq_requant_onnx_is_what_makes_it_match():
    """The same graph with TFLite's requantization is measurably further from onnxruntime."""
    g = load_model(QDQ_MODEL)
    tfl = copy.deepcopy(g)
    for op in tfl.ops:
        if hasattr(op.attrs, "requant"):
            op.attrs.requant = "tflite"
    name = op_by_name(g, "expand").outputs[0]
    inputs = seeded_inputs(g, 12, 4)
    orts = [run_onnxruntime(QDQ_MODEL, g, x, tensors=[name]) for x in inputs]
    onnx_d = _lsb_diffs(g, [run_graph(g, x) for x in inputs], orts, name)
    tfl_d = _lsb_diffs(g, [run_graph(tfl, x) for x in inputs], orts, name)
    assert (tfl_d != 0).sum() > 100 * max(1, (onnx_d != 0).sum())


def qoperator_model(path: Path, seed: int, per_channel: bool) -> Path:
    """QuantizeLinear -> QLinearConv 3x3 s2 -> QLinearConv dw 3x3 -> QLinearConv pw -> QLinearConv dw x2 s2
    -> MaxPool -> Flatten -> QLinearMatMul -> DequantizeLinear, random int8 weights and scales."""
    rng = np.random.default_rng(seed)
    inits = []

    def init(name, value):
        inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def scale(v):
        return init(f"scale{len(inits)}", np.float32(v))

    def zero(v, shape=()):
        return init(f"zp{len(inits)}", np.full(shape, v, np.int8))

    x_s, x_z = scale(0.02 + 0.02 * rng.random()), zero(rng.integers(-20, 20))
    nodes = [helper.make_node("QuantizeLinear", ["x", x_s, x_z], ["xq"], name="quant")]
    cur, cur_s, cur_z, cin = "xq", x_s, x_z, 8
    for name, cout, k, stride, depthwise in (("conv", 16, 3, 2, False), ("dw", 16, 3, 1, True),
                                             ("pw", 24, 1, 1, False), ("dw2", 48, 3, 2, True)):
        group = cin if depthwise else 1
        n_scales = cout if per_channel else 1
        w_s = (rng.random(n_scales) * 0.01 + 0.001).astype(np.float32)
        ins = [cur, cur_s, cur_z, init(f"{name}_w", rng.integers(-127, 128, (cout, cin // group, k, k), dtype=np.int8)),
               init(f"{name}_ws", w_s if per_channel else w_s[0]), zero(0, (cout,) if per_channel else ()),
               scale(0.05 + 0.2 * rng.random()), zero(rng.integers(-30, 30)),
               init(f"{name}_b", rng.integers(-3000, 3000, cout).astype(np.int32))]
        nodes.append(helper.make_node("QLinearConv", ins, [f"{name}_out"], name=name, kernel_shape=[k, k],
                                      strides=[stride, stride], pads=[k // 2] * 4, group=group))
        cur, cur_s, cur_z, cin = f"{name}_out", ins[6], ins[7], cout
    nodes.append(helper.make_node("MaxPool", [cur], ["pool"], name="pool", kernel_shape=[3, 3], strides=[3, 3]))
    nodes.append(helper.make_node("Flatten", ["pool"], ["flat"], name="flat"))
    fc_s = (rng.random(10) * 0.01 + 0.001).astype(np.float32)
    y_s, y_z = scale(0.3), zero(5)
    nodes.append(helper.make_node("QLinearMatMul", [
        "flat", cur_s, cur_z, init("fc_w", rng.integers(-127, 128, (cin, 10), dtype=np.int8)),
        init("fc_ws", fc_s if per_channel else fc_s[0]), zero(0, (10,) if per_channel else ()), y_s, y_z],
        ["fc_out"], name="fc"))
    nodes.append(helper.make_node("DequantizeLinear", ["fc_out", y_s, y_z], ["y"], name="dequant"))
    graph = helper.make_graph(nodes, "qop", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 12, 12])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize("per_channel", [True, False], ids=["per_channel", "per_tensor"])
def test_qlinear_ops_bit_exact_with_onnxruntime_integer_kernels(tmp_path, per_channel):
    """Every layer, fed onnxruntime's own int8 input, gives onnxruntime's int8 output, at both
    optimization extremes (QLinear ops run MLAS's integer kernels either way)."""
    path = qoperator_model(tmp_path / "qop.onnx", 5, per_channel)
    g = load_model(path)
    assert {op.type for op in g.ops} >= {"Conv2D", "DepthwiseConv2D", "FullyConnected"}
    acts = [t.name for t in g.activation_tensors()]
    tfl = copy.deepcopy(g)
    for op in tfl.ops:
        if hasattr(op.attrs, "requant"):
            op.attrs.requant = "tflite"
    tflite_differs = 0
    for level in ("disable_all", "all"):
        for inputs in seeded_inputs(g, 6, 3):
            inputs = {k: v * 2 for k, v in inputs.items()}
            ort = run_onnxruntime(path, g, inputs, tensors=acts, level=level)
            for op, op_tfl in zip(g.ops, tfl.ops):
                args = [ort[n] for n in op.inputs if not g.tensor(n).is_const]
                got = np.asarray(KERNELS[op.type](g, op, *args)).reshape(g.tensor(op.outputs[0]).shape)
                np.testing.assert_array_equal(got, ort[op.outputs[0]], err_msg=f"{level}: {op.where()}")
                if hasattr(op.attrs, "requant") and g.op_dtype(op) == "int8":
                    tflite_differs += int((KERNELS[op.type](tfl, op_tfl, *args) != ort[op.outputs[0]]).sum())
    assert tflite_differs > 0     # the test can tell the two requantizations apart


@pytest.mark.parametrize("kind", ["conv", "fc"])
def test_rounding_ties_half_to_even_in_reference_and_c(tmp_path, kind):
    path = tie_model(tmp_path / f"ties_{kind}.onnx", kind)
    g = load_model(path)
    op = g.ops[1]
    ties = 0
    for inputs in seeded_inputs(g, 9, 4):
        inputs = {k: v * 2 for k, v in inputs.items()}
        ort = run_onnxruntime(path, g, inputs, tensors=[op.inputs[0], op.outputs[0]])
        got = KERNELS[op.type](g, op, ort[op.inputs[0]]).reshape(ort[op.outputs[0]].shape)
        np.testing.assert_array_equal(got, ort[op.outputs[0]])
        tfl = copy.deepcopy(op)
        tfl.attrs.requant = "tflite"
        ties += int((KERNELS[op.type](g, tfl, ort[op.inputs[0]]).reshape(got.shape) != got).sum())
    assert ties >= 5      # exact ties where TFLite's rounding (half away from zero) differs
    report = verify_graph(g, load_target("x86_64"), runs=3, seed=5)
    assert_verified(report)


def glue_model(path: Path) -> Path:
    """float32: Conv + Relu (fused), MaxPool; Pad + AveragePool(pads, count_include_pad=0); Concat; Clip [0, 6]
    (standalone Relu6); GlobalAveragePool; Reshape; MatMul + Add (fused bias); Softmax."""
    rng = np.random.default_rng(4)
    inits = {"w": rng.normal(0, 0.3, (6, 4, 3, 3)).astype(np.float32), "b": rng.normal(0, 0.1, 6).astype(np.float32),
             "pads": np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64), "shape": np.array([1, -1], np.int64),
             "lo": np.float32(0.0), "hi": np.float32(6.0),
             "fc_w": rng.normal(0, 0.5, (10, 5)).astype(np.float32), "fc_b": rng.normal(0, 0.1, 5).astype(np.float32)}
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"], name="relu"),
             helper.make_node("MaxPool", ["r"], ["mp"], name="maxpool", kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Pad", ["x", "pads"], ["xp"], name="pad"),
             helper.make_node("AveragePool", ["xp"], ["ap"], name="avgpool", kernel_shape=[5, 5], strides=[2, 2],
                              pads=[1, 1, 1, 1]),
             helper.make_node("Concat", ["mp", "ap"], ["cat"], name="concat", axis=1),
             helper.make_node("Clip", ["cat", "lo", "hi"], ["clip"], name="clip"),
             helper.make_node("GlobalAveragePool", ["clip"], ["gap"], name="gap"),
             helper.make_node("Reshape", ["gap", "shape"], ["flat"], name="reshape"),
             helper.make_node("MatMul", ["flat", "fc_w"], ["mm"], name="matmul"),
             helper.make_node("Add", ["mm", "fc_b"], ["logits"], name="bias"),
             helper.make_node("Softmax", ["logits"], ["y"], name="softmax")]
    return _float_model(path, nodes, inits, in_shape=(1, 4, 8, 10), out_shape=(1, 5))


def test_float_glue_ops_match_onnxruntime_and_verify(tmp_path):
    path = glue_model(tmp_path / "glue.onnx")
    g = load_model(path)
    assert [op.type for op in g.ops] == ["Conv2D", "MaxPool2D", "Pad", "AveragePool2D", "Concatenation", "Relu6",
                                         "Mean", "Reshape", "FullyConnected", "Softmax"]
    assert g.ops[0].attrs.activation.kind == "relu" and g.ops[4].attrs.axis == 3
    assert g.tensor(g.ops[2].outputs[0]).shape == (1, 10, 12, 4)          # NCHW pads [0,0,1,1,0,0,1,1]
    acts = [t.name for t in g.activation_tensors()]
    for inputs in seeded_inputs(g, 2, 3):
        ref = run_graph(g, inputs)
        ort = run_onnxruntime(path, g, inputs, tensors=acts)
        for name in acts:
            tol = 1e-5 * max(1.0, float(np.abs(ref[name]).max()))
            assert np.abs(ref[name].astype(np.float64) - ort[name]).max() <= tol, name
    report = verify_graph(g, load_target("x86_64"), runs=2, seed=1)
    assert_verified(report)


# ----------------------------------------------------------------------- generated C (x86, Cortex-M4)

@pytest.mark.parametrize("model", [FLOAT_MODEL, QDQ_MODEL], ids=lambda p: p.stem)
def test_generated_c_verifies_on_x86(model):
    g = load_model(model)
    report = verify_graph(g, load_target("x86_64"), runs=3, seed=2)
    assert_verified(report)


def test_qoperator_model_verifies_on_x86(tmp_path):
    g = load_model(qoperator_model(tmp_path / "qop.onnx", 8, True))
    report = verify_graph(g, load_target("x86_64"), runs=3, seed=3)
    assert_verified(report)


@pytest.mark.qemu
def test_qdq_model_verifies_on_cortex_m4():
    target = load_target("cortex-m4")
    ok, why = toolchain_available(target)
    if not ok:
        pytest.skip(why)
    g = load_model(QDQ_MODEL)
    report = verify_graph(g, target, runs=2, seed=4)
    assert_verified(report)
    assert len(report.layer_instructions) == len(g.ops)


# ------------------------------------------------------------------------------ errors via the CLI

def _float_model(path: Path, nodes, inits, in_shape=(1, 4, 6, 6), out_name="y", out_shape=(1, 4, 6, 6),
                 opset=13) -> Path:
    graph = helper.make_graph(nodes, "m", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(in_shape))],
                              [helper.make_tensor_value_info(out_name, TensorProto.FLOAT, list(out_shape))],
                              initializer=[numpy_helper.from_array(v, k) for k, v in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


W = {"w": np.ones((4, 4, 3, 3), np.float32), "w2": np.ones((4, 2, 3, 3), np.float32)}


def _conv(**attrs):
    return helper.make_node("Conv", ["x", "w"], ["c"], name="conv1", kernel_shape=[3, 3], **attrs)


BAD = {
    "truncated": (lambda p: p.write_bytes(FLOAT_MODEL.read_bytes()[:5000]),
                  ["not a valid ONNX model", "truncated"]),
    "not_onnx": (lambda p: p.write_bytes(b"\x00garbage, not a protobuf at all\xff" * 3),
                 ["not a valid ONNX model"]),
    "unsupported_op": (lambda p: _float_model(p, [_conv(pads=[1, 1, 1, 1]),
                                                  helper.make_node("Erf", ["c"], ["y"], name="gate")], W),
                       ["node 1 'gate' (Erf, output 'y')", "operator Erf is not supported"]),
    "unsupported_ops_all_listed": (
        lambda p: _float_model(p, [_conv(pads=[1, 1, 1, 1]), helper.make_node("Erf", ["c"], ["e1"], name="erf1"),
                                   helper.make_node("Erf", ["e1"], ["e2"], name="erf2"),
                                   helper.make_node("Sin", ["e2"], ["y"], name="sin")], W),
        ["2 operators are not supported", "Erf: 2 nodes (node 1 'erf1' (Erf, output 'e1'); node 2 'erf2'",
         "Sin: 1 node (node 3 'sin' (Sin, output 'y'))"]),
    "dynamic_batch": (lambda p: _float_model(p, [_conv(pads=[1, 1, 1, 1]), helper.make_node("Relu", ["c"], ["y"])], W,
                                             in_shape=("N", 4, 6, 6), out_shape=("N", 4, 6, 6)),
                      ["graph input 'x'", "dynamic dimension 'N'"]),
    "same_lower": (lambda p: _float_model(p, [_conv(auto_pad="SAME_LOWER"), helper.make_node("Relu", ["c"], ["y"])], W),
                   ["node 0 'conv1' (Conv, output 'c')", "auto_pad=SAME_LOWER is not supported"]),
    "grouped_conv": (lambda p: _float_model(p, [helper.make_node("Conv", ["x", "w2"], ["y"], name="g2", group=2,
                                                                 kernel_shape=[3, 3])], W, out_shape=(1, 4, 4, 4)),
                     ["node 0 'g2' (Conv, output 'y')", "group=2 is not supported"]),
    "nchw_flatten": (lambda p: _float_model(p, [_conv(pads=[1, 1, 1, 1]),
                                                helper.make_node("Flatten", ["c"], ["y"], name="flat")], W,
                                            out_shape=(1, 144)),
                     ["node 1 'flat' (Flatten, output 'y')", "H = W = 1", "NHWC"]),
    "runtime_weights": (lambda p: _float_model(p, [helper.make_node("Conv", ["x", "x"], ["y"], name="self_conv")], {},
                                               out_shape=(1, 1, 1, 1)),
                        ["node 0 'self_conv' (Conv, output 'y')", "weights 'x' must be a constant"]),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_models_give_clear_errors(tmp_path, case):
    make, expected = BAD[case]
    path = tmp_path / f"{case}.onnx"
    make(path)
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["generate", str(path), "-t", "x86_64", "-o", str(out)])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit)
    for text in expected:
        assert text in result.output, (text, result.output)
    assert not out.exists()


def test_load_error_is_a_dws_error(tmp_path):
    path = tmp_path / "t.onnx"
    path.write_bytes(QDQ_MODEL.read_bytes()[:-700])
    with pytest.raises(DwsError, match="t.onnx"):
        load_model(path)


@pytest.mark.parametrize("name", ["mbv2_small", "mbv2_small_qdq"])
def test_verify_cli_uses_onnxruntime_as_oracle(name):
    from click.testing import CliRunner
    from dwscodegen.cli import main
    model = Path(__file__).resolve().parent.parent / "examples" / f"{name}.onnx"
    result = CliRunner().invoke(main, ["verify", str(model), "-t", "x86_64", "--inputs", "4"])
    assert result.exit_code == 0, result.output
    assert "oracle: onnxruntime" in result.output and "PASS" in result.output
