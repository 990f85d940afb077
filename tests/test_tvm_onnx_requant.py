"""The tvm road's tensorized convolutions with requant "onnx" (onnxruntime's float32 epilogue): DSP on Cortex-M4,
MVE on Cortex-M55, the Thumb-2 register tiles (the epilogue in integers) on Cortex-M3 (backends/tvm/simd.py
ONNX_ISAS).

- The layer matrix's ONNX-requantized layers (tests/support/onnx_requant.py styles: exact ties, accumulators beyond
  2^24, dead channels, saturating and vanishing scales) are tensorized wherever the same layer with TFLite's
  requantization is, and bit-exact with the NumPy reference under QEMU; the channel tails that stay plain TVM C
  (depthwise channels after the last whole group) included.
- examples/mbv2_small_qdq.onnx: every conv layer the micro-kernels take is tensorized, the model is within 1 LSB of
  onnxruntime and bit-exact with the NumPy reference, and its executed instructions are within 1.1x of the
  templates road's (measured here, in the same run).
Quick subset by default; the whole matrix x styles and Cortex-M7 / M33 with -m slow.
"""
from __future__ import annotations

import dataclasses

import pytest

pytest.importorskip("tvm")

from dwscodegen.backends.templates.simd import common  # noqa: E402
from dwscodegen.backends.tvm import generate_kernels  # noqa: E402
from dwscodegen.backends.tvm import simd as tvm_simd  # noqa: E402
from dwscodegen.verify import verify_graph  # noqa: E402

from .support.layers import MATRIX, assert_verified, conv_graph  # noqa: E402
from .support.onnx_requant import STYLES, onnx_requant_graph, qdq_model_convs  # noqa: E402
from .support.targets import target_or_skip  # noqa: E402

ISA = {"cortex-m3": "THUMB2", "cortex-m4": "DSP", "cortex-m7": "DSP", "cortex-m33": "DSP", "cortex-m55": "MVE"}
# test_onnx_requant_kernels.QUICK, plus depthwise layers with 3 and 5 channels (DSP channel tails in plain TVM C;
# on MVE every depthwise layer of the matrix has fewer than 8 channels or exactly 8; Thumb-2 per its `lanes`).
QUICK = [(0, "plain"), (1, "ties"), (4, "big"), (7, "extreme"), (9, "extreme"), (10, "big"), (11, "ties"),
         (13, "plain"), (2, "ties"), (6, "extreme")]
FULL = [(i, s) for i in range(len(MATRIX)) for s in STYLES if (i, s) not in QUICK]


def check_onnx_layer(target, index: int, style: str) -> None:
    case = MATRIX[index]
    graph = onnx_requant_graph(case, style, seed=index)
    assert graph.ops[0].attrs.requant == "onnx"
    tflite = conv_graph(case, "int8", seed=index)
    expected = tvm_simd.applies(tflite, tflite.ops[0], target) is not None
    source = generate_kernels(graph, target)[0].source
    assert (f"tensorized for {ISA[target.name]}" in source) == expected, source[:400]
    if expected:
        assert 'requantization "onnx"' in source
    assert_verified(verify_graph(graph, target, backend="tvm", runs=2, seed=index, oracle="numpy"))


@pytest.mark.qemu
@pytest.mark.parametrize("target_name", ["cortex-m3", "cortex-m4", "cortex-m55"])
@pytest.mark.parametrize("index,style", QUICK, ids=[f"{MATRIX[i].id()}-{s}" for i, s in QUICK])
def test_onnx_requant_layer_tensorized(target_name, index, style):
    check_onnx_layer(target_or_skip(target_name), index, style)


@pytest.mark.qemu
@pytest.mark.slow
@pytest.mark.parametrize("target_name", ["cortex-m4", "cortex-m55", "cortex-m7", "cortex-m33"])
@pytest.mark.parametrize("index,style", FULL + QUICK, ids=[f"{MATRIX[i].id()}-{s}" for i, s in FULL + QUICK])
def test_onnx_requant_layer_tensorized_full(target_name, index, style):
    check_onnx_layer(target_or_skip(target_name), index, style)


def test_most_matrix_layers_are_tensorized():
    """Not vacuous: with requant "onnx" the tvm road tensorizes the layers of the matrix (depth multipliers aside)."""
    from dwscodegen.targets import load_target
    for name in ("cortex-m3", "cortex-m4", "cortex-m55"):
        target = load_target(name)
        left = [case.id() for i, case in enumerate(MATRIX) if case.multiplier == 1
                and tvm_simd.applies(g := onnx_requant_graph(case, "extreme", seed=i), g.ops[0], target) is None]
        assert left == [], (name, left)


def test_thumb2_takes_no_negative_scale():
    """The Thumb-2 micro-kernels' integer form of the float32 epilogue takes scales >= 0, as the templates road's."""
    from dwscodegen.targets import load_target
    graph = onnx_requant_graph(MATRIX[9], "plain", seed=9)
    info = common.conv_info(graph, graph.ops[0], onnx=True)
    assert tvm_simd.PLANS["thumb2"](info) is not None
    assert tvm_simd.PLANS["thumb2"](dataclasses.replace(info, onnx_scale=-info.onnx_scale)) is None
    assert tvm_simd.applies(graph, graph.ops[0], load_target("cortex-m3")) is not None


@pytest.mark.qemu
@pytest.mark.parametrize("target_name", ["cortex-m4", "cortex-m55"])
def test_qdq_model_tensorized_and_within_a_tenth_of_the_templates_road(target_name):
    pytest.importorskip("onnxruntime")
    target = target_or_skip(target_name)
    graph, convs = qdq_model_convs()
    # The global pool (a 256-tap depthwise) is beyond the unrolled depthwise windows (common.MAX_DEPTHWISE_TAPS).
    small = [op for op in convs if op.type == "Conv2D"
             or graph.tensor(op.inputs[1]).shape[1] * graph.tensor(op.inputs[1]).shape[2] <= common.MAX_DEPTHWISE_TAPS]
    assert len(small) >= 4
    sources = {k.op_index: k.source for k in generate_kernels(graph, target)}
    untensorized = [op.name for op in small if f"tensorized for {ISA[target.name]}" not in sources[op.index]]
    assert untensorized == [], untensorized
    assert_verified(verify_graph(graph, target, backend="tvm", runs=2, seed=3))                  # onnxruntime, 1 LSB
    report = verify_graph(graph, target, backend="tvm", runs=2, seed=3, oracle="numpy")          # bit-exact
    assert_verified(report)
    templates = verify_graph(graph, target, backend="templates", runs=1, seed=3, oracle="numpy")
    assert_verified(templates)
    tvm, ref = sum(report.layer_instructions), sum(templates.layer_instructions)
    assert tvm <= 1.1 * ref, (tvm, ref)
