"""The DSP variants with int8 weights (simd/dsp_w8.py, templates/kernels/*_dsp_w8_*): bit-exact under QEMU against
the NumPy reference on Cortex-M4 over a layer matrix (a quick subset; the rest, and M7 / M33, with slow tests),
trained models' dead channels, mixed and left shifts included; each generated kernel's banner names its variant;
and they store half the constants of the int16-weight variants they stand in for."""
from __future__ import annotations

import numpy as np
import pytest

from dwscodegen.backends.templates import generate_kernels, kernel_constants, kernel_used
from dwscodegen.backends.templates.simd import registry
from dwscodegen.ir import Quant
from dwscodegen.targets import load_target
from dwscodegen.verify import verify_graph
from .support.layers import ConvCase, assert_verified, conv_graph
from .support.targets import target_or_skip

DW, CV = "DepthwiseConv2D", "Conv2D"
PW4, PW1 = "pointwise_conv2d_s8_dsp_w8_4x2", "pointwise_conv2d_s8_dsp_w8_1x2"
IM2, IM1 = "conv2d_s8_dsp_im2col_w8_2x2", "conv2d_s8_dsp_im2col_w8_1x2"
DW4 = "depthwise_conv2d_s8_dsp_w8_4c"


def _dead_channels(graph, kind: str, seed: int = 9):
    """Some output channels as trained models have them: all-zero weights, a weight scale that gives a right
    shift of 24..31, a bias near +-2^30."""
    rng = np.random.default_rng(seed)
    x, w, y, b = graph.tensor("x"), graph.tensor("w"), graph.tensor("y"), graph.tensor("b")
    oc = y.shape[3]
    ratio = float(np.float32(x.quant.scale[0])) / float(np.float32(y.quant.scale[0]))
    scales = np.array(w.quant.scale, np.float64)
    for i, c in enumerate(rng.choice(oc, max(2, oc // 5), replace=False)):
        scales[c] = float(np.float32(0.7 * 2.0 ** (-24 - i % 8) / ratio))
        if kind == DW:
            w.data[..., c] = 0
        else:
            w.data[c] = 0
        b.data[c] = (1 if i % 2 else -1) * ((1 << 30) - int(rng.integers(0, 1 << 20)))
    w.quant = Quant(scales, w.quant.zero_point, w.quant.axis)
    return graph


def _real_multiplier(graph, real: float):
    """The output scale set so that the middle channel's real requantization multiplier is `real` (per-channel
    scales spread around it: some channels shift right, some left)."""
    x, w, y = graph.tensor("x"), graph.tensor("w"), graph.tensor("y")
    mid = float(np.sort(np.float32(w.quant.scale))[len(w.quant.scale) // 2])
    y.quant = Quant(np.array([float(np.float32(float(np.float32(x.quant.scale[0])) * mid / real))]), y.quant.zero_point)
    return graph


def _graph(case: ConvCase, twist: str | None, seed: int = 3):
    graph = conv_graph(case, "int8", seed=seed)
    if twist == "dead":
        return _dead_channels(graph, case.kind)
    if twist is not None:
        return _real_multiplier(graph, float(twist))
    return graph


# (case, variant, None | "dead" | a real multiplier)
QUICK = [
    (ConvCase(CV, (1, 5, 7, 16), (1, 1), out_channels=24, activation="relu"), PW4, None),
    (ConvCase(CV, (1, 4, 3, 37), (1, 1), out_channels=7, activation="relu6", per_channel=False, bias=False), PW1, None),
    (ConvCase(CV, (1, 5, 6, 24), (1, 1), out_channels=20), PW4, "dead"),
    (ConvCase(CV, (1, 13, 8, 1), (5, 3), out_channels=12, stride=(2, 2), activation="relu"), IM2, None),
    (ConvCase(DW, (1, 9, 7, 13), (3, 3), stride=(2, 2), activation="clamp"), DW4, None),
    (ConvCase(DW, (1, 7, 6, 16), (3, 3), activation="relu"), DW4, "dead"),
    (ConvCase(DW, (1, 5, 5, 20), (3, 3)), DW4, "1.0"),
]
SLOW = [
    (ConvCase(CV, (1, 4, 5, 12), (1, 1), out_channels=16), PW4, "1.0"),
    (ConvCase(CV, (1, 4, 5, 12), (1, 1), out_channels=6, per_channel=False), PW1, "3.0"),
    (ConvCase(CV, (1, 3, 3, 200), (1, 1), out_channels=19, activation="relu"), PW4, None),
    (ConvCase(CV, (1, 7, 5, 8), (1, 1), out_channels=9, stride=(2, 2), padding="VALID"), PW4, None),
    (ConvCase(CV, (1, 2, 9, 4), (1, 1), out_channels=33, in_zp=-128, out_zp=-128, activation="relu"), PW1, None),
    (ConvCase(CV, (1, 2, 2, 1100), (1, 1), out_channels=5), PW1, None),
    (ConvCase(CV, (1, 6, 5, 3), (3, 3), out_channels=5), IM1, None),
    (ConvCase(CV, (1, 7, 6, 3), (3, 3), out_channels=12, stride=(2, 2)), IM2, "dead"),
    (ConvCase(CV, (1, 9, 9, 5), (3, 3), out_channels=6, dilation=(2, 2)), IM2, None),
    (ConvCase(CV, (1, 5, 4, 3), (3, 3), out_channels=9), IM2, "1.0"),
    (ConvCase(CV, (1, 12, 7, 12), (1, 1), out_channels=31, padding=(2, 2, 0, 0), activation="clamp", per_channel=False,
              in_zp=45, out_zp=65), IM2, None),
    (ConvCase(CV, (1, 3, 2, 200), (3, 3), out_channels=3), IM1, None),
    (ConvCase(DW, (1, 6, 6, 3), (3, 3), padding="VALID", per_channel=False), DW4, None),
    (ConvCase(DW, (1, 8, 6, 21), (3, 3), padding=(1, 0, 0, 1), bias=False), DW4, None),
    (ConvCase(DW, (1, 25, 5, 64), (3, 3), in_zp=-128, out_zp=-128, activation="relu"), DW4, None),
    (ConvCase(DW, (1, 11, 9, 24), (5, 5), activation="relu6"), DW4, None),
    (ConvCase(DW, (1, 9, 9, 10), (3, 3), dilation=(2, 2)), DW4, None),
    (ConvCase(DW, (1, 5, 5, 12), (3, 3), per_channel=False), DW4, "5.0"),
]


def _ids(cases):
    return [f"{c.id()}-{v.removeprefix('pointwise_conv2d_s8_dsp_')}-{t}" for c, v, t in cases]


def _check(target_name: str, case: ConvCase, variant: str, twist: str | None):
    target = target_or_skip(target_name)
    graph = _graph(case, twist)
    assert kernel_used(graph, graph.ops[0], target, variant) == variant
    schedules = {0: {"kernel": variant}}
    source = generate_kernels(graph, target, schedules)[0].source
    banner = source[:source.index("*/")]
    assert f"kernel {variant}" in banner and "DSP variant" in banner and "int8 weights" in banner
    report = verify_graph(graph, target, runs=2, seed=5, oracle="numpy", schedules=schedules, footprint=False)
    assert_verified(report)


@pytest.mark.qemu
@pytest.mark.parametrize("case,variant,twist", QUICK, ids=_ids(QUICK))
def test_int8_weight_variant_bit_exact(case, variant, twist):
    _check("cortex-m4", case, variant, twist)


@pytest.mark.qemu
@pytest.mark.slow
@pytest.mark.parametrize("case,variant,twist", SLOW, ids=_ids(SLOW))
def test_int8_weight_variant_bit_exact_more_shapes(case, variant, twist):
    _check("cortex-m4", case, variant, twist)


@pytest.mark.qemu
@pytest.mark.slow
@pytest.mark.parametrize("target_name", ["cortex-m7", "cortex-m33"])
@pytest.mark.parametrize("case,variant,twist", QUICK + SLOW, ids=_ids(QUICK + SLOW))
def test_int8_weight_variant_bit_exact_other_dsp_cores(target_name, case, variant, twist):
    _check(target_name, case, variant, twist)


@pytest.mark.parametrize("case,int16,w8", [
    (ConvCase(CV, (1, 4, 4, 64), (1, 1), out_channels=48), "pointwise_conv2d_s8_dsp_4x2", PW4),
    (ConvCase(CV, (1, 8, 8, 3), (3, 3), out_channels=16, stride=(2, 2)), "conv2d_s8_dsp_im2col_2x2", IM2),
    (ConvCase(DW, (1, 6, 6, 32), (3, 3)), "depthwise_conv2d_s8_dsp_4c", DW4)])
def test_int8_weights_halve_the_weight_tables(case, int16, w8):
    """The int8 variant's constants against the int16 one's: the weights take half (the per-channel records a
    word more at most)."""
    target = load_target("cortex-m4")
    graph = conv_graph(case, "int8", seed=1)
    op = graph.ops[0]
    assert registry.get(w8).weights == "int8" and registry.get(int16).weights == "int16"
    weights = int(np.prod(graph.tensor("w").shape))
    wide, narrow = kernel_constants(graph, op, target, int16), kernel_constants(graph, op, target, w8)
    records = 4 * graph.tensor("y").shape[3]
    assert wide - narrow >= weights - records, (wide, narrow, weights)
    assert narrow < wide


def test_int8_weight_variants_are_deterministic_and_not_the_default():
    """Identical input, identical C; the default kernel stays the int16-weight one (the speed choice)."""
    target = load_target("cortex-m4")
    graph = conv_graph(QUICK[0][0], "int8", seed=2)
    schedules = {0: {"kernel": PW4}}
    assert generate_kernels(graph, target, schedules)[0].source == generate_kernels(graph, target, schedules)[0].source
    assert kernel_used(graph, graph.ops[0], target) == "pointwise_conv2d_s8_dsp_4x2"
