"""Issue 16's depthwise variants and the constant-channel fold (dwscodegen/backends/templates/simd/tiles.py,
planar.py, common.fold_constants).

- Constant (dead) output channels as trained models have them (all-zero weights, converter-made scales giving
  right shifts of 24 to 31, biases near 2^30; a multiplier that rounds to 0): the fold keeps the layer on its
  variant and the requantization its live channels decide; the constants are TFLite's (checked against the
  TFLite interpreter's reference kernels); bit-exact under QEMU on M4 and M55 (M7, M33 with slow tests), in
  depthwise, pointwise and im2col variants.
- A seeded random matrix of depthwise layers over the goal's shapes (multiplier, kernel, stride, dilation,
  padding, channels): the default is a SIMD variant, and every variant that applies is bit-exact; M4 and M55 by
  default, M4, M7, M33 and M55 with slow tests.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from dwscodegen import quant
from dwscodegen.backends.templates import generate_kernels, kernel_choices, kernel_used, simd
from dwscodegen.backends.templates.simd import common, mve
from dwscodegen.verify import verify_graph
from .support.layers import ConvCase, assert_verified, conv_graph, with_constant_channels
from .support.simd_checks import check_variant, expected_template
from .support.targets import target_or_skip

DW, CV = "DepthwiseConv2D", "Conv2D"


DEAD_CASES = [
    (ConvCase(DW, (1, 7, 6, 16), (3, 3), activation="relu"), "depthwise_conv2d_s8_dsp_4c", "depthwise_conv2d_s8_mve_8c"),
    (ConvCase(DW, (1, 8, 7, 6), (5, 5), multiplier=2, stride=(2, 2)), "depthwise_conv2d_s8_dsp_padded_4c",
     "depthwise_conv2d_s8_mve_padded_8c"),
    (ConvCase(DW, (1, 3, 20, 10), (1, 9), activation="relu6"), "depthwise_conv2d_s8_dsp_pairs_1c", "depthwise_conv2d_s8_mve_8c"),
    (ConvCase(CV, (1, 5, 6, 24), (1, 1), out_channels=20), "pointwise_conv2d_s8_dsp_4x2", "pointwise_conv2d_s8_mve_2x4"),
    (ConvCase(CV, (1, 7, 6, 3), (3, 3), out_channels=12, stride=(2, 2)), "conv2d_s8_dsp_im2col", "conv2d_s8_mve_im2col"),
]


def test_constant_channels_are_folded_not_whole_layer_fallbacks():
    """Without the fold, one dead channel pushes the layer to the generic requantization (DSP) or no variant
    (MVE); with it, the live channels decide, and the constants are what TFLite's arithmetic gives."""
    for case, _, _ in DEAD_CASES:
        graph, dead, zero_m = with_constant_channels(case)
        info = common.conv_info(graph, graph.ops[0])
        assert common.requant_plan(info, True, 32767).mode == "generic"
        assert mve.plan_layer_mve(info) is not None
        folded, plan = common.plan_layer(info, True, 32767)
        assert plan.mode == "round", case.id()
        assert set(np.flatnonzero(folded.constant)) == set(dead) | {zero_m}
        out = quant.multiply_by_quantized_multiplier(info.bias, info.multiplier, info.shift) + info.out_offset
        expected = np.clip(out, info.act_min, info.act_max)
        np.testing.assert_array_equal(plan.out_zp[folded.constant], expected[folded.constant])
        assert info.multiplier[zero_m] == 0 and np.any(info.shift[dead] <= -24)


def test_constant_channels_reference_matches_tflite():
    """The NumPy reference the kernels are checked against computes dead channels as TFLite's reference
    kernels do (shifts down to -31, biases near 2^30)."""
    pytest.importorskip("ai_edge_litert")
    from .support.tflite_builder import TensorSpec, build_single_op_model, run_reference
    from dwscodegen.reference.graph import run_graph
    for case, _, _ in DEAD_CASES[:4]:
        graph, _, _ = with_constant_channels(case)
        specs = []
        for name in ("x", "w", "b", "y"):
            t = graph.tensor(name)
            q = t.quant
            per = q is not None and q.per_channel
            specs.append(TensorSpec(t.name, t.shape, t.dtype, data=t.data,
                                    scale=None if q is None else [float(v) for v in q.scale] if per else float(q.scale[0]),
                                    zero_point=None if q is None else [int(v) for v in q.zero_point] if per else int(q.zero_point[0]),
                                    quantized_dimension=q.axis if per else 0))
        a = graph.ops[0].attrs
        options = dict(padding=case.padding, stride_h=a.stride[0], stride_w=a.stride[1], dilation_h=a.dilation[0],
                       dilation_w=a.dilation[1], fused_activation={"none": "NONE", "relu": "RELU", "relu6": "RELU6"}[case.activation])
        if case.kind == DW:
            options["depth_multiplier"] = case.multiplier
        model = build_single_op_model("DEPTHWISE_CONV_2D" if case.kind == DW else "CONV_2D", specs[:3], specs[3:], options)
        x = np.random.default_rng(3).integers(-128, 128, case.in_shape, dtype=np.int8)
        (expected,) = run_reference(model, [x])
        np.testing.assert_array_equal(run_graph(graph, {"x": x})["y"], expected)


@pytest.mark.qemu
@pytest.mark.parametrize("target_name", ["cortex-m4", "cortex-m55"])
@pytest.mark.parametrize("case,dsp,mve", DEAD_CASES, ids=[c[0].id() for c in DEAD_CASES])
def test_constant_channels_bit_exact(target_name, case, dsp, mve):
    target = target_or_skip(target_name)
    check_variant(with_constant_channels(case)[0], target, expected_template(target, dsp, mve), seed=11)


