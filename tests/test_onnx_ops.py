"""ONNX as torch exports it: nodes of constants folded, ReduceMean, Mul / Sigmoid / HardSigmoid / HardSwish,
Resize, ConvTranspose, external data; float32 and onnxruntime QDQ (quantize_static) for each, against
onnxruntime, and the generated C against the NumPy reference, with both backends.

Tests of ops the IR does not have yet (ir.OP_TYPES) skip, and run as soon as the op lands.

Bounds, as in test_onnx_import: float32 tensors within 1e-5 * max(1, max |value|) of onnxruntime; int8 tensors
of a QDQ model, each op fed onnxruntime's own inputs, within 1 LSB on at most 1e-3 of their values
(onnxruntime runs a QDQ model as Dequantize, float op, Quantize: a float32 sum lands on the other side of a
rounding boundary now and then, and ops with TFLite's int8 arithmetic round differently near .5).
"""
from __future__ import annotations

import os

import numpy as np
import pytest
from click.testing import CliRunner

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper  # noqa: E402

from dwscodegen.cli import main  # noqa: E402
from dwscodegen.errors import DwsError  # noqa: E402
from dwscodegen.importers import load_model  # noqa: E402
from dwscodegen.ir import OP_TYPES  # noqa: E402
from dwscodegen.passes.source_ops import SOURCE_OP_TYPES  # noqa: E402
from dwscodegen.targets import load_target  # noqa: E402
from dwscodegen.verify import verify_graph  # noqa: E402

from .support.layers import assert_verified  # noqa: E402
from .support.backends import BACKENDS
from .support.onnx_cases import (  # noqa: E402
    GATES,
    conv_transpose_model,
    gate_model,
    layer_differences,
    quantize_qdq,
    reduce_mean_model,
    resize_model,
    save_model,
    shape_chain_model,
)



def needs(*ops: str):
    missing = [op for op in ops if op not in OP_TYPES]
    return pytest.mark.skipif(bool(missing), reason=f"IR op(s) {', '.join(missing)} not in ir.OP_TYPES yet (being "
                                                    "added to the reference and both backends)")


def seeded_inputs(graph, seed: int, count: int) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [{n: rng.normal(0.0, 1.0, size=graph.tensor(n).shape).astype(np.float32) for n in graph.inputs}
            for _ in range(count)]


def check_float(path, backend: str = "templates"):
    """Every activation of the reference within tolerance of onnxruntime; the C code verifies on x86."""
    graph = load_model(path)
    assert not {op.type for op in graph.ops} & set(SOURCE_OP_TYPES)
    for inputs in seeded_inputs(graph, 3, 2):
        for where, (off, worst, _) in layer_differences(path, graph, inputs).items():
            assert off == 0, (where, off, worst)
    report = verify_graph(graph, load_target("x86_64"), backend=backend, runs=2, seed=1)
    assert_verified(report)
    return graph


def check_qdq(path, backend: str = "templates", off_fraction: float = 1e-3):
    """int8 layers within 1 LSB of onnxruntime on at most `off_fraction` of their values (2 in a small tensor:
    onnxruntime sums in float32), float ones within
    tolerance; the C code bit-exact with the reference on x86."""
    graph = load_model(path)
    assert any(graph.op_dtype(op) == "int8" for op in graph.ops)
    for inputs in seeded_inputs(graph, 4, 2):
        for where, (off, worst, size) in layer_differences(path, graph, inputs).items():
            assert worst <= 1 and off <= max(2, off_fraction * size), (where, off, worst, size)
    report = verify_graph(graph, load_target("x86_64"), backend=backend, runs=2, seed=1, oracle="numpy")
    assert_verified(report)
    return graph


def qdq(tmp_path, path):
    return quantize_qdq(path, tmp_path / f"{path.stem}_qdq.onnx", seed=5)


# ------------------------------------------------------------------------------ constants and ReduceMean

def test_shape_chains_fold_to_constants(tmp_path):
    path = shape_chain_model(tmp_path / "chain.onnx")
    graph = check_float(path)
    assert [op.type for op in graph.ops] == ["Conv2D", "Pad", "Mean", "Reshape", "FullyConnected"]
    assert all(t.dtype in ("float32", "int32", "int8") for t in graph.tensors.values())
    graph = check_qdq(qdq(tmp_path, path))
    assert not any(t.dtype == "int64" for t in graph.tensors.values())


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("keepdims,opset", [(0, 13), (1, 13), (0, 18), (1, 18)])
def test_reduce_mean_global_pooling(tmp_path, keepdims, opset, backend):
    path = reduce_mean_model(tmp_path / "mean.onnx", keepdims, opset)
    graph = check_float(path, backend)
    mean = next(op for op in graph.ops if op.type == "Mean")
    assert mean.attrs.keep_dims == bool(keepdims)
    graph = check_qdq(qdq(tmp_path, path), backend)
    if not keepdims:    # DQ -> ReduceMean -> Q: onnxruntime's averaging, a depthwise filter of ones + reshape
        assert [op.type for op in graph.ops][2:4] == ["DepthwiseConv2D", "Reshape"]


