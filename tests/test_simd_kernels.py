"""Per-target SIMD kernel variants (dwscodegen/backends/simd*.py, templates/kernels/*_dsp_*, *_mve_*).

- The requantization identities the variants rest on, checked against the TFLite arithmetic of quant.py on
  dense and random operand sets (no toolchain needed).
- Every variant, bit-exact under QEMU against the NumPy reference over a matrix of layer shapes: DSP on
  Cortex-M4 and MVE on Cortex-M55 by default, the whole matrix on M7 and M33 as well when slow tests run.
  Each case also asserts which kernel was generated, so a variant that silently stopped being selected fails.
- The requantization plans (round, noround, mixed, generic; left shifts) bit-exact on M4 and M55, M7 and M33
  with slow tests. The depthwise variants' random matrix and constant channels: tests/test_simd_depthwise.py.
- The MLPerf Tiny KWS model on M4 and M55, bit-exact against the TFLite interpreter, every conv layer below
  the CMSIS-NN instruction counts of issue 6.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dwscodegen import quant
from dwscodegen.backends.templates import generate_kernels, simd
from dwscodegen.backends.templates.simd import common, mve
from dwscodegen.ir import Quant
from dwscodegen.targets import load_target
from .support.targets import target_or_skip
from dwscodegen.verify import verify_graph
from .support.layers import ConvCase, assert_verified, conv_graph
from .support.simd_checks import check_variant as _check, expected_template as _expected_template

INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1


# --- requantization identities -------------------------------------------------------------------

def _operands(rng, n):
    edges = np.array([INT32_MIN, INT32_MIN + 1, -(1 << 30), -65537, -65536, -2, -1, 0, 1, 2, 65535, 1 << 30,
                      INT32_MAX - 1, INT32_MAX], np.int64)
    dense = np.arange(-(1 << 16), 1 << 16, dtype=np.int64)
    return np.concatenate([edges, dense, rng.integers(INT32_MIN, INT32_MAX, n, dtype=np.int64, endpoint=True)])


def test_srdhm_is_a_rounded_shift_for_nonnegative_multipliers():
    """SaturatingRoundingDoublingHighMul(a, m) == (a*m + 2^30) >> 31 (arithmetic) for m in [0, 2^31)."""
    rng = np.random.default_rng(1)
    a = _operands(rng, 200_000)
    multipliers = np.concatenate([[0, 1, (1 << 30) - 1, 1 << 30, (1 << 30) + 1, INT32_MAX - 1, INT32_MAX],
                                  rng.integers(1 << 30, 1 << 31, 40), rng.integers(0, 1 << 30, 10)])
    for m in multipliers:
        expected = quant.saturating_rounding_doubling_high_mul(a, np.int64(m))
        np.testing.assert_array_equal((a * np.int64(m) + (1 << 30)) >> 31, expected, err_msg=f"m={m}")
        # ... which is SMMULR(2a, m) = (2a*m + 2^31) >> 32 whenever 2a fits in int32 (the DSP form).
        small = a[np.abs(a) < (1 << 30)]
        np.testing.assert_array_equal((2 * small * np.int64(m) + (1 << 31)) >> 32,
                                      quant.saturating_rounding_doubling_high_mul(small, np.int64(m)))


def test_rounding_divide_by_pot_is_add_and_shift():
    """RoundingDivideByPOT(x, e) == (x + 2^(e-1) + (x >> 31)) >> e for e >= 1 when x + 2^(e-1) fits."""
    rng = np.random.default_rng(2)
    base = _operands(rng, 100_000)
    for e in range(1, 32):
        half = np.int64(1) << (e - 1)
        ties = (rng.integers(-(1 << (31 - e)), 1 << (31 - e), 2000) << e)[:, None] + np.array([-half - 1, -half, -half + 1, half - 1, half, half + 1])
        x = np.concatenate([base, ties.reshape(-1)])
        x = x[(x >= INT32_MIN) & (x <= INT32_MAX - half)]
        expected = quant.rounding_divide_by_pot(x, np.int64(e))
        np.testing.assert_array_equal((x + half + (x >> 31)) >> e, expected, err_msg=f"e={e}")


def _mbqm_cases(rng, n):
    acc = rng.integers(-(1 << 24), 1 << 24, n, dtype=np.int64)
    acc[:64] = np.arange(-32, 32)
    m = rng.integers(1 << 30, 1 << 31, n, dtype=np.int64)
    m[:8] = [1 << 30, INT32_MAX, 0, 1 << 30, INT32_MAX, 1 << 30, INT32_MAX, 1 << 30]
    return acc, m


@pytest.mark.parametrize("shift", [-20, -12, -9, -7, -5, -2, -1])
@pytest.mark.parametrize("zp", [-128, -3, 0, 77, 127])
def test_dsp_requantization_form(shift, zp):
    """The DSP kernels' requantization: with A = acc * 2^(left+1), s = A >> 31, rc = 2^(e-1) + zp * 2^e,
    SMMLAR(A, m, rc + s) >> e == MultiplyByQuantizedMultiplier(acc, m, shift) + zp (s from acc, not from y)."""
    rng = np.random.default_rng([abs(shift), zp + 128])
    acc, m = _mbqm_cases(rng, 300_000)
    left, e = max(shift, 0), max(-shift, 0)
    a2 = acc << (left + 1)
    rc = (1 << (e - 1)) + zp * (1 << e)
    ok = np.abs(a2) + abs(rc) + 2 <= INT32_MAX              # the generation-time bound of common.requant_plan
    a2, m, acc = a2[ok], m[ok], acc[ok]
    high = ((a2 * m + (1 << 31)) >> 32) + rc + (a2 >> 31)    # SMMLAR: hi32(a*m + 2^31 + c*2^32) = hi32(a*m + 2^31) + c
    expected = quant.multiply_by_quantized_multiplier(acc, m, np.int64(shift)) + zp
    np.testing.assert_array_equal(high >> e, expected)


@pytest.mark.parametrize("shift", [3, 1, 0])
def test_dsp_requantization_form_without_right_shift(shift):
    """Channels with a left shift only (e = 0): SMMLAR(acc * 2^(left+1), m, zp) is the whole requantization."""
    rng = np.random.default_rng(10 + shift)
    acc, m = _mbqm_cases(rng, 200_000)
    acc = acc >> 6
    for zp in (-128, 0, 5, 127):
        a2 = acc << (shift + 1)
        expected = quant.multiply_by_quantized_multiplier(acc, m, np.int64(shift)) + zp
        np.testing.assert_array_equal(((a2 * m + (1 << 31)) >> 32) + zp, expected)


@pytest.mark.parametrize("shift", [-13, -8, -6, -1, 0, 2])
def test_mve_requantization_form(shift):
    """The MVE kernels': VRSHL(VQRDMULH(acc << left, m) + s + zp * 2^e, -e) with s = acc >> 31 (zero where
    e = 0); VRSHL by -e adds 2^(e-1) before its arithmetic shift."""
    rng = np.random.default_rng(40 + shift)
    acc, m = _mbqm_cases(rng, 200_000)
    left, e = max(shift, 0), max(-shift, 0)
    for zp in (-128, -1, 0, 9, 127):
        y = quant.saturating_rounding_doubling_high_mul(acc << left, m)
        s = (acc >> 31) if e else 0
        v = y + s + zp * (1 << e)
        got = (v + (1 << (e - 1))) >> e if e else v
        np.testing.assert_array_equal(got, quant.multiply_by_quantized_multiplier(acc, m, np.int64(shift)) + zp)


# --- generated kernels under QEMU ----------------------------------------------------------------

_target = target_or_skip


DW, CV = "DepthwiseConv2D", "Conv2D"
# (case, variant expected on DSP targets, on MVE targets); None: the portable kernel must be kept.
QUICK = [
    (ConvCase(CV, (1, 5, 7, 16), (1, 1), out_channels=24, activation="relu"), "pointwise_conv2d_s8_dsp_4x2", "pointwise_conv2d_s8_mve_2x4"),
    (ConvCase(CV, (1, 3, 5, 13), (1, 1), out_channels=10), "pointwise_conv2d_s8_dsp", "pointwise_conv2d_s8_mve"),
    (ConvCase(CV, (1, 4, 3, 37), (1, 1), out_channels=7, activation="relu6", per_channel=False, bias=False),
     "pointwise_conv2d_s8_dsp", "pointwise_conv2d_s8_mve"),
    (ConvCase(CV, (1, 7, 5, 8), (1, 1), out_channels=9, stride=(2, 2), padding="VALID"), "pointwise_conv2d_s8_dsp", "pointwise_conv2d_s8_mve"),
    (ConvCase(DW, (1, 7, 5, 16), (3, 3), activation="relu"), "depthwise_conv2d_s8_dsp", "depthwise_conv2d_s8_mve"),
    (ConvCase(DW, (1, 9, 7, 13), (3, 3), stride=(2, 2), activation="clamp"), "depthwise_conv2d_s8_dsp", "depthwise_conv2d_s8_mve"),
    (ConvCase(DW, (1, 6, 6, 3), (3, 3), padding="VALID", per_channel=False), "depthwise_conv2d_s8_dsp", "depthwise_conv2d_s8_mve"),
    (ConvCase(DW, (1, 8, 6, 21), (3, 3), padding=(1, 0, 0, 1), bias=False), "depthwise_conv2d_s8_dsp", "depthwise_conv2d_s8_mve"),
    (ConvCase(DW, (1, 5, 4, 6), (3, 3), multiplier=2), "depthwise_conv2d_s8_dsp_padded_4c", "depthwise_conv2d_s8_mve_padded_8c"),
    # Multipliers, large and 1-D kernels: the padded-window variants (DSP: the tap-pair one for 1xK / Kx1).
    (ConvCase(DW, (1, 9, 8, 6), (3, 3), multiplier=4, dilation=(2, 2), activation="relu"),
     "depthwise_conv2d_s8_dsp_padded_4c", "depthwise_conv2d_s8_mve_padded_8c"),
    (ConvCase(DW, (1, 11, 10, 5), (7, 7), multiplier=3, stride=(2, 2), padding=(3, 2, 1, 4)),
     "depthwise_conv2d_s8_dsp_padded_4c", "depthwise_conv2d_s8_mve_padded_8c"),
    (ConvCase(DW, (1, 14, 13, 10), (9, 9), activation="relu6"), "depthwise_conv2d_s8_dsp_padded_4c", "depthwise_conv2d_s8_mve_padded_8c"),
    (ConvCase(DW, (1, 4, 30, 12), (1, 9), dilation=(1, 2), activation="clamp"), "depthwise_conv2d_s8_dsp_pairs_1c", "depthwise_conv2d_s8_mve_8c"),
    (ConvCase(DW, (1, 29, 3, 6), (9, 1), multiplier=2, stride=(2, 2), padding="VALID"),
     "depthwise_conv2d_s8_dsp_pairs_1c", "depthwise_conv2d_s8_mve_padded_8c"),
    (ConvCase(CV, (1, 13, 8, 1), (5, 3), out_channels=12, stride=(2, 2), activation="relu"), "conv2d_s8_dsp_im2col_2x2", "conv2d_s8_mve_im2col_2x4"),
    (ConvCase(CV, (1, 6, 5, 3), (3, 3), out_channels=5), "conv2d_s8_dsp_im2col", "conv2d_s8_mve_im2col"),
    (ConvCase(CV, (1, 7, 7, 6), (3, 3), out_channels=8, stride=(2, 2), padding="VALID", activation="relu6"),
     "conv2d_s8_dsp_im2col", "conv2d_s8_mve_im2col"),
]
SLOW = [
    (ConvCase(CV, (1, 1, 1, 64), (1, 1), out_channels=3), "pointwise_conv2d_s8_dsp", "pointwise_conv2d_s8_mve"),
    (ConvCase(CV, (1, 3, 3, 200), (1, 1), out_channels=19, activation="relu"), "pointwise_conv2d_s8_dsp", "pointwise_conv2d_s8_mve"),
    (ConvCase(CV, (1, 2, 9, 4), (1, 1), out_channels=33, in_zp=-128, out_zp=-128, activation="relu"), "pointwise_conv2d_s8_dsp", "pointwise_conv2d_s8_mve"),
    (ConvCase(DW, (1, 25, 5, 64), (3, 3), in_zp=-128, out_zp=-128, activation="relu"), "depthwise_conv2d_s8_dsp", "depthwise_conv2d_s8_mve"),
    (ConvCase(DW, (1, 11, 9, 24), (5, 5), activation="relu6"), "depthwise_conv2d_s8_dsp", "depthwise_conv2d_s8_mve"),
    (ConvCase(DW, (1, 9, 9, 10), (3, 3), dilation=(2, 2)), "depthwise_conv2d_s8_dsp", "depthwise_conv2d_s8_mve"),
    (ConvCase(DW, (1, 2, 2, 17), (3, 3), stride=(2, 2)), "depthwise_conv2d_s8_dsp", "depthwise_conv2d_s8_mve"),
    (ConvCase(DW, (1, 10, 3, 8), (3, 1), stride=(2, 1), padding=(2, 2, 0, 0)), "depthwise_conv2d_s8_dsp", "depthwise_conv2d_s8_mve"),
    (ConvCase(DW, (1, 12, 12, 4), (7, 7)), "depthwise_conv2d_s8_dsp_padded_4c", "depthwise_conv2d_s8_mve_padded_8c"),
    # Several tiles (the window of the whole output does not fit the stack budget), rolled tap loops.
    (ConvCase(DW, (1, 50, 44, 20), (3, 3), multiplier=2, activation="relu"), "depthwise_conv2d_s8_dsp_padded_4c", "depthwise_conv2d_s8_mve_padded_8c"),
    (ConvCase(DW, (1, 40, 37, 9), (5, 5), multiplier=2, stride=(1, 2), dilation=(2, 1), padding=(4, 1, 2, 3)),
     "depthwise_conv2d_s8_dsp_padded_4c", "depthwise_conv2d_s8_mve_padded_8c"),
    (ConvCase(DW, (1, 3, 60, 4), (1, 40), multiplier=2), "depthwise_conv2d_s8_dsp_pairs_1c", "depthwise_conv2d_s8_mve_padded_8c"),
    (ConvCase(DW, (1, 70, 5, 8), (33, 1), stride=(2, 1), dilation=(2, 1), padding="SAME"),
     "depthwise_conv2d_s8_dsp_pairs_1c", "depthwise_conv2d_s8_mve_padded_8c"),
    (ConvCase(CV, (1, 49, 10, 1), (10, 4), out_channels=64, stride=(2, 2), activation="relu", in_zp=83, out_zp=-128),
     "conv2d_s8_dsp_im2col", "conv2d_s8_mve_im2col"),
    (ConvCase(CV, (1, 9, 9, 5), (3, 3), out_channels=6, dilation=(2, 2)), "conv2d_s8_dsp_im2col", "conv2d_s8_mve_im2col"),
    (ConvCase(CV, (1, 8, 8, 16), (3, 3), out_channels=16, stride=(2, 2)), "conv2d_s8_dsp_im2col", "conv2d_s8_mve_im2col"),
    (ConvCase(CV, (1, 5, 6, 2), (2, 2), out_channels=3, padding=(0, 1, 1, 0), per_channel=False), "conv2d_s8_dsp_im2col", "conv2d_s8_mve_im2col"),
    (ConvCase(CV, (1, 4, 4, 3), (1, 1), out_channels=4, padding=(1, 1, 1, 1)), "conv2d_s8_dsp_im2col", "conv2d_s8_mve_im2col"),
    # Found by random testing: a padded 1x1 convolution (im2col) inlined into the run function, and a
    # depthwise layer none of whose taps is inside the input.
    (ConvCase(CV, (1, 12, 7, 12), (1, 1), out_channels=31, padding=(2, 2, 0, 0), activation="clamp", per_channel=False,
              in_zp=45, out_zp=65), "conv2d_s8_dsp_im2col", "conv2d_s8_mve_im2col"),
    (ConvCase(DW, (1, 1, 4, 64), (4, 4), dilation=(2, 1), activation="relu", bias=False),
     "depthwise_conv2d_s8_dsp_padded_4c", "depthwise_conv2d_s8_mve_padded_8c"),
    # Patches too large for the default tiles' stack buffers: one pixel per tile, or the portable kernel.
    (ConvCase(CV, (1, 2, 2, 1100), (1, 1), out_channels=5), "pointwise_conv2d_s8_dsp_1x2", "pointwise_conv2d_s8_mve_2x4"),
    (ConvCase(CV, (1, 3, 2, 200), (3, 3), out_channels=3), "conv2d_s8_dsp_im2col_1x2", "conv2d_s8_mve_im2col_2x4"),
    (ConvCase(CV, (1, 3, 3, 500), (3, 3), out_channels=2, stride=(2, 2)), None, "conv2d_s8_mve_im2col_1x4"),
]


def _run_matrix(target_name, case, dsp, mve):
    target = _target(target_name)
    variant = _expected_template(target, dsp, mve)
    _check(conv_graph(case, "int8", seed=3), target, variant)


@pytest.mark.qemu
@pytest.mark.parametrize("target_name", ["cortex-m4", "cortex-m55"])
@pytest.mark.parametrize("case,dsp,mve", QUICK, ids=[c[0].id() for c in QUICK])
def test_variant_bit_exact(target_name, case, dsp, mve):
    _run_matrix(target_name, case, dsp, mve)


@pytest.mark.qemu
@pytest.mark.slow
@pytest.mark.parametrize("target_name", ["cortex-m4", "cortex-m55"])
@pytest.mark.parametrize("case,dsp,mve", SLOW, ids=[c[0].id() for c in SLOW])
def test_variant_bit_exact_more_shapes(target_name, case, dsp, mve):
    _run_matrix(target_name, case, dsp, mve)


@pytest.mark.qemu
@pytest.mark.slow
@pytest.mark.parametrize("target_name", ["cortex-m7", "cortex-m33"])
@pytest.mark.parametrize("case,dsp,mve", QUICK + SLOW, ids=[c[0].id() for c in QUICK + SLOW])
def test_variant_bit_exact_other_dsp_cores(target_name, case, dsp, mve):
    _run_matrix(target_name, case, dsp, mve)


def _with_real_multiplier(case: ConvCase, real: float, seed: int = 4):
    """The case's graph with the output scale set so that the real requantization multiplier of the
    middle channel is `real` (per-channel weight scales spread over 10x around it)."""
    graph = conv_graph(case, "int8", seed=seed)
    x, w, y = graph.tensor("x"), graph.tensor("w"), graph.tensor("y")
    mid = float(np.sort(np.float32(w.quant.scale))[len(w.quant.scale) // 2])
    scale = np.float32(float(np.float32(x.quant.scale[0])) * mid / real)
    y.quant = Quant(np.array([float(scale)]), y.quant.zero_point)
    return graph


REQUANT_CASES = [
    # (case, real multiplier of the middle channel, DSP plan, MVE rounding mode)
    (ConvCase(CV, (1, 4, 5, 12), (1, 1), out_channels=6, per_channel=False), 0.75, "noround", "noround"),
    (ConvCase(CV, (1, 4, 5, 12), (1, 1), out_channels=6, per_channel=False), 3.0, "noround", "noround"),
    (ConvCase(DW, (1, 5, 5, 12), (3, 3), per_channel=False), 5.0, "noround", "noround"),
    (ConvCase(CV, (1, 4, 5, 12), (1, 1), out_channels=16), 1.0, "mixed", "mixed"),
    (ConvCase(DW, (1, 5, 5, 20), (3, 3)), 1.0, "mixed", "mixed"),
    (ConvCase(CV, (1, 5, 4, 3), (3, 3), out_channels=9), 1.0, "mixed", "mixed"),
    (ConvCase(DW, (1, 6, 7, 10), (3, 3), multiplier=2), 1.0, "mixed", "mixed"),
    (ConvCase(DW, (1, 3, 12, 10), (1, 5), activation="relu"), 1.0, "mixed", "mixed"),
    (ConvCase(DW, (1, 6, 5, 4), (3, 3), multiplier=2, per_channel=False), 600.0, "generic", "noround"),
    (ConvCase(DW, (1, 9, 4, 3), (5, 1), per_channel=False), 600.0, "generic", "noround"),
    (ConvCase(CV, (1, 4, 5, 12), (1, 1), out_channels=6, per_channel=False), 600.0, "generic", "noround"),
]


@pytest.mark.qemu
@pytest.mark.parametrize("target_name", ["cortex-m4", "cortex-m55"])
@pytest.mark.parametrize("case,real,dsp_mode,mve_mode", REQUANT_CASES,
                         ids=[f"{c.id()}-x{r:g}" for c, r, _, _ in REQUANT_CASES])
def test_requantization_modes_bit_exact(target_name, case, real, dsp_mode, mve_mode):
    """Left shifts, no right shift, and layers mixing both (per channel) go through the other plans."""
    target = _target(target_name)
    graph = _with_real_multiplier(case, real)
    info = common.conv_info(graph, graph.ops[0])
    if "mve" in target.features:
        e = mve.plan_layer_mve(info)[1].rshift
        assert {"round": np.all(e >= 1), "noround": np.all(e == 0), "mixed": np.any(e == 0) and np.any(e > 0)}[mve_mode]
    else:
        assert common.requant_plan(info, True, 32767).mode == dsp_mode
    prefix = "depthwise" if case.kind == DW else "pointwise" if case.kernel == (1, 1) else "conv2d"
    _check(graph, target, prefix, seed=5)


@pytest.mark.qemu
@pytest.mark.slow
@pytest.mark.parametrize("target_name", ["cortex-m7", "cortex-m33"])
@pytest.mark.parametrize("case,real,dsp_mode,mve_mode", REQUANT_CASES,
                         ids=[f"{c.id()}-x{r:g}" for c, r, _, _ in REQUANT_CASES])
def test_requantization_modes_bit_exact_other_dsp_cores(target_name, case, real, dsp_mode, mve_mode):
    target = _target(target_name)
    graph = _with_real_multiplier(case, real)
    assert common.requant_plan(common.conv_info(graph, graph.ops[0]), True, 32767).mode == dsp_mode
    prefix = "depthwise" if case.kind == DW else "pointwise" if case.kernel == (1, 1) else "conv2d"
    _check(graph, target, prefix, seed=5)


@pytest.mark.qemu
def test_accumulator_that_may_leave_int32_keeps_the_portable_kernel():
    target = _target("cortex-m4")
    graph = conv_graph(ConvCase(CV, (1, 3, 3, 8), (1, 1), out_channels=4), "int8", seed=6)
    info = common.conv_info(graph, graph.ops[0])
    # Just past the bound |bias| + (|in_offset| + 128) * sum|w| that the variants guarantee; the actual
    # accumulators (|x + in_offset| <= 135 here) still fit, so the portable kernel is exact.
    graph.tensor("b").data[:] = INT32_MAX + 1 - (abs(info.in_offset) + 128) * info.weight_abs_sum()
    assert common.requant_plan(common.conv_info(graph, graph.ops[0]), True, 32767) is None
    _check(graph, target, None)


def test_portable_kernels_can_be_forced(monkeypatch):
    graph = conv_graph(QUICK[0][0], "int8")
    target = load_target("cortex-m4")
    assert "DSP variant" in generate_kernels(graph, target)[0].source
    monkeypatch.setenv(simd.PORTABLE_ENV, "1")
    assert "DSP variant" not in generate_kernels(graph, target)[0].source


@pytest.mark.parametrize("target_name", ["cortex-m4", "cortex-m55"])
def test_variants_are_deterministic(target_name):
    target = load_target(target_name)
    kinds = {"pointwise_conv2d_s8_dsp_4x2", "depthwise_conv2d_s8_dsp", "conv2d_s8_dsp_im2col_2x2",
             "depthwise_conv2d_s8_dsp_padded_4c", "depthwise_conv2d_s8_dsp_pairs_1c"}
    for case, _, _ in [c for c in QUICK if c[1] in kinds]:
        first = [k.source for k in generate_kernels(conv_graph(case, "int8", seed=8), target)]
        assert first == [k.source for k in generate_kernels(conv_graph(case, "int8", seed=8), target)]


def test_no_variant_without_simd_features():
    graph = conv_graph(QUICK[0][0], "int8")
    for name in ("x86_64",):
        assert "variant" not in generate_kernels(graph, load_target(name))[0].source
    assert "variant" not in generate_kernels(conv_graph(QUICK[0][0], "float32"), load_target("cortex-m4"))[0].source


# --- the KWS model ----------------------------------------------------------------------------------

KWS = Path(__file__).resolve().parent.parent.parent / "shared" / "models" / "kws_ref_model.tflite"
# CMSIS-NN's executed instructions per layer kind (issue 6): conv 10x4, depthwise 3x3, pointwise 64->64.
CMSIS_NN = {"cortex-m4": (1_111_180, 599_617, 1_068_929), "cortex-m7": (1_120_494, 594_174, 1_051_000),
            "cortex-m55": (289_046, 166_879, 202_880)}


@pytest.mark.qemu
@pytest.mark.skipif(not KWS.is_file(), reason=f"{KWS} not present (needs ../shared)")
@pytest.mark.parametrize("target_name", ["cortex-m4", "cortex-m55"])
def test_kws_bit_exact_and_below_cmsis_nn(target_name):
    from dwscodegen.importers import load_model
    from dwscodegen.oracles import tflite_interpreter
    if not tflite_interpreter.available():
        pytest.skip("ai-edge-litert not installed")
    target = _target(target_name)
    graph = load_model(KWS)
    report = verify_graph(graph, target, runs=2, seed=7, oracle="tflite", check_layers=True)
    assert_verified(report)
    assert all(c.ok for _, c in report.layers)
    conv, dw, pw = CMSIS_NN[target_name]
    total = 0
    for op, n in zip(graph.ops, report.layer_instructions):
        if op.type not in ("Conv2D", "DepthwiseConv2D"):
            continue
        anchor = dw if op.type == "DepthwiseConv2D" else conv if op.index == 0 else pw
        assert n < anchor, f"{op.where()}: {n:,} instructions, CMSIS-NN {anchor:,}"
        total += n
    assert total * 1.3 <= conv + 4 * dw + 4 * pw, total