@pytest.mark.qemu
@pytest.mark.slow
@pytest.mark.parametrize("target_name", ["cortex-m7", "cortex-m33"])
@pytest.mark.parametrize("case,dsp,mve", DEAD_CASES, ids=[c[0].id() for c in DEAD_CASES])
def test_constant_channels_bit_exact_other_dsp_cores(target_name, case, dsp, mve):
    target = target_or_skip(target_name)
    check_variant(with_constant_channels(case)[0], target, expected_template(target, dsp, mve), seed=11)


# --- the random depthwise matrix (issue 16's shapes) --------------------------------------------------------

def _random_depthwise(n: int, seed: int) -> list[ConvCase]:
    """Seeded layers over multiplier 1, 2, 4 (and 3, 8), kernels 3x3 to 9x9, 1x9 and 9x1, stride 1-2,
    dilation 1-2, SAME, VALID and explicit padding, 8-96 output channels."""
    rng = np.random.default_rng(seed)
    kernels = [(3, 3), (5, 5), (7, 7), (9, 9), (1, 9), (9, 1), (3, 1), (1, 5)]
    cases = []
    while len(cases) < n:
        mult = int(rng.choice([1, 1, 2, 2, 4, 3, 8]))
        kh, kw = kernels[int(rng.integers(len(kernels)))]
        stride = tuple(int(v) for v in rng.integers(1, 3, 2))
        dilation = tuple(int(v) for v in rng.integers(1, 3, 2))
        oc = int(rng.integers(8, 97)) // mult * mult
        h, w = (int(v) for v in rng.integers(4, 22, 2))
        padding = ["SAME", "VALID", tuple(int(v) for v in rng.integers(0, 4, 4))][int(rng.integers(3))]
        pad = padding if isinstance(padding, tuple) else (0, 0, 0, 0)
        if padding != "SAME" and (h + pad[0] + pad[1] < (kh - 1) * dilation[0] + 1
                                  or w + pad[2] + pad[3] < (kw - 1) * dilation[1] + 1):
            continue                                       # no output
        if oc < 8:
            continue
        cases.append(ConvCase(DW, (1, h, w, oc // mult), (kh, kw), multiplier=mult, stride=stride, dilation=dilation,
                              padding=padding, activation=["none", "relu", "relu6", "clamp"][int(rng.integers(4))],
                              per_channel=bool(rng.integers(4)), in_zp=int(rng.integers(-128, 100)),
                              out_zp=int(rng.integers(-128, 100))))
    return cases


RANDOM_QUICK = _random_depthwise(6, seed=16)
# the variants of issue 16 (the older ones predate naming the variant in the banner)
NAMED_IN_BANNER = {"depthwise_conv2d_s8_dsp_padded_4c", "depthwise_conv2d_s8_dsp_pairs_1c",
                   "depthwise_conv2d_s8_mve_padded_8c"}
RANDOM_SLOW = _random_depthwise(24, seed=17)


def _every_variant(target_name: str, case: ConvCase):
    """The preferred kernel is a SIMD variant; then every variant that applies, bit-exact."""
    target = target_or_skip(target_name)
    graph = conv_graph(case, "int8", seed=5)
    assert kernel_used(graph, graph.ops[0], target) != simd.PORTABLE, case.id()
    for name in kernel_choices(graph, graph.ops[0], target)[1:]:
        source = "\n".join(k.source for k in generate_kernels(graph, target, {0: {"kernel": name}}))
        if name in NAMED_IN_BANNER:
            assert f"variant\n * {name}:" in source, name   # the kernel's banner names its variant
        report = verify_graph(graph, target, runs=1, seed=2, oracle="numpy", schedules={0: {"kernel": name}},
                              footprint=False)
        assert report.ok, (name, [c.summary() for c in report.comparisons])


@pytest.mark.qemu
@pytest.mark.parametrize("target_name", ["cortex-m4", "cortex-m55"])
@pytest.mark.parametrize("case", RANDOM_QUICK, ids=ConvCase.id)
def test_random_depthwise_every_variant(target_name, case):
    _every_variant(target_name, case)


@pytest.mark.qemu
@pytest.mark.slow
@pytest.mark.parametrize("target_name", ["cortex-m4", "cortex-m7", "cortex-m33", "cortex-m55"])
@pytest.mark.parametrize("case", RANDOM_SLOW, ids=ConvCase.id)
def test_random_depthwise_every_variant_more(target_name, case):
    _every_variant(target_name, case)


@pytest.mark.parametrize("target_name", ["x86_64-v3", "x86_64-v4"])
@pytest.mark.parametrize("case", [c[0] for c in DEAD_CASES if c[0].multiplier == 1], ids=lambda c: c.id())
def test_constant_channels_keep_x86_variants(target_name, case):
    """On x86 too, the live channels decide the requantization: a layer with dead channels (batch 2 here) stays
    on its AVX2 / AVX-512 variant, bit-exact against the NumPy reference."""
    target = target_or_skip(target_name)
    graph, dead, _ = with_constant_channels(dataclasses.replace(case, in_shape=(2,) + case.in_shape[1:]))
    graph.tensor("b").data[dead[0]] = 1 << 30   # a bias whose doubled bound leaves int32 without the fold
    assert kernel_used(graph, graph.ops[0], target) != simd.PORTABLE
    assert_verified(verify_graph(graph, target, runs=2, seed=11, oracle="numpy"))