def test_reduce_mean_over_channels_is_refused(tmp_path):
    path = save_model(tmp_path / "m.onnx", [helper.make_node("ReduceMean", ["x"], ["y"], name="m", axes=[1])], {},
                      {"x": (1, 4, 3, 3)}, {"y": (1, 1, 3, 3)})
    with pytest.raises(DwsError, match=r"node 0 'm' \(ReduceMean.*the mean over axes \[1\].*only over H and W"):
        load_model(path)


# --------------------------------------------------------------------------------------------- gates

GATE_OPS = {"sigmoid": ("Logistic",), "hard_sigmoid": (), "hard_swish": ("HardSwish",),
            "x_hard_sigmoid_x": ("HardSwish", "Mul"), "mul_const": ("Mul",), "squeeze_excite": ("Mul",)}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", [pytest.param(k, marks=needs(*GATE_OPS[k])) for k in GATES])
def test_gates_float_and_qdq(tmp_path, kind, backend):
    path = gate_model(tmp_path / f"{kind}.onnx", kind)
    graph = check_float(path, backend)
    types = [op.type for op in graph.ops]
    expected = {"sigmoid": "Logistic", "hard_sigmoid": "DepthwiseConv2D", "hard_swish": "HardSwish",
                "x_hard_sigmoid_x": "HardSwish", "mul_const": "Mul", "squeeze_excite": "Mul"}[kind]
    assert expected in types and "HardSigmoid" not in types
    # int8 HardSwish is TFLite's int16 fixed-point recipe, onnxruntime's QDQ computes it in float and rounds half
    # to even: about 1 % of the values land 1 LSB apart
    check_qdq(qdq(tmp_path, path), backend, off_fraction=0.02 if expected == "HardSwish" else 1e-3)


def test_hard_sigmoid_is_a_clamped_depthwise(tmp_path):
    """HardSigmoid alone, in IR ops: a 1x1 depthwise convolution (weights alpha, bias beta) clamped to [0, 1];
    in a QDQ model it runs in float between Dequantize and Quantize."""
    graph = load_model(gate_model(tmp_path / "hs.onnx", "hard_sigmoid"))
    dw = graph.ops[1]
    assert dw.type == "DepthwiseConv2D" and dw.attrs.activation.bounds() == (0.0, 1.0)
    assert np.all(graph.tensor(dw.inputs[1]).data == np.float32(0.2))
    assert np.all(graph.tensor(dw.inputs[2]).data == np.float32(0.5))
    graph = load_model(qdq(tmp_path, tmp_path / "hs.onnx"))
    assert [(op.type, graph.op_dtype(op)) for op in graph.ops][2:5] == [
        ("Dequantize", "int8"), ("DepthwiseConv2D", "float32"), ("Quantize", "float32")]


# -------------------------------------------------------------------------------------------- Resize

