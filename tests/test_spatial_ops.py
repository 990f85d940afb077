"""The spatial ops of segmentation and detector heads end to end: single-op .tflite files (tests/support/
spatial_cases.py) are imported, generated with both backends, compiled, run on x86 and compared with the TFLite
interpreter's reference kernels (BUILTIN_REF) on the same file: int8 bit-exact, float32 within tolerance.

MediaPipe's custom Convolution2DTransposeBias has no kernel in the interpreter (MediaPipe only implements it
in its XNNPACK and GPU delegates), so its oracle is the NumPy reference, which is itself pinned to the
interpreter: the same weights as a builtin TRANSPOSE_CONV with bias give the same values.
"""
from __future__ import annotations

import struct

import numpy as np
import pytest
from click.testing import CliRunner

from dwscodegen.cli import main
from dwscodegen.importers import load_model
from dwscodegen.oracles import tflite_interpreter
from dwscodegen.reference.graph import run_graph
from dwscodegen.targets import load_target
from dwscodegen.verify import verify_graph

pytestmark = pytest.mark.skipif(not tflite_interpreter.available(), reason="ai-edge-litert not installed")
from .support.backends import BACKENDS
from .support.spatial_cases import (hybrid_depthwise_cases, mean_cases, resize_cases,  # noqa: E402
                                    transpose_conv_cases)
from .support.targets import target_or_skip  # noqa: E402
from .support.tflite_builder import TensorSpec, build_custom_op_model, build_single_op_model  # noqa: E402
from .support.tflite_cases import act  # noqa: E402
from .support.layers import assert_verified  # noqa: E402

CASES = (resize_cases("int8") + resize_cases("float32") + transpose_conv_cases("int8")
         + transpose_conv_cases("float32") + hybrid_depthwise_cases() + mean_cases("int8") + mean_cases("float32"))


@pytest.fixture(scope="module")
def x86():
    return load_target("x86_64")


_check = assert_verified


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_single_op_against_interpreter(case, backend, x86, tmp_path):
    path = tmp_path / f"{case.name}.tflite"
    path.write_bytes(case.model())
    report = verify_graph(load_model(path), x86, backend=backend, runs=2, seed=4, oracle="tflite")
    assert report.oracle == "tflite"
    _check(report)


MEDIAPIPE_OPTIONS = {"SAME": 1, "VALID": 2}    # TfLitePadding


def _mediapipe_tconv(tmp_path, padding: str, stride: int, seed: int = 11):
    """(Convolution2DTransposeBias model path, the same weights as builtin TRANSPOSE_CONV path)."""
    rng = np.random.default_rng(seed)
    x = act("x", (1, 4, 3, 3), "float32")
    w = TensorSpec("w", (2, 3, 3, 3), "float32", data=rng.normal(0, 0.3, (2, 3, 3, 3)).astype(np.float32))
    b = TensorSpec("b", (2,), "float32", data=rng.normal(0, 0.1, 2).astype(np.float32))
    out = (4 * stride, 3 * stride) if padding == "SAME" else (3 * stride + 3, 2 * stride + 3)
    y = act("y", (1, *out, 2), "float32")
    custom = tmp_path / f"mediapipe_{padding}_{stride}.tflite"
    custom.write_bytes(build_custom_op_model("Convolution2DTransposeBias", [x, w, b], [y],
                                             struct.pack("<iii", MEDIAPIPE_OPTIONS[padding], stride, stride)))
    builtin = tmp_path / f"builtin_{padding}_{stride}.tflite"
    builtin.write_bytes(build_single_op_model("TRANSPOSE_CONV", [x, w, b], [y],
                                              dict(padding=padding, stride_h=stride, stride_w=stride)))
    return custom, builtin


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("padding,stride", [("SAME", 2), ("VALID", 2), ("SAME", 3)])
def test_mediapipe_transpose_conv_bias(padding, stride, backend, x86, tmp_path):
    custom, builtin = _mediapipe_tconv(tmp_path, padding, stride)
    graph = load_model(custom)
    assert [op.type for op in graph.ops] == ["TransposeConv2D"]
    # the NumPy reference of the custom op equals the interpreter's builtin TRANSPOSE_CONV with bias ...
    _check(verify_graph(load_model(builtin), x86, backend=backend, runs=2, seed=2, oracle="tflite"))
    x = np.random.default_rng(2).normal(0, 1, graph.tensor(graph.inputs[0]).shape).astype(np.float32)
    from .support.tflite_builder import run_reference
    (expected,) = run_reference(builtin.read_bytes(), [x])
    got = run_graph(graph, {graph.inputs[0]: x})[graph.outputs[0]]
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    # ... and the generated C of the custom op is verified against that reference (auto: NumPy, since the
    # interpreter cannot run it)
    report = verify_graph(graph, x86, backend=backend, runs=2, seed=2, oracle="numpy")
    _check(report)


