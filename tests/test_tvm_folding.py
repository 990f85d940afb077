"""The tvm road takes the layers the templates road's SIMD variants take, with the same requantization plan
(backends/tvm/simd.PLANS): dead output channels folded to constants (templates/simd/common.fold_constants, as
trained models have them: all-zero weights, converter-made scales, biases near 2^30) and, on DSP, the "mixed"
form for layers whose channels mix right shifts and none. Without either, such a layer fell back to the
generic requantization (DSP) or the portable TVM schedule (MVE). Bit-exact under QEMU against the NumPy
reference (itself bit-exact with TFLite, tests/test_simd_depthwise.py) on M4 and M55; M3, M7, M33 in the slow
matrix."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("tvm")

from dwscodegen.backends.templates import kernel_used  # noqa: E402
from dwscodegen.backends.templates.simd import common  # noqa: E402
from dwscodegen.backends.tvm import generate_kernels  # noqa: E402
from dwscodegen.backends.tvm import simd as tvm_simd  # noqa: E402
from dwscodegen.ir import Quant  # noqa: E402
from dwscodegen.verify import verify_graph  # noqa: E402
from .support.layers import ConvCase, assert_verified, conv_graph, with_constant_channels  # noqa: E402
from .support.targets import target_or_skip  # noqa: E402

DW, CV = "DepthwiseConv2D", "Conv2D"
ISA = {"cortex-m3": "THUMB2", "cortex-m4": "DSP", "cortex-m7": "DSP", "cortex-m33": "DSP", "cortex-m55": "MVE"}
DEAD = [
    ConvCase(DW, (1, 7, 6, 16), (3, 3), activation="relu"),
    ConvCase(DW, (1, 9, 8, 12), (3, 3), stride=(2, 2), in_zp=-128, out_zp=-128),
    ConvCase(DW, (1, 3, 20, 10), (1, 9), activation="relu6"),
    ConvCase(CV, (1, 5, 6, 24), (1, 1), out_channels=20),
    ConvCase(CV, (1, 1, 1, 40), (1, 1), out_channels=10, activation="relu"),          # a squeeze-excite layer
    ConvCase(CV, (1, 7, 6, 3), (3, 3), out_channels=12, stride=(2, 2)),
]


def _mixed_shifts(case: ConvCase, seed: int = 4):
    """The case's graph with per-channel scales alternating a real multiplier above 0.5 (no right shift) and
    below (a right shift), as a trained layer's channels spread around the output scale."""
    graph = conv_graph(case, "int8", seed=seed)
    x, w, y = graph.tensor("x"), graph.tensor("w"), graph.tensor("y")
    ratio = float(np.float32(x.quant.scale[0])) / float(np.float32(y.quant.scale[0]))
    reals = np.where(np.arange(len(w.quant.scale)) % 2 == 0, 0.9, 0.05)
    w.quant = Quant(np.float32(reals / ratio).astype(np.float64), w.quant.zero_point, w.quant.axis)
    return graph


MIXED = [ConvCase(CV, (1, 6, 5, 16), (1, 1), out_channels=12, activation="relu"),
         ConvCase(DW, (1, 8, 7, 12), (3, 3), activation="relu6"),
         ConvCase(CV, (1, 7, 7, 3), (3, 3), out_channels=8, stride=(2, 2))]


def _check(graph, target_name: str, seed: int):
    """Tensorized with the plan the templates road's variant takes, and bit-exact."""
    target = target_or_skip(target_name)
    op = graph.ops[0]
    found = tvm_simd.applies(graph, op, target)
    assert found is not None, f"{op.where()} not tensorized on {target_name}"
    isa, info, plan = found
    source = generate_kernels(graph, target)[0].source
    assert f"tensorized for {ISA[target_name]}" in source
    assert f'requantization "{plan.mode}"' in source
    assert kernel_used(graph, op, target) != "portable"      # the templates road takes it too
    report = verify_graph(graph, target, backend="tvm", runs=2, seed=seed, oracle="numpy")
    assert_verified(report)
    return info, plan


def _check_dead(case: ConvCase, target_name: str):
    graph, dead, zero_m = with_constant_channels(case)
    info, plan = _check(graph, target_name, seed=11)
    if target_name != "cortex-m3":          # the register tiles keep dead channels (templates/simd/tiled.py)
        assert set(np.flatnonzero(info.constant)) == set(dead) | {zero_m}
        assert plan.mode != "generic"


@pytest.mark.qemu
@pytest.mark.parametrize("target_name", ["cortex-m4", "cortex-m55"])
@pytest.mark.parametrize("case", DEAD, ids=ConvCase.id)
def test_dead_channels_folded_and_bit_exact(case, target_name):
    _check_dead(case, target_name)


@pytest.mark.qemu
@pytest.mark.parametrize("case", MIXED, ids=ConvCase.id)
def test_mixed_requantization_on_dsp(case):
    graph = _mixed_shifts(case)
    e = np.maximum(-common.conv_info(graph, graph.ops[0]).shift, 0)
    assert np.any(e == 0) and np.any(e > 0)
    _, plan = _check(graph, "cortex-m4", seed=12)
    assert plan.mode == "mixed"


@pytest.mark.qemu
@pytest.mark.slow
@pytest.mark.parametrize("target_name", ["cortex-m3", "cortex-m7", "cortex-m33", "cortex-m55"])
@pytest.mark.parametrize("case", MIXED, ids=ConvCase.id)
def test_mixed_requantization_every_core(case, target_name):
    _check(_mixed_shifts(case), target_name, seed=12)


@pytest.mark.qemu
@pytest.mark.slow
@pytest.mark.parametrize("target_name", ["cortex-m3", "cortex-m7", "cortex-m33"])
@pytest.mark.parametrize("case", DEAD, ids=ConvCase.id)
def test_dead_channels_every_core(case, target_name):
    _check_dead(case, target_name)
