"""SIMD variants of ONNX-requantized convolutions (requant "onnx": onnxruntime's float32 epilogue,
templates/kernels/_onnx_requant.j2).

- Every layer of the layer matrix with requant "onnx" gets the variant the same layer gets with TFLite's
  requantization (the MACs are the same; only the epilogue differs) and is bit-exact with the NumPy reference
  under QEMU (cortex-m3, m4, m55; m7 and m33 in the slow set) and natively (x86_64-v3 / -v4 where the host has them).
- Adversarial quantization (tests/support/onnx_requant.py): exact ties, accumulators beyond 2^24 (where the
  int32 -> float32 conversion rounds), dead channels with tiny scales and huge biases, saturating and vanishing
  scales; none of them sends a layer to the portable kernel.
- examples/mbv2_small_qdq.onnx end to end: no conv layer on a portable kernel, within 1 LSB of onnxruntime
  (verify.qdq_tolerance) and bit-exact with the NumPy reference.
Quick subset by default; the whole matrix x styles x targets with -m slow.
"""
from __future__ import annotations

import dataclasses

import pytest

from dwscodegen.backends.templates import generate_kernels, kernel_used, simd
from dwscodegen.verify import verify_graph

from .support.layers import MATRIX, ConvCase, assert_verified, conv_graph
from .support.onnx_requant import STYLES, onnx_requant_graph, qdq_model_convs
from .support.targets import target_or_skip


# What the generated C of an ONNX-requantized variant contains, per ISA: its epilogue.
EPILOGUE = {"mve": "vcvtnq_s32_f32", "dsp": "dws_onnx_requantize", "thumb2": "dws_onnx_requantize",
            "avx2": "_cvtps_epi32", "avx512vnni": "_mm512_cvtps_epi32"}
ISA_ORDER = ("mve", "dsp", "avx512vnni", "avx2", "thumb2")     # as simd.ISAS: most capable first

QUICK_TARGETS = ("cortex-m3", "cortex-m4", "cortex-m55", "x86_64-v3", "x86_64-v4")
SLOW_TARGETS = ("cortex-m7", "cortex-m33")
# (matrix index, style): depthwise 3x3, strided and dilated depthwise, a padding-only region, pointwise, im2col.
QUICK = [(0, "plain"), (1, "ties"), (4, "big"), (7, "extreme"), (9, "extreme"), (10, "big"), (11, "ties"),
         (13, "plain")]
FULL = [(i, s) for i in range(len(MATRIX)) for s in STYLES if (i, s) not in QUICK]


def _isa(target) -> str:
    return next(f for f in ISA_ORDER if f in target.features)


def check_onnx_layer(target, index: int, style: str) -> None:
    case = MATRIX[index]
    graph = onnx_requant_graph(case, style, seed=index)
    assert graph.ops[0].attrs.requant == "onnx"
    tflite = conv_graph(case, "int8", seed=index)
    expected = kernel_used(tflite, tflite.ops[0], target)
    chosen = kernel_used(graph, graph.ops[0], target)
    assert chosen == expected, (chosen, expected)
    if chosen != simd.PORTABLE:
        assert EPILOGUE[_isa(target)] in generate_kernels(graph, target)[0].source
    assert_verified(verify_graph(graph, target, runs=2, seed=index, oracle="numpy"))


@pytest.mark.parametrize("target_name", QUICK_TARGETS)
@pytest.mark.parametrize("index,style", QUICK, ids=[f"{MATRIX[i].id()}-{s}" for i, s in QUICK])
def test_onnx_requant_layer(target_name, index, style):
    check_onnx_layer(target_or_skip(target_name), index, style)


@pytest.mark.slow
@pytest.mark.parametrize("target_name", QUICK_TARGETS + SLOW_TARGETS)
@pytest.mark.parametrize("index,style", FULL, ids=[f"{MATRIX[i].id()}-{s}" for i, s in FULL])
def test_onnx_requant_layer_full(target_name, index, style):
    check_onnx_layer(target_or_skip(target_name), index, style)


@pytest.mark.slow
@pytest.mark.parametrize("target_name", SLOW_TARGETS)
@pytest.mark.parametrize("index,style", QUICK, ids=[f"{MATRIX[i].id()}-{s}" for i, s in QUICK])
def test_onnx_requant_layer_m7_m33(target_name, index, style):
    check_onnx_layer(target_or_skip(target_name), index, style)


def test_most_matrix_layers_have_a_variant():
    """The matrix is not vacuous: with requant "onnx" nearly every layer leaves the portable kernel on M4, M55 and x86
    (generation only)."""
    from dwscodegen.targets import load_target
    for name in ("cortex-m4", "cortex-m55", "x86_64-v4"):
        target = load_target(name)
        portable = [case.id() for i, case in enumerate(MATRIX)
                    if kernel_used(g := onnx_requant_graph(case, "extreme", seed=i), g.ops[0], target) == simd.PORTABLE]
        assert len(portable) <= 2, (name, portable)


@pytest.mark.parametrize("target_name", ["cortex-m4", "cortex-m55", "x86_64-v3", "x86_64-v4"])
def test_qdq_model_end_to_end(target_name):
    pytest.importorskip("onnxruntime")
    target = target_or_skip(target_name)
    graph, convs = qdq_model_convs()
    portable = [op.name for op in convs if kernel_used(graph, op, target) == simd.PORTABLE]
    assert portable == [], portable     # x86 too: the global pool's 256-tap depthwise by the window variant
    assert_verified(verify_graph(graph, target, runs=2, seed=3))                  # onnxruntime, within 1 LSB
    assert_verified(verify_graph(graph, target, runs=2, seed=3, oracle="numpy"))  # bit-exact


def _without_fpu(target):
    """The DSP core built without its FPU (a Cortex-M33 configured so): the DSP variants' software epilogue."""
    flags = tuple("-mfloat-abi=soft" if f.startswith("-mfloat-abi") else f for f in target.cflags
                  if not f.startswith("-mfpu"))
    return dataclasses.replace(target, name=target.name + "-nofpu", cflags=flags, features=target.features - {"fpu"})


@pytest.mark.parametrize("index,style", [(1, "ties"), (10, "big"), (9, "extreme")])
def test_dsp_variant_without_fpu(index, style):
    check_onnx_layer(_without_fpu(target_or_skip("cortex-m33")), index, style)


W8_CASES = [("Conv2D", (1, 6, 5, 24), (1, 1), "pointwise_conv2d_s8_dsp_w8_4x2"),
            ("Conv2D", (1, 7, 6, 3), (3, 3), "conv2d_s8_dsp_im2col_w8_2x2"),
            ("DepthwiseConv2D", (1, 7, 6, 16), (3, 3), "depthwise_conv2d_s8_dsp_w8_4c")]


@pytest.mark.qemu
@pytest.mark.parametrize("style", ["big", "extreme"])
@pytest.mark.parametrize("kind, shape, kernel, variant", W8_CASES, ids=[c[3] for c in W8_CASES])
def test_onnx_requant_on_int8_weight_variants(kind, shape, kernel, variant, style):
    """The int8-weight DSP variants a flash budget picks share the DSP epilogue, ONNX's included."""
    target = target_or_skip("cortex-m4")
    graph = onnx_requant_graph(ConvCase(kind, shape, kernel, out_channels=16 if kind == "Conv2D" else 0),
                               style, seed=1)
    assert_verified(verify_graph(graph, target, runs=1, seed=2, oracle="numpy", schedules={0: {"kernel": variant}}))