def test_custom_op_interpreter_has_no_kernel(tmp_path):
    """Why the NumPy reference is the custom op's oracle: the interpreter refuses the model."""
    custom, _ = _mediapipe_tconv(tmp_path, "SAME", 2)
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
    with pytest.raises(Exception):
        interpreter = Interpreter(model_path=str(custom), experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
        interpreter.allocate_tensors()


def test_bad_custom_options_are_a_clear_error(tmp_path):
    x = act("x", (1, 4, 3, 3), "float32")
    w = TensorSpec("w", (2, 3, 3, 3), "float32", data=np.ones((2, 3, 3, 3), np.float32))
    b = TensorSpec("b", (2,), "float32", data=np.zeros(2, np.float32))
    path = tmp_path / "bad.tflite"
    path.write_bytes(build_custom_op_model("Convolution2DTransposeBias", [x, w, b], [act("y", (1, 8, 6, 2), "float32")],
                                           struct.pack("<ii", 1, 2)))
    result = CliRunner().invoke(main, ["generate", str(path), "-t", "x86_64", "-o", str(tmp_path / "o")])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "Convolution2DTransposeBias" in result.output and "custom options" in result.output


def test_mean_over_non_adjacent_axes_is_refused(tmp_path):
    path = tmp_path / "mean13.tflite"
    path.write_bytes(build_single_op_model("MEAN", [act("x", (1, 4, 3, 5), "int8")], [act("y", (1, 3), "int8")],
                                           dict(axis=[1, 3], keep_dims=False)))
    result = CliRunner().invoke(main, ["generate", str(path), "-t", "x86_64", "-o", str(tmp_path / "o")])
    assert result.exit_code == 1 and "operator 0 (MEAN" in result.output and "adjacent" in result.output


def test_resize_with_two_conventions_is_refused(tmp_path):
    path = tmp_path / "both.tflite"
    path.write_bytes(build_single_op_model("RESIZE_BILINEAR", [act("x", (1, 2, 2, 1), "float32")],
                                           [act("y", (1, 4, 4, 1), "float32")],
                                           dict(size=[4, 4], align_corners=True, half_pixel_centers=True)))
    result = CliRunner().invoke(main, ["generate", str(path), "-t", "x86_64", "-o", str(tmp_path / "o")])
    assert result.exit_code == 1 and "align_corners and half_pixel_centers" in result.output


QEMU_CASES = [c for c in CASES if c.name in (
    "resize_bilinear_int8_n2_3x5_to_9x15_a0_h1", "transpose_conv_int8_n1_3x4_k3x3_s2x2_same_none",
    "hybrid_depthwise_n2_m1_s2_same", "transpose_conv_float32_n2_3x4_k3x3_s2x2_valid_relu_nobias")]


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("target", ["cortex-m4", "cortex-m55"])
@pytest.mark.parametrize("case", QEMU_CASES, ids=lambda c: c.name)
def test_cortex_m(case, target, backend, tmp_path):
    path = tmp_path / f"{case.name}.tflite"
    path.write_bytes(case.model())
    _check(verify_graph(load_model(path), target_or_skip(target), backend=backend, runs=1, seed=4, oracle="tflite"))


def _head_json(tmp_path, dtype: str):
    """A segmentation-head-like JSON graph: TransposeConv2D (SAME, stride 2, relu), ResizeBilinear (non-integer
    ratio, half-pixel), ResizeNearest (align_corners), Mean over H; batch 2."""
    import json
    rng = np.random.default_rng(21)
    s8 = dtype == "int8"

    def t(name, shape, scale=0.05, zp=-3, data=None, **extra):
        spec = {"name": name, "shape": list(shape), "dtype": extra.pop("dtype", dtype)}
        if s8 and spec["dtype"] == "int8":
            spec["quant"] = {"scale": scale, "zero_point": zp, **extra}
        if data is not None:
            spec["data"] = np.asarray(data).tolist()
        return spec
    w = rng.integers(-127, 128, (3, 3, 3, 4)) if s8 else rng.normal(0, 0.3, (3, 3, 3, 4))
    b = rng.integers(-900, 900, 3) if s8 else rng.normal(0, 0.1, 3)
    tensors = [t("x", (2, 3, 4, 4)),
               t("w", (3, 3, 3, 4), [0.01, 0.02, 0.015], [0, 0, 0], w, axis=0),
               t("b", (3,), data=b, dtype="int32" if s8 else "float32"),
               t("up", (2, 6, 8, 3), 0.04, -20), t("big", (2, 9, 11, 3), 0.04, -20),
               t("near", (2, 5, 4, 3), 0.04, -20), t("y", (2, 1, 4, 3), 0.03, 5)]
    ops = [{"name": "deconv", "type": "TransposeConv2D", "inputs": ["x", "w", "b"], "outputs": ["up"],
            "stride": [2, 2], "padding": "SAME", "activation": "relu"},
           {"name": "bilinear", "type": "ResizeBilinear", "inputs": ["up"], "outputs": ["big"],
            "half_pixel_centers": True},
           {"name": "nearest", "type": "ResizeNearest", "inputs": ["big"], "outputs": ["near"], "align_corners": True},
           {"name": "mean", "type": "Mean", "inputs": ["near"], "outputs": ["y"], "axes": [1], "keep_dims": True}]
    path = tmp_path / f"head_{dtype}.json"
    path.write_text(json.dumps({"name": f"head_{dtype}", "tensors": tensors, "ops": ops, "inputs": ["x"],
                                "outputs": ["y"]}))
    return path


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", ["int8", "float32"])
def test_json_head(dtype, backend, x86, tmp_path):
    graph = load_model(_head_json(tmp_path, dtype))
    assert [op.type for op in graph.ops] == ["TransposeConv2D", "ResizeBilinear", "ResizeNearest", "Mean"]
    assert graph.ops[0].attrs.pad == (0, 1, 0, 1) and graph.ops[3].attrs.axes == (1,)
    report = verify_graph(graph, x86, backend=backend, runs=2, seed=3, check_layers=True)
    _check(report)
    assert len(report.layers) == 4 and all(c.ok for _, c in report.layers)


def test_json_transpose_conv_padding_is_tflites(tmp_path):
    """"SAME" in the JSON format crops what TFLite's TRANSPOSE_CONV crops, for every stride/kernel case."""
    import json
    for case in transpose_conv_cases("float32"):
        tflite_path = tmp_path / f"{case.name}.tflite"
        tflite_path.write_bytes(case.model())
        expected = load_model(tflite_path).ops[0]
        x, w, _ = case.inputs
        doc = {"name": "t", "inputs": ["x"], "outputs": ["y"],
               "tensors": [{"name": "x", "shape": list(x.shape), "dtype": "float32"},
                           {"name": "w", "shape": list(w.shape), "dtype": "float32", "data": w.data.tolist()},
                           {"name": "y", "shape": list(case.outputs[0].shape), "dtype": "float32"}],
               "ops": [{"name": "d", "type": "TransposeConv2D", "inputs": ["x", "w"], "outputs": ["y"],
                        "stride": [case.options["stride_h"], case.options["stride_w"]],
                        "padding": case.options["padding"]}]}
        path = tmp_path / f"{case.name}.json"
        path.write_text(json.dumps(doc))
        assert load_model(path).ops[0].attrs.pad == expected.attrs.pad, case.name


def test_verify_of_custom_op_model_uses_numpy_reference(tmp_path):
    """`verify` on a model with a custom op: auto picks the NumPy reference; --oracle tflite says why not."""
    custom, _ = _mediapipe_tconv(tmp_path, "SAME", 2)
    result = CliRunner().invoke(main, ["verify", str(custom), "-t", "x86_64"])
    assert result.exit_code == 0 and "oracle: NumPy reference" in result.output and "PASS" in result.output
    result = CliRunner().invoke(main, ["verify", str(custom), "-t", "x86_64", "--oracle", "tflite"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "no kernel for the custom operator(s) Convolution2DTransposeBias" in result.output


def test_int8_bilinear_upscale_past_the_input_is_refused(tmp_path):
    """TFLite's 1/1024 integer scale reads past the last input row for upscales by about a thousand."""
    path = tmp_path / "huge.tflite"
    path.write_bytes(build_single_op_model("RESIZE_BILINEAR", [act("x", (1, 1, 2, 1), "int8")],
                                           [act("y", (1, 2000, 2, 1), "int8")],
                                           dict(size=[2000, 2], half_pixel_centers=True)))
    result = CliRunner().invoke(main, ["generate", str(path), "-t", "x86_64", "-o", str(tmp_path / "o")])
    assert result.exit_code == 1 and "reads past the input's last row" in result.output
