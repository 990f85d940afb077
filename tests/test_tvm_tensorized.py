"""The tvm road's tensorized kernels (backends/tvm/simd*.py, templates/micro/*.c.j2) under QEMU, against the NumPy
reference: DSP on Cortex-M4, MVE on Cortex-M55 (the Thumb-2 register tiles on Cortex-M3), over the layer shapes
of the templates road's SIMD tests: tile and channel remainders, strides, padding, dilation, the requantization
plans, every knob value, seeded random layers (slow); each case asserts whether its kernel was tensorized.
The KWS model: bit-exact against the TFLite interpreter, every conv layer below CMSIS-NN's instruction count,
and the whole model within 1.1x of the templates road's (slow)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tvm")

from dwscodegen.backends.templates.simd import common  # noqa: E402
from dwscodegen.backends.tvm import generate_kernels  # noqa: E402
from dwscodegen.backends.tvm import simd as tvm_simd  # noqa: E402
from dwscodegen.backends.tvm.knobs import SPACE  # noqa: E402
from dwscodegen.errors import DwsError  # noqa: E402
from dwscodegen.importers import load_model  # noqa: E402
from dwscodegen.ir import Quant  # noqa: E402
from dwscodegen.targets import load_target  # noqa: E402
from dwscodegen.verify import verify_graph  # noqa: E402
from .support.layers import ConvCase, MATRIX, assert_verified, conv_graph, random_conv_case  # noqa: E402
from .support.targets import target_or_skip  # noqa: E402

DW, CV = "DepthwiseConv2D", "Conv2D"
ISA = {"cortex-m3": "THUMB2", "cortex-m4": "DSP", "cortex-m7": "DSP", "cortex-m33": "DSP", "cortex-m55": "MVE"}
CORES = list(ISA)      # the slow matrices run on every Cortex-M core
# (case, tensorized); not tensorized: the portable TVM schedule (a depth multiplier)
QUICK = [
    (ConvCase(CV, (1, 5, 7, 16), (1, 1), out_channels=24, activation="relu"), True),
    (ConvCase(CV, (1, 3, 5, 13), (1, 1), out_channels=10), True),
    (ConvCase(CV, (1, 4, 3, 37), (1, 1), out_channels=7, activation="relu6", per_channel=False, bias=False), True),
    (ConvCase(CV, (1, 7, 5, 8), (1, 1), out_channels=9, stride=(2, 2), padding="VALID"), True),
    (ConvCase(CV, (1, 9, 7, 6), (1, 1), out_channels=5, stride=(2, 2)), True),
    (ConvCase(DW, (1, 7, 5, 16), (3, 3), activation="relu"), True),
    (ConvCase(DW, (1, 9, 7, 13), (3, 3), stride=(2, 2), activation="clamp"), True),
    (ConvCase(DW, (1, 6, 6, 3), (3, 3), padding="VALID", per_channel=False), True),
    (ConvCase(DW, (1, 8, 6, 21), (3, 3), padding=(1, 0, 0, 1), bias=False), True),
    (ConvCase(DW, (1, 5, 4, 6), (3, 3), multiplier=2), False),
    (ConvCase(CV, (1, 13, 8, 1), (5, 3), out_channels=12, stride=(2, 2), activation="relu"), True),
    (ConvCase(CV, (1, 6, 5, 3), (3, 3), out_channels=5), True),
    (ConvCase(CV, (1, 7, 7, 6), (3, 3), out_channels=8, stride=(2, 2), padding="VALID", activation="relu6"), True),
]
SLOW = [
    (ConvCase(CV, (1, 1, 1, 64), (1, 1), out_channels=3), True),
    (ConvCase(CV, (1, 3, 3, 200), (1, 1), out_channels=19, activation="relu"), True),
    (ConvCase(CV, (1, 2, 9, 4), (1, 1), out_channels=33, in_zp=-128, out_zp=-128, activation="relu"), True),
    (ConvCase(DW, (1, 25, 5, 64), (3, 3), in_zp=-128, out_zp=-128, activation="relu"), True),
    (ConvCase(DW, (1, 11, 9, 24), (5, 5), activation="relu6"), True),
    (ConvCase(DW, (1, 9, 9, 10), (3, 3), dilation=(2, 2)), True),
    (ConvCase(DW, (1, 2, 2, 17), (3, 3), stride=(2, 2)), True),
    (ConvCase(DW, (1, 10, 3, 8), (3, 1), stride=(2, 1), padding=(2, 2, 0, 0)), True),
    (ConvCase(DW, (1, 12, 12, 4), (7, 7)), False),              # 49 taps: more than the unrolled windows take
    (ConvCase(CV, (1, 49, 10, 1), (10, 4), out_channels=64, stride=(2, 2), activation="relu", in_zp=83, out_zp=-128),
     True),
    (ConvCase(CV, (1, 9, 9, 5), (3, 3), out_channels=6, dilation=(2, 2)), True),
    (ConvCase(CV, (1, 8, 8, 16), (3, 3), out_channels=16, stride=(2, 2)), True),
    (ConvCase(CV, (1, 5, 6, 2), (2, 2), out_channels=3, padding=(0, 1, 1, 0), per_channel=False), True),
    (ConvCase(CV, (1, 4, 4, 3), (1, 1), out_channels=4, padding=(1, 1, 1, 1)), True),
    (ConvCase(CV, (1, 12, 7, 12), (1, 1), out_channels=31, padding=(2, 2, 0, 0), activation="clamp", per_channel=False,
              in_zp=45, out_zp=65), True),
    (ConvCase(DW, (1, 1, 4, 64), (4, 4), dilation=(2, 1), activation="relu", bias=False), False),   # no tap inside
    (ConvCase(CV, (1, 2, 2, 1100), (1, 1), out_channels=5), True),
    (ConvCase(CV, (2, 5, 4, 8), (1, 1), out_channels=6, activation="relu"), True),                  # a batch of 2
]


def _check(graph, target, tensorized: bool, schedules=None, seed: int = 0):
    source = generate_kernels(graph, target, schedules)[0].source
    assert (f"tensorized for {ISA[target.name]}" in source) == tensorized, source[:400]
    report = verify_graph(graph, target, backend="tvm", runs=2, seed=seed, oracle="numpy", schedules=schedules)
    assert_verified(report)
    return report


@pytest.mark.qemu
@pytest.mark.parametrize("target_name", ["cortex-m4", "cortex-m55"])
@pytest.mark.parametrize("case,tensorized", QUICK, ids=[c.id() for c, _ in QUICK])
def test_tensorized_bit_exact(target_name, case, tensorized):
    _check(conv_graph(case, "int8", seed=3), target_or_skip(target_name), tensorized)


@pytest.mark.qemu
@pytest.mark.parametrize("case,tensorized", QUICK[::2], ids=[c.id() for c, _ in QUICK[::2]])
def test_thumb2_tiles_bit_exact(case, tensorized):
    _check(conv_graph(case, "int8", seed=3), target_or_skip("cortex-m3"), tensorized)


@pytest.mark.qemu
@pytest.mark.slow
@pytest.mark.parametrize("target_name", CORES)
@pytest.mark.parametrize("case,tensorized", SLOW + [(c, c.multiplier == 1) for c in MATRIX],
                         ids=[c.id() for c, _ in SLOW] + [f"matrix-{c.id()}" for c in MATRIX])
def test_tensorized_bit_exact_more_shapes(target_name, case, tensorized):
    _check(conv_graph(case, "int8", seed=4), target_or_skip(target_name), tensorized)


def _with_real_multiplier(case: ConvCase, real: float, seed: int = 4):
    """The output scale set so that the middle channel's real requantization multiplier is `real`."""
    graph = conv_graph(case, "int8", seed=seed)
    x, w, y = graph.tensor("x"), graph.tensor("w"), graph.tensor("y")
    mid = float(np.sort(np.float32(w.quant.scale))[len(w.quant.scale) // 2])
    y.quant = Quant(np.array([float(np.float32(float(np.float32(x.quant.scale[0])) * mid / real))]), y.quant.zero_point)
    return graph


REQUANT = [   # (case, real multiplier of the middle channel, DSP plan, MVE rounding)
    (ConvCase(CV, (1, 4, 5, 12), (1, 1), out_channels=6, per_channel=False), 0.75, "noround", "noround"),
    (ConvCase(DW, (1, 5, 5, 12), (3, 3), per_channel=False), 5.0, "noround", "noround"),
    (ConvCase(CV, (1, 4, 5, 12), (1, 1), out_channels=16), 1.0, "mixed", "mixed"),
    (ConvCase(DW, (1, 5, 5, 20), (3, 3)), 1.0, "mixed", "mixed"),
    (ConvCase(CV, (1, 5, 4, 3), (3, 3), out_channels=9), 1.0, "mixed", "mixed"),
    (ConvCase(CV, (1, 4, 5, 12), (1, 1), out_channels=6, per_channel=False), 600.0, "generic", "noround"),
]


@pytest.mark.qemu
@pytest.mark.parametrize("target_name", ["cortex-m4", "cortex-m55"])
@pytest.mark.parametrize("case,real,dsp_mode,mve_mode", REQUANT, ids=[f"{c.id()}-x{r:g}" for c, r, _, _ in REQUANT])
def test_requantization_plans_bit_exact(target_name, case, real, dsp_mode, mve_mode):
    """No right shift, left shifts, and layers mixing both per channel: every plan's micro-kernels and the
    plain TIR of the channel tails."""
    target = target_or_skip(target_name)
    graph = _with_real_multiplier(case, real)
    info = common.conv_info(graph, graph.ops[0])
    if "mve" in target.features:
        e = tvm_simd.PLANS["mve"](info)[1].rshift
        assert {"noround": np.all(e == 0), "mixed": np.any(e == 0) and np.any(e > 0)}[mve_mode]
    else:
        assert tvm_simd.PLANS["dsp"](info)[1].mode == dsp_mode
        assert f'requantization "{dsp_mode}"' in generate_kernels(graph, target)[0].source
    _check(graph, target, True, seed=5)


# Every value of every knob on a layer with tile remainders in both directions.
KNOB_LAYERS = {"pointwise": ConvCase(CV, (1, 5, 3, 16), (1, 1), out_channels=10, activation="relu"),
               "conv": ConvCase(CV, (1, 7, 5, 3), (3, 3), out_channels=6, stride=(2, 2)),
               "depthwise": ConvCase(DW, (1, 6, 5, 12), (3, 3), activation="relu6")}


def _knob_cases(isa: str):
    for base, case in KNOB_LAYERS.items():
        for name, values in SPACE[f"{base}_{isa}"].items():
            for value in values:
                yield pytest.param(base, case, {name: value}, id=f"{base}-{name}-{value}")


def _knobs_keep_results(target, knob_cases):
    for param in knob_cases:
        base, case, knob = param.values
        graph = conv_graph(case, "int8", seed=6)
        try:
            _check(graph, target, True, schedules={0: knob}, seed=7)
        except DwsError as exc:      # e.g. more accumulators than registers: refused, never wrong
            assert "accumulators" in str(exc), (param.id, exc)


@pytest.mark.qemu
@pytest.mark.parametrize("target_name,knob", [
    ("cortex-m4", {"pixels": 1, "channels": 4}), ("cortex-m4", {"order": "channels", "pixels": 2}),
    ("cortex-m55", {"pixels": 3}), ("cortex-m55", {"order": "channels"})], ids=str)
def test_knobs_keep_results(target_name, knob):
    _knobs_keep_results(target_or_skip(target_name), [pytest.param("pointwise", KNOB_LAYERS["pointwise"], knob)])


@pytest.mark.qemu
@pytest.mark.slow
@pytest.mark.parametrize("target_name,isa", [("cortex-m3", "thumb2"), ("cortex-m4", "dsp"), ("cortex-m55", "mve")])
def test_every_knob_value_keeps_results(target_name, isa):
    _knobs_keep_results(target_or_skip(target_name), _knob_cases(isa))


def test_tensorized_sources_are_deterministic_and_name_their_micro_kernels():
    target = load_target("cortex-m4")
    for case, _ in QUICK[:1] + QUICK[5:6] + QUICK[10:11]:
        first = generate_kernels(conv_graph(case, "int8", seed=8), target)[0].source
        assert first == generate_kernels(conv_graph(case, "int8", seed=8), target)[0].source
        assert "micro-kernels" in first and "DWS_MICRO_KERNEL void layer0_layer_requant_" in first
        assert "__smla" in first and "#include <arm_acle.h>" in first
    source = generate_kernels(conv_graph(QUICK[0][0], "int8"), load_target("cortex-m55"))[0].source
    assert "vmladavq_s8" in source and "#include <arm_mve.h>" in source
    # x86 and float32 layers keep the portable schedules.
    assert "tensorized" not in generate_kernels(conv_graph(QUICK[0][0], "int8"), load_target("x86_64"))[0].source
    assert "tensorized" not in generate_kernels(conv_graph(QUICK[0][0], "float32"), target)[0].source


def test_bad_knobs_are_user_errors():
    graph = conv_graph(QUICK[0][0], "int8")
    target = load_target("cortex-m4")
    with pytest.raises(DwsError, match="unknown schedule parameter 'oc_tile' for a pointwise_dsp kernel"):
        generate_kernels(graph, target, {0: {"oc_tile": 4}})
    with pytest.raises(DwsError, match="pixels x channels = 16 accumulators"):
        generate_kernels(graph, target, {0: {"pixels": 4, "channels": 4}})
    with pytest.raises(DwsError, match="order='rows' must be pixels | channels"):
        generate_kernels(graph, target, {0: {"order": "rows"}})


@pytest.mark.qemu
@pytest.mark.slow
@pytest.mark.parametrize("target_name", CORES + ["x86_64"])
@pytest.mark.parametrize("seed", range(16))
def test_random_layers_bit_exact(target_name, seed):
    target = target_or_skip(target_name)
    graph = conv_graph(random_conv_case(np.random.default_rng(2000 + seed), max_channels=40), "int8", seed=seed)
    report = verify_graph(graph, target, backend="tvm", runs=2, seed=seed, oracle="numpy")
    assert_verified(report)


# --- the KWS model ----------------------------------------------------------------------------------

KWS = Path(__file__).resolve().parent.parent.parent / "shared" / "models" / "kws_ref_model.tflite"
# CMSIS-NN's executed instructions per KWS layer kind (benchmarks/results/cortexm_layers.md): conv 10x4,
# depthwise 3x3, pointwise 64->64.
CMSIS_NN = {"cortex-m3": (1_362_469, 674_334, 1_591_948), "cortex-m4": (1_111_180, 599_617, 1_068_929),
            "cortex-m7": (1_120_494, 594_174, 1_051_000), "cortex-m55": (289_046, 166_879, 202_880)}
needs_kws = pytest.mark.skipif(not KWS.is_file(), reason=f"{KWS} not present (needs ../shared)")


def _kws(target, backend: str, oracle: str = "tflite"):
    report = verify_graph(load_model(KWS), target, backend=backend, runs=1, seed=7, oracle=oracle)
    assert_verified(report)
    return report


def _below_cmsis_nn(graph, report, target_name):
    """Each layer below CMSIS-NN's; a row-fused chain (its count on its last op) below the sum of its layers'."""
    conv, dw, pw = CMSIS_NN[target_name]
    anchors = {}
    for op in graph.ops:
        if op.type in ("Conv2D", "DepthwiseConv2D"):
            last = report.row_fused.get(op.index, op.index)
            anchor = dw if op.type == "DepthwiseConv2D" else conv if op.index == 0 else pw
            anchors[last] = anchors.get(last, 0) + anchor
    for op, n in zip(graph.ops, report.layer_instructions):
        if op.index in anchors:
            assert n <= anchors[op.index], f"{target_name} {op.where()}: {n:,} instructions, " \
                                           f"CMSIS-NN {anchors[op.index]:,}"


@needs_kws
@pytest.mark.qemu
@pytest.mark.parametrize("target_name", ["cortex-m4", "cortex-m55"])
def test_kws_tensorized_bit_exact_and_below_cmsis_nn(target_name):
    pytest.importorskip("ai_edge_litert")
    target = target_or_skip(target_name)
    graph = load_model(KWS)
    kernels = generate_kernels(graph, target)
    convs = [k for op, k in zip(graph.ops, kernels) if op.type in ("Conv2D", "DepthwiseConv2D")]
    assert sum(f"tensorized for {ISA[target_name]}" in k.source for k in convs) == 9
    _below_cmsis_nn(graph, _kws(target, "tvm"), target_name)


@needs_kws
@pytest.mark.qemu
@pytest.mark.slow
@pytest.mark.parametrize("target_name", ["cortex-m3", "cortex-m7"])
def test_kws_below_cmsis_nn_on_m3_and_m7(target_name):
    target = target_or_skip(target_name)
    _below_cmsis_nn(load_model(KWS), _kws(target, "tvm", "numpy"), target_name)


@needs_kws
@pytest.mark.qemu
@pytest.mark.slow
@pytest.mark.parametrize("target_name", ["cortex-m4", "cortex-m55"])
def test_kws_within_a_tenth_of_the_templates_road(target_name):
    target = target_or_skip(target_name)
    tvm = sum(_kws(target, "tvm", "numpy").layer_instructions)
    templates = sum(_kws(target, "templates", "numpy").layer_instructions)
    assert tvm <= 1.1 * templates, (tvm, templates)
