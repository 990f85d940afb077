"""Register-tiled C variants (feature `thumb2`, chosen on Cortex-M3) against the NumPy reference under QEMU:
every conv kind, odd channel counts (tile remainders), strides, padding, dilation, the requantization plans
(round, noround, generic) with and without a saturating activation, batch > 1, and seeded random layers."""
from __future__ import annotations

import numpy as np
import pytest

from dwscodegen.backends.templates import generate_kernels, kernel_choices, kernel_used
from dwscodegen.backends.templates.simd import tiled
from dwscodegen.ir import Quant
from dwscodegen.verify import verify_graph

from .support.layers import ConvCase, assert_verified, conv_graph, random_conv_case
from .support.targets import target_or_skip

DW, CV = "DepthwiseConv2D", "Conv2D"
PW_2X4, IM2COL_2X4, DEPTHWISE = "pointwise_conv2d_s8_tiled_2x4", "conv2d_s8_tiled_im2col_2x4", tiled.DEPTHWISE
# (case, variant the default picks; None: the portable kernel)
QUICK = [
    (ConvCase(CV, (1, 5, 7, 16), (1, 1), out_channels=24, activation="relu"), PW_2X4),
    (ConvCase(CV, (1, 3, 5, 13), (1, 1), out_channels=10), PW_2X4),                 # 15 pixels, 10 % 4 channels
    (ConvCase(CV, (1, 7, 5, 8), (1, 1), out_channels=9, stride=(2, 2), padding="VALID", activation="relu6"), PW_2X4),
    (ConvCase(CV, (1, 13, 8, 1), (5, 3), out_channels=12, stride=(2, 2), activation="relu"), IM2COL_2X4),
    (ConvCase(CV, (1, 7, 7, 6), (3, 3), out_channels=7, dilation=(2, 2), per_channel=False), IM2COL_2X4),
    (ConvCase(DW, (1, 7, 5, 16), (3, 3), activation="relu", in_zp=-128, out_zp=-128), DEPTHWISE),
    (ConvCase(DW, (1, 9, 7, 13), (3, 3), stride=(2, 2), activation="clamp"), DEPTHWISE),
    (ConvCase(DW, (1, 8, 6, 5), (5, 5), padding=(2, 1, 0, 3), bias=False), DEPTHWISE),
    (ConvCase(DW, (1, 5, 4, 6), (3, 3), multiplier=2), None),
]


def _check(graph, target, variant):
    assert kernel_used(graph, graph.ops[0], target) == (variant or "portable")
    report = verify_graph(graph, target, runs=2, seed=1, oracle="numpy")
    assert_verified(report)


@pytest.mark.qemu
@pytest.mark.parametrize("case,variant", QUICK, ids=[c.id() for c, _ in QUICK])
def test_tiled_variant_bit_exact(case, variant):
    _check(conv_graph(case, "int8", seed=3), target_or_skip("cortex-m3"), variant)


def _with_real_multiplier(case: ConvCase, real: float, seed: int = 4):
    """The output scale set so that the middle channel's real requantization multiplier is `real`."""
    graph = conv_graph(case, "int8", seed=seed)
    x, w, y = graph.tensor("x"), graph.tensor("w"), graph.tensor("y")
    mid = float(np.sort(np.float32(w.quant.scale))[len(w.quant.scale) // 2])
    y.quant = Quant(np.array([float(np.float32(float(np.float32(x.quant.scale[0])) * mid / real))]), y.quant.zero_point)
    return graph


REQUANT = [   # (case, real multiplier, the plan tiled.select must take)
    (ConvCase(CV, (1, 4, 5, 12), (1, 1), out_channels=6), 0.02, "round"),
    (ConvCase(CV, (1, 4, 5, 12), (1, 1), out_channels=6, per_channel=False), 3.0, "noround"),
    (ConvCase(DW, (1, 5, 5, 12), (3, 3), per_channel=False, activation="relu", out_zp=-128), 5.0, "noround"),
    (ConvCase(CV, (1, 4, 5, 12), (1, 1), out_channels=16), 1.0, "generic"),
    (ConvCase(DW, (1, 5, 5, 20), (3, 3), activation="relu6"), 1.0, "generic"),
]


@pytest.mark.qemu
@pytest.mark.parametrize("case,real,mode", REQUANT, ids=[f"{c.id()}-x{r:g}" for c, r, _ in REQUANT])
def test_requantization_plans_bit_exact(case, real, mode):
    target = target_or_skip("cortex-m3")
    graph = _with_real_multiplier(case, real)
    source = generate_kernels(graph, target)[0].source
    assert f'requantization "{mode}"' in source
    report = verify_graph(graph, target, runs=2, seed=2, oracle="numpy")
    assert report.ok, [c.summary() for c in report.comparisons]


@pytest.mark.qemu
def test_batch_of_three_bit_exact():
    case = ConvCase(CV, (3, 5, 4, 8), (1, 1), out_channels=6, activation="relu")
    _check(conv_graph(case, "int8", seed=5), target_or_skip("cortex-m3"), PW_2X4)


def test_tuner_sees_every_tile():
    from dwscodegen.targets import load_target
    graph = conv_graph(QUICK[0][0], "int8")
    assert kernel_choices(graph, graph.ops[0], load_target("cortex-m3")) == [
        "portable", "pointwise_conv2d_s8_tiled_2x4", "pointwise_conv2d_s8_tiled_2x2", "pointwise_conv2d_s8_tiled_1x4",
        "pointwise_conv2d_s8_tiled_4x2", "pointwise_conv2d_s8_tiled_1x8",
        "pointwise_conv2d_s8_tiled_2x4_channels"]                                  # the registry's, in its order


@pytest.mark.qemu
@pytest.mark.slow
@pytest.mark.parametrize("seed", range(24))
def test_random_layers_bit_exact(seed):
    target = target_or_skip("cortex-m3")
    graph = conv_graph(random_conv_case(np.random.default_rng(1000 + seed), batches=(1, 2)), "int8", seed=seed)
    report = verify_graph(graph, target, runs=2, seed=seed, oracle="numpy")
    assert_verified(report)