RESIZES = {   # id: (mode, coordinate_transformation_mode, nearest_mode, sizes, scales, expected TFLite convention)
    "torch_nearest_x2": ("nearest", "asymmetric", "floor", None, (2.0, 2.0), (False, False)),
    "nearest_sizes": ("nearest", "asymmetric", "floor", (8, 9), None, (False, False)),
    "nearest_half_pixel_ceil": ("nearest", "half_pixel", "round_prefer_ceil", (10, 12), None, (False, True)),
    "nearest_half_pixel_floor_x2": ("nearest", "half_pixel", "round_prefer_floor", None, (2.0, 2.0), (False, True)),
    "nearest_align_corners": ("nearest", "align_corners", "round_prefer_ceil", (9, 11), None, (True, False)),
    "bilinear_half_pixel": ("linear", "half_pixel", "round_prefer_floor", None, (2.0, 2.0), (False, True)),
    "bilinear_pytorch_half_pixel": ("linear", "pytorch_half_pixel", "round_prefer_floor", (7, 8), None, (False, True)),
    "bilinear_align_corners": ("linear", "align_corners", "round_prefer_floor", (9, 11), None, (True, False)),
    "bilinear_asymmetric_down": ("linear", "asymmetric", "round_prefer_floor", (3, 3), None, (False, False)),
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", sorted(RESIZES))
def test_resize_maps_onto_tflite_conventions(tmp_path, case, backend):
    mode, coord, nearest, sizes, scales, convention = RESIZES[case]
    op_type = "ResizeNearest" if mode == "nearest" else "ResizeBilinear"
    if op_type not in OP_TYPES:
        pytest.skip(f"IR op {op_type} not in ir.OP_TYPES yet (being added to the reference and both backends)")
    path = resize_model(tmp_path / f"{case}.onnx", mode, coord, nearest, sizes=sizes, scales=scales)
    graph = check_float(path, backend)
    op = next(op for op in graph.ops if op.type == op_type)
    assert (op.attrs.align_corners, op.attrs.half_pixel_centers) == convention
    # int8 bilinear interpolates in TFLite's integer arithmetic, onnxruntime's QDQ in float then rounds half to
    # even: up to a fifth of the values land 1 LSB apart (nearest neighbour copies, exactly)
    check_qdq(qdq(tmp_path, path), backend, off_fraction=0.25 if "bilinear" in case else 1e-3)


REFUSED_RESIZES = {
    # downscaling by 2 puts every output pixel on a tie: round_prefer_floor reads other pixels than TFLite
    "nearest_half_pixel_floor_down": (("nearest", "half_pixel", "round_prefer_floor"), dict(sizes=(2, 3)),
                                      "reads other pixels"),
    "cubic": (("cubic", "half_pixel"), dict(sizes=(10, 12)), "mode 'cubic' is not supported"),
    "crop_and_resize": (("linear", "tf_crop_and_resize"), dict(sizes=(10, 12)), "'tf_crop_and_resize'"),
    "fractional_scale": (("linear", "half_pixel"), dict(scales=(1.5, 1.5)), "do not give whole output sizes"),
}


@pytest.mark.parametrize("case", sorted(REFUSED_RESIZES))
def test_resize_modes_tflite_cannot_compute_are_refused(tmp_path, case):
    args, kwargs, text = REFUSED_RESIZES[case]
    path = resize_model(tmp_path / f"{case}.onnx", *args, **kwargs)
    with pytest.raises(DwsError, match=r"node 1 'resize' \(Resize") as err:
        load_model(path)
    assert text in str(err.value)


# ------------------------------------------------------------------------------------- ConvTranspose

@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("stride,k,pads,output_padding", [(2, 3, (1, 1, 1, 1), (1, 1)), (2, 4, (1, 1, 1, 1), (0, 0)),
                                                        (1, 3, (0, 0, 0, 0), (0, 0))])
@needs("TransposeConv2D")
def test_conv_transpose(tmp_path, stride, k, pads, output_padding, backend):
    path = conv_transpose_model(tmp_path / "up.onnx", stride, k, pads, output_padding)
    graph = check_float(path, backend)
    op = next(op for op in graph.ops if op.type == "TransposeConv2D")
    assert op.attrs.pad == (pads[0], pads[2] - output_padding[0], pads[1], pads[3] - output_padding[1])
    check_qdq(qdq(tmp_path, path), backend)


def test_conv_transpose_output_padding_beyond_the_output_is_refused(tmp_path):
    path = conv_transpose_model(tmp_path / "up.onnx", 2, 3, (0, 0, 0, 0), (1, 1))
    with pytest.raises(DwsError, match=r"node 1 'up' \(ConvTranspose.*output_padding \[1, 1\] beyond pads"):
        load_model(path)


# ------------------------------------------------------------------------------- files and messages

def test_external_data_is_read_beside_the_model(tmp_path, monkeypatch):
    """`model.onnx.data` is looked up in the model's folder, whatever the working directory."""
    src = onnx.load(str(reduce_mean_model(tmp_path / "src.onnx", 0)))
    folder = tmp_path / "models"
    folder.mkdir()
    onnx.save_model(src, str(folder / "m.onnx"), save_as_external_data=True, location="m.onnx.data",
                    size_threshold=0)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    result = CliRunner().invoke(main, ["verify", os.path.relpath(folder / "m.onnx"), "-t", "x86_64", "--inputs", "2"])
    assert result.exit_code == 0, result.output
    assert "oracle: onnxruntime" in result.output and "PASS" in result.output
    (folder / "m.onnx.data").unlink()
    with pytest.raises(DwsError, match=r"m.onnx: the model keeps its weights in m.onnx.data, which cannot be read "
                                       r"beside it in .*models"):
        load_model(folder / "m.onnx")


def test_standalone_clip_that_cannot_fuse_is_named(tmp_path):
    """A Clip to [-1, 1] after an op that cannot take it (Mean) has no IR op: the message says where and why."""
    nodes = [helper.make_node("GlobalAveragePool", ["x"], ["g"], name="gap"),
             helper.make_node("Clip", ["g", "lo", "hi"], ["y"], name="clip")]
    path = save_model(tmp_path / "c.onnx", nodes, {"lo": np.float32(-1), "hi": np.float32(1)}, {"x": (1, 4, 3, 3)},
                      {"y": (1, 4, 1, 1)})
    with pytest.raises(DwsError, match=r"node 1 'clip' \(Clip, output 'y'\): Clip to \[-1.0, 1.0\] is supported only "
                                       r"fused"):
        load_model(path)


def test_matmul_add_and_relu_fuse(tmp_path):
    """MatMul + Add of a constant + Relu: one FullyConnected with bias and a fused relu."""
    rng = np.random.default_rng(3)
    nodes = [helper.make_node("MatMul", ["x", "w"], ["m"], name="mm"), helper.make_node("Add", ["b", "m"], ["a"]),
             helper.make_node("Relu", ["a"], ["y"])]
    path = save_model(tmp_path / "fc.onnx", nodes, {"w": rng.normal(0, 1, (6, 4)).astype(np.float32),
                                                   "b": rng.normal(0, 1, 4).astype(np.float32)},
                      {"x": (2, 6)}, {"y": (2, 4)})
    graph = check_float(path)
    (fc,) = graph.ops
    assert fc.type == "FullyConnected" and len(fc.inputs) == 3 and fc.attrs.activation.kind == "relu"
    assert graph.tensor(fc.inputs[2]).shape == (4,)


def test_int64_graph_input_is_refused(tmp_path):
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.INT64, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.INT64, [1, 4])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.save(model, str(tmp_path / "i.onnx"))
    with pytest.raises(DwsError, match="graph input 'x': is INT64; graph inputs must be float32"):
        load_model(tmp_path / "i.onnx")


def test_float16_weights_and_quantized_constants_fold(tmp_path):
    """float16 weights behind a Cast (a model exported in half precision and cast back), and int8 weights
    written as QuantizeLinear -> DequantizeLinear of float constants (as PT2E-style quantizers write them):
    both are nodes of constants, folded at import."""
    rng = np.random.default_rng(8)
    w = rng.normal(0, 0.3, (6, 3, 3, 3))
    inits = {"w16": w.astype(np.float16), "b": rng.normal(0, 0.1, 6).astype(np.float32),
             "w2": rng.normal(0, 0.3, (4, 6, 1, 1)).astype(np.float32), "z": np.int8(0),
             "ws": np.float32(0.0113), "xs": np.float32(0.0437), "ys": np.float32(0.0971)}
    nodes = [helper.make_node("Cast", ["w16"], ["w"], to=TensorProto.FLOAT),
             helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
             helper.make_node("QuantizeLinear", ["c", "xs", "z"], ["cq"], name="q"),
             helper.make_node("DequantizeLinear", ["cq", "xs", "z"], ["cd"], name="dq"),
             helper.make_node("QuantizeLinear", ["w2", "ws", "z"], ["w2q"], name="w2_q"),
             helper.make_node("DequantizeLinear", ["w2q", "ws", "z"], ["w2d"], name="w2_dq"),
             helper.make_node("Conv", ["cd", "w2d"], ["p"], name="pw", kernel_shape=[1, 1]),
             helper.make_node("QuantizeLinear", ["p", "ys", "z"], ["pq"], name="pq"),
             helper.make_node("DequantizeLinear", ["pq", "ys", "z"], ["y"], name="out")]
    path = save_model(tmp_path / "fp16.onnx", nodes, inits, {"x": (1, 3, 6, 6)}, {"y": (1, 4, 6, 6)})
    graph = load_model(path)
    assert [(op.type, graph.op_dtype(op)) for op in graph.ops] == [
        ("Conv2D", "float32"), ("Quantize", "float32"), ("Conv2D", "int8"), ("Dequantize", "int8")]
    np.testing.assert_array_equal(graph.tensor(graph.ops[0].inputs[1]).data,
                                  w.astype(np.float16).astype(np.float32).transpose(0, 2, 3, 1))
    assert graph.tensor(graph.ops[2].inputs[1]).dtype == "int8"
    for inputs in seeded_inputs(graph, 5, 2):
        for where, (off, worst, size) in layer_differences(path, graph, inputs).items():
            assert worst <= 1 and off <= 1e-3 * size, (where, off, worst, size)
