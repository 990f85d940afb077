"""x86 SIMD variants per ISA level (backends/templates/simd/avx*.py, templates/kernels/*_avx2_*, *_avx512*).

- The vector requantization forms the int8 variants rest on, against quant.py's TFLite arithmetic on dense and
  random operands (no compiler needed).
- The layer matrix (tests/support/layers.py) on x86_64-v3 (AVX2 + FMA) and x86_64-v4 (AVX-512 + VNNI), int8
  bit-exact and float32 within tolerance against the NumPy reference, each case asserting which kernel ran.
- Random layers per level: a few by default, many more when slow tests run.
- Hybrid convolutions and the glue ops (average pool, Add, Mean, FullyConnected) against the TFLite interpreter.
- The MLPerf Tiny KWS models, int8 bit-exact and float32 within tolerance against the interpreter.
- A host without the target's ISA is refused before anything runs, with the missing flags named.
x86_64-v4 tests skip on hosts without AVX-512 / VNNI (target_or_skip names the missing flags).
"""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np
import pytest

from dwscodegen import quant
from dwscodegen.backends.templates import generate_kernels, kernel_used, simd
from dwscodegen.backends.templates.simd import avx_f32, avx_s8, common
from dwscodegen.errors import DwsError
from dwscodegen.runner.native import missing_cpu_flags, require_host_isa
from dwscodegen.targets import load_target
from dwscodegen.verify import verify_graph
from .support.layers import ConvCase, MATRIX, assert_verified, conv_graph, resolve_padding
from .support.targets import target_or_skip

INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1
LEVELS = ("x86_64-v3", "x86_64-v4")
DW, CV = "DepthwiseConv2D", "Conv2D"


@pytest.fixture(params=LEVELS)
def level(request):
    return target_or_skip(request.param)


def _check(report):
    assert_verified(report)
    return report


def _isa(target) -> str:
    return "avx512" if "avx512vnni" in target.features else "avx2"


# --- requantization forms ------------------------------------------------------------------------

def _accumulators(rng, n, bound):
    edges = np.array([-bound, -bound + 1, -65537, -2, -1, 0, 1, 2, 65535, bound - 1, bound], np.int64)
    return np.concatenate([edges, np.arange(-4096, 4096), rng.integers(-bound, bound + 1, n, dtype=np.int64)])


@pytest.mark.parametrize("shift", [-20, -13, -9, -7, -3, -1, 0, 1, 3])
@pytest.mark.parametrize("zp", [-128, -5, 0, 77, 127])
def test_conv_requantization_form(shift, zp):
    """<fn>_requantize of the int8 conv variants: A = acc << (left + 1), hi32(A * m + 2^31 + rc * 2^32) (one 64-bit
    add of the per-lane constant re / ro), + s, >> e, with rc = 2^(e-1) + zp * 2^e and s = A >> 31 (none where
    e = 0), wherever avx_s8.requant proves that |A| and the result fit."""
    rng = np.random.default_rng([abs(shift), zp + 128])
    left, e = max(shift, 0), max(-shift, 0)
    for m in np.concatenate([[1 << 30, INT32_MAX], rng.integers(1 << 30, 1 << 31, 6)]):
        rc = ((1 << (e - 1)) if e else 0) + zp * (1 << e)
        bound = (INT32_MAX - abs(rc) - 2) >> (left + 1)        # the generation-time check of avx_s8.requant
        acc = _accumulators(rng, 100_000, min(bound, 1 << 26))
        a = acc << (left + 1)
        hi = (a * np.int64(m) + (1 << 31) + rc * (1 << 32)) >> 32
        got = (hi + ((a >> 31) if e else 0)) >> e
        np.testing.assert_array_equal(got, quant.multiply_by_quantized_multiplier(acc, np.int64(m), np.int64(shift)) + zp)


@pytest.mark.parametrize("shift", [-31, -24, -12, -1, 0, 2, 20, 31])
def test_glue_mbqm_form(shift):
    """dws_*_mbqm of the glue variants, exact for every int32: bits 31..62 of (x << left) * m + 2^30, then
    (y >> e) + (y & mask > mask / 2 + (y < 0))."""
    rng = np.random.default_rng(shift + 40)
    left, e = max(shift, 0), max(-shift, 0)
    x = np.concatenate([[INT32_MIN, INT32_MIN + 1, -1, 0, 1, INT32_MAX - 1, INT32_MAX],
                        rng.integers(INT32_MIN, INT32_MAX, 100_000, dtype=np.int64, endpoint=True)])
    for m in (0, 1, (1 << 30) + 7, INT32_MAX, int(rng.integers(1 << 30, 1 << 31))):
        a = ((x << left) + (1 << 31)) % (1 << 32) - (1 << 31)      # the wrapping shift of TFLite and sllv
        y = (a * np.int64(m) + (1 << 30)) >> 31
        mask = (1 << e) - 1
        got = (y >> e) + ((y & mask) > (mask >> 1) + (y < 0))
        np.testing.assert_array_equal(got, quant.multiply_by_quantized_multiplier(x, np.int64(m), np.int64(shift)))


# --- the layer matrix and random layers ----------------------------------------------------------

def _expected_kernel(case: ConvCase, dtype: str, target, graph) -> str | None:
    """The template stem prefix the case must get on `target`; None: the portable kernel (a depthwise multiplier
    above 1, or a depthwise layer none of whose taps is inside the input)."""
    if case.kind == DW:
        info = (common.conv_info if dtype == "int8" else avx_f32.float_info)(graph, graph.ops[0])
        if common.depthwise_regions(info) is None:
            return None
    isa = _isa(target)
    s8 = "avx512vnni" if isa == "avx512" else "avx2"
    tag = f"s8_{s8}" if dtype == "int8" else f"f32_{isa}"
    if case.kind == DW:
        return f"depthwise_conv2d_{tag}_"
    pointwise = case.kernel == (1, 1) and resolve_padding(case) == (0, 0, 0, 0)
    return f"pointwise_conv2d_{tag}_" if pointwise else f"conv2d_{tag}_im2col_"


def _run(case: ConvCase, dtype: str, target, seed: int):
    graph = conv_graph(case, dtype, seed=seed)
    expected = _expected_kernel(case, dtype, target, graph)
    chosen = kernel_used(graph, graph.ops[0], target)
    assert (chosen == simd.PORTABLE) if expected is None else chosen.startswith(expected), (chosen, expected)
    return _check(verify_graph(graph, target, runs=2, seed=seed, oracle="numpy", footprint=False))


@pytest.mark.parametrize("dtype", ["int8", "float32"])
@pytest.mark.parametrize("case", MATRIX, ids=ConvCase.id)
def test_layer_matrix(case, dtype, level):
    _run(case, dtype, level, MATRIX.index(case))


def random_case(rng) -> ConvCase:
    """A seeded random conv-like layer: any kind, odd sizes, strides, dilations, padding, activations, zero points."""
    kind = rng.choice(["dw", "pw", "conv"])
    h, w = int(rng.integers(1, 14)), int(rng.integers(1, 14))
    c = int(rng.choice([1, 3, 7, 8, 16, 24, 33, 64]))
    act = str(rng.choice(["none", "relu", "relu6", "clamp"]))
    zps = dict(in_zp=int(rng.integers(-128, 128)), out_zp=int(rng.integers(-128, 128)),
               per_channel=bool(rng.integers(0, 2)), bias=bool(rng.integers(0, 4)))
    if kind == "pw":
        stride = int(rng.choice([1, 1, 2]))
        return ConvCase(CV, (1, h, w, c), (1, 1), out_channels=int(rng.choice([1, 5, 16, 24, 40, 64, 72])),
                        stride=(stride, stride), padding="VALID", activation=act, **zps)
    k = (int(rng.integers(1, 6)), int(rng.integers(1, 6)))
    stride = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
    dilation = (1, 1) if rng.integers(0, 3) else (2, 2)
    padding = "SAME" if rng.integers(0, 2) else "VALID"
    if padding == "VALID" and (h < (k[0] - 1) * dilation[0] + 1 or w < (k[1] - 1) * dilation[1] + 1):
        padding = "SAME"
    if kind == "dw":
        return ConvCase(DW, (1, h, w, c), k, stride=stride, dilation=dilation, padding=padding, activation=act, **zps)
    return ConvCase(CV, (1, h, w, min(c, 16)), k, out_channels=int(rng.choice([3, 8, 16, 20, 64])), stride=stride,
                    dilation=dilation, padding=padding, activation=act, **zps)


@pytest.mark.parametrize("case", [ConvCase(CV, (1, 1, 1, 40), (1, 1), out_channels=100, padding="VALID", activation="relu6"),
                                  ConvCase(CV, (2, 1, 1, 33), (1, 1), out_channels=20, padding="VALID", in_zp=-128),
                                  ConvCase(CV, (1, 1, 5, 24), (1, 1), out_channels=9, padding="VALID", out_zp=-128)],
                         ids=ConvCase.id)
def test_matrix_times_vector_reads_int8_weights(case, level):
    """All pixels in one partial tile (a squeeze-excite or classifier 1x1 conv, batch 2 included): AVX2 keeps the
    weights int8, sign-extended as loaded (half the bytes read), with the unscaled requantization; bit-exact."""
    graph = conv_graph(case, "int8", seed=4)
    source = generate_kernels(graph, level)[0].source
    assert "static const int8_t layer0" in source and "static const int16_t layer0" not in source
    if "avx512vnni" not in level.features:      # VNNI reads int8 weights anyway
        assert "_mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(w0 + 16 * g)))" in source
    _check(verify_graph(graph, level, runs=2, seed=9, oracle="numpy", footprint=False))


@pytest.mark.parametrize("case,pixels", [
    (ConvCase(CV, (1, 1, 1, 40), (1, 1), out_channels=100, padding="VALID", activation="relu6"), 1),
    (ConvCase(CV, (2, 1, 1, 33), (1, 1), out_channels=200, padding="VALID"), 1),
    (ConvCase(CV, (1, 1, 3, 24), (1, 1), out_channels=203, padding="VALID", activation="relu"), 3),
    (ConvCase(CV, (1, 1, 7, 9), (1, 1), out_channels=70, padding="VALID"), 1),
    (ConvCase(CV, (1, 1, 1, 12), (1, 1), out_channels=401, padding="VALID"), 1)], ids=["1px", "batch2", "3px", "6+1px", "wide"])
def test_float_partial_tile_takes_more_channel_vectors(case, pixels, level):
    """A float32 GEMM's partial tile of few pixels (a squeeze-excite or classifier 1x1 conv at one pixel, batch 2;
    the 1 pixel left after whole tiles of 6) runs as many independent sums as a whole tile: more channel vectors
    per block on AVX2 (AVX-512 keeps its tile's 4), a partial last block and a partial last vector; within
    tolerance of the NumPy reference."""
    graph = conv_graph(case, "float32", seed=5)
    source = generate_kernels(graph, level)[0].source
    isa = _isa(level)
    tile = 6 * 4 if isa == "avx512" else 6 * 2              # accumulators of the wide tile (6x64 / 6x16)
    lanes = 16 if isa == "avx512" else 8
    nv = min(-(-case.out_channels // lanes), tile // 6 if isa == "avx512" else tile // pixels)
    last_pixel = rf"__m{lanes * 32} a{pixels - 1}(\d+) = _mm{lanes * 32}_setzero_ps"
    assert max(int(j) for j in re.findall(last_pixel, source)) == nv - 1
    _check(verify_graph(graph, level, runs=2, seed=9, oracle="numpy", footprint=False))


WINDOW_CASES = [ConvCase(DW, (1, 7, 9, 21), (7, 9), padding="VALID", in_zp=-128, out_zp=5),
                ConvCase(DW, (1, 6, 6, 16), (6, 6), padding="VALID", activation="relu6", per_channel=True),
                ConvCase(DW, (2, 11, 3, 40), (11, 3), padding="VALID", activation="relu", in_zp=17)]


@pytest.mark.parametrize("requant", ["tflite", "onnx", "dead"])
@pytest.mark.parametrize("case", WINDOW_CASES, ids=ConvCase.id)
def test_depthwise_over_the_whole_input(case, requant, level):
    """A depthwise layer whose window is its whole input (a global pool as a depthwise conv, more taps than the
    unrolled variants take: 63, 36, 33): the window variant, a loop over its positions; partial vectors, batch 2,
    TFLite's requantization (with dead channels too) and onnxruntime's, bit-exact against the NumPy reference."""
    from .support.layers import with_constant_channels
    from .support.onnx_requant import onnx_requant_graph
    seed = WINDOW_CASES.index(case)
    if requant == "onnx":
        graph = onnx_requant_graph(case, "ties", seed=seed)
    elif requant == "dead":
        graph = with_constant_channels(case, seed=seed)[0]
    else:
        graph = conv_graph(case, "int8", seed=seed)
    s8 = "avx512vnni" if _isa(level) == "avx512" else "avx2"
    assert kernel_used(graph, graph.ops[0], level) == f"depthwise_conv2d_s8_{s8}_window_{16 if s8 != 'avx2' else 8}c"
    _check(verify_graph(graph, level, runs=2, seed=seed, oracle="numpy", footprint=False))


def _random_layers(target, seed: int, count: int):
    rng = np.random.default_rng(seed)
    for i in range(count):
        case = random_case(rng)
        for dtype in ("int8", "float32"):
            _run(case, dtype, target, seed * 1000 + i)


def test_random_layers(level):
    _random_layers(level, 11, 3)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(5))
def test_random_layers_more(level, seed):
    _random_layers(level, 100 + seed, 12)


def _with_real_multiplier(case: ConvCase, real: float, seed: int = 4):
    """The case's graph with the output scale set so that the real requantization multiplier of the middle
    channel is `real` (per-channel weight scales spread over 10x around it)."""
    from dwscodegen.ir import Quant
    graph = conv_graph(case, "int8", seed=seed)
    x, w, y = graph.tensor("x"), graph.tensor("w"), graph.tensor("y")
    mid = float(np.sort(np.float32(w.quant.scale))[len(w.quant.scale) // 2])
    y.quant = Quant(np.array([float(np.float32(float(np.float32(x.quant.scale[0])) * mid / real))]), y.quant.zero_point)
    return graph


REQUANT_CASES = [
    # (case, real multiplier of the middle channel, the vector requantization's mode)
    (ConvCase(CV, (1, 4, 5, 12), (1, 1), out_channels=6, per_channel=False), 3.0, "noround"),
    (ConvCase(DW, (1, 5, 5, 20), (3, 3), per_channel=False), 5.0, "noround"),
    (ConvCase(CV, (1, 4, 5, 24), (1, 1), out_channels=40), 1.0, "mixed"),
    (ConvCase(DW, (1, 5, 5, 36), (3, 3)), 1.0, "mixed"),
    (ConvCase(CV, (1, 5, 4, 3), (3, 3), out_channels=9), 1.0, "mixed"),
]


@pytest.mark.parametrize("case,real,mode", REQUANT_CASES, ids=[f"{c.id()}-x{r:g}" for c, r, _ in REQUANT_CASES])
def test_requantization_modes(case, real, mode, level):
    """Left shifts, no right shift, and layers mixing both (per channel) take the other requantization forms."""
    graph = _with_real_multiplier(case, real)
    assert avx_s8.requant(common.conv_info(graph, graph.ops[0])).mode == mode
    assert kernel_used(graph, graph.ops[0], level) != simd.PORTABLE
    _check(verify_graph(graph, level, runs=2, seed=5, oracle="numpy", footprint=False))


# --- hybrid convolutions and glue ops against the TFLite interpreter -----------------------------

def _tflite_graph(tmp_path, name, inputs, outputs, options):
    pytest.importorskip("tflite")
    from dwscodegen.importers import load_model
    from .support.tflite_builder import build_single_op_model
    path = tmp_path / "op.tflite"
    path.write_bytes(build_single_op_model(name, inputs, outputs, options))
    return load_model(path)


def _interpreter_or_skip():
    from dwscodegen.oracles import tflite_interpreter
    if not tflite_interpreter.available():
        pytest.skip("ai-edge-litert not installed")


def _hybrid(kind: str, per_channel: bool, rng):
    from .support.tflite_builder import TensorSpec
    from .support.tflite_cases import act, bias, conv_weights
    shape, oc, k = ((1, 9, 7, 3), 20, (3, 3)) if kind == "conv" else ((1, 5, 6, 24), 40, (1, 1))
    w_shape = (oc, *k, shape[3])
    w = (conv_weights(rng, w_shape, "int8", 0) if per_channel else
         TensorSpec("w", w_shape, "int8", data=rng.integers(-127, 128, w_shape, dtype=np.int8), scale=[0.01],
                    zero_point=[0]))
    options = (dict(padding="SAME", stride_h=2, stride_w=2, fused_activation="RELU") if kind == "conv"
               else dict(padding="VALID", fused_activation="RELU6"))
    out_hw = (5, 4) if kind == "conv" else shape[1:3]
    return ("CONV_2D", [act("x", shape, "float32"), w, bias(rng, oc, "float32")],
            [act("y", (1, *out_hw, oc), "float32")], options)


@pytest.mark.parametrize("per_channel", [True, False], ids=["asymmetric", "symmetric"])
@pytest.mark.parametrize("kind", ["conv", "pointwise"])
def test_hybrid_conv_matches_tflite(tmp_path, kind, per_channel, level):
    _interpreter_or_skip()
    graph = _tflite_graph(tmp_path, *_hybrid(kind, per_channel, np.random.default_rng(3)))
    assert "hybrid_f32" in kernel_used(graph, graph.ops[0], level)
    _check(verify_graph(graph, level, runs=3, seed=4, oracle="tflite", footprint=False))


def _glue_cases():
    from .support.tflite_builder import TensorSpec
    from .support.tflite_cases import act

    def pool(dtype, rng):
        return ("AVERAGE_POOL_2D", [act("x", (1, 9, 7, 21), dtype, 0.05, -7)], [act("y", (1, 5, 4, 21), dtype, 0.05, -7)],
                dict(filter_h=3, filter_w=3, stride_h=2, stride_w=2, padding="SAME", fused_activation="RELU6"))

    def global_pool(dtype, rng):
        return ("AVERAGE_POOL_2D", [act("x", (1, 25, 5, 64), dtype, 0.05, 3)], [act("y", (1, 1, 1, 64), dtype, 0.05, 3)],
                dict(filter_h=25, filter_w=5, stride_h=25, stride_w=5, padding="VALID"))

    def add(dtype, rng):
        return ("ADD", [act("a", (1, 6, 5, 13), dtype), act("c", (1, 6, 5, 13), dtype, 0.03, 7)],
                [act("y", (1, 6, 5, 13), dtype, 0.07, -1)], dict(fused_activation="RELU"))

    def mean(dtype, rng):
        return ("MEAN", [act("x", (1, 3, 3, 40), dtype, 0.04, 5)], [act("y", (1, 40), dtype, 0.02, -9)],
                dict(axis=[1, 2], keep_dims=False))

    def fc(dtype, rng, rows=1, depth=200, units=37):
        if dtype == "float32":
            w = TensorSpec("w", (units, depth), dtype, data=rng.normal(0, depth ** -0.5, (units, depth)).astype(np.float32))
            b = TensorSpec("b", (units,), dtype, data=rng.normal(0, 0.5, units).astype(np.float32))
        else:
            w = TensorSpec("w", (units, depth), dtype, data=rng.integers(-127, 128, (units, depth), dtype=np.int8),
                           scale=0.004, zero_point=0)
            b = TensorSpec("b", (units,), "int32", data=rng.integers(-3000, 3000, units, dtype=np.int32),
                           scale=float(np.float32(0.04) * np.float32(0.004)), zero_point=0)
        return ("FULLY_CONNECTED", [act("x", (rows, depth), dtype, 0.04, -5), w, b],
                [act("y", (rows, units), dtype, 0.2, 3)], dict(fused_activation="RELU"))

    def fc_batch(dtype, rng):
        return fc(dtype, rng, rows=5, depth=64, units=12)

    return dict(avg_pool=pool, global_avg_pool=global_pool, add=add, mean=mean, fully_connected=fc,
                fully_connected_rows=fc_batch)


GLUE = ("avg_pool", "add", "mean", "fully_connected")
MORE_GLUE = ("global_avg_pool", "fully_connected_rows")


def _glue(tmp_path, case, dtype, level):
    _interpreter_or_skip()
    graph = _tflite_graph(tmp_path, *_glue_cases()[case](dtype, np.random.default_rng(len(case))))
    assert kernel_used(graph, graph.ops[0], level) != simd.PORTABLE
    _check(verify_graph(graph, level, runs=3, seed=5, oracle="tflite", footprint=False))


@pytest.mark.parametrize("dtype", ["int8", "float32"])
@pytest.mark.parametrize("case", GLUE)
def test_glue_op_matches_tflite(tmp_path, case, dtype, level):
    _glue(tmp_path, case, dtype, level)


@pytest.mark.slow
@pytest.mark.parametrize("dtype", ["int8", "float32"])
@pytest.mark.parametrize("case", MORE_GLUE)
def test_more_glue_ops_match_tflite(tmp_path, case, dtype, level):
    _glue(tmp_path, case, dtype, level)


# --- whole models --------------------------------------------------------------------------------

MODELS = Path(__file__).resolve().parent.parent.parent / "shared" / "models"


@pytest.mark.parametrize("model", ["kws_ref_model.tflite", "kws_ref_model_float32.tflite"])
def test_kws_matches_tflite(model, level):
    path = MODELS / model
    if not path.is_file():
        pytest.skip(f"{path} not present (needs ../shared)")
    _interpreter_or_skip()
    from dwscodegen.importers import load_model
    graph = load_model(path)
    ported = [op.where() for op in graph.ops if op.type != "Reshape" and op.type != "Softmax"
              and kernel_used(graph, op, level) == simd.PORTABLE]
    assert not ported, f"portable kernels left on {level.name}: {ported}"
    report = _check(verify_graph(graph, level, runs=3, seed=7, oracle="tflite", check_layers=True, footprint=False))
    # float32 layers sum as TFLite's reference kernels do, so up to the softmax (expf) they agree to the bit
    assert all(c.max_abs_err == 0 for op, c in report.layers if op.type != "Softmax"), \
        [(op.where(), c.max_abs_err) for op, c in report.layers if c.max_abs_err]


# --- selection, determinism, refusal -------------------------------------------------------------

def test_accumulator_that_may_leave_int32_keeps_the_portable_kernel():
    target = load_target("x86_64-v4")
    graph = conv_graph(ConvCase(CV, (1, 3, 3, 8), (1, 1), out_channels=4), "int8", seed=6)
    info = common.conv_info(graph, graph.ops[0])
    graph.tensor("b").data[:] = INT32_MAX + 1 - (abs(info.in_offset) + 128) * info.weight_abs_sum()
    assert avx_s8.requant(common.conv_info(graph, graph.ops[0])) is None
    assert kernel_used(graph, graph.ops[0], target) == simd.PORTABLE


def test_variants_are_deterministic_and_need_the_features():
    case = ConvCase(CV, (1, 5, 7, 16), (1, 1), out_channels=24, activation="relu")
    for name in LEVELS:
        target = load_target(name)
        first = [k.source for k in generate_kernels(conv_graph(case, "int8", seed=8), target)]
        assert first == [k.source for k in generate_kernels(conv_graph(case, "int8", seed=8), target)]
        assert "#include <immintrin.h>" in first[0]
    assert "immintrin" not in generate_kernels(conv_graph(case, "int8"), load_target("x86_64"))[0].source


def test_tuner_choices_include_both_levels_on_v4():
    graph = conv_graph(ConvCase(CV, (1, 5, 7, 16), (1, 1), out_channels=24), "int8")
    from dwscodegen.backends.templates import kernel_choices
    choices = kernel_choices(graph, graph.ops[0], load_target("x86_64-v4"))
    assert {"portable", "pointwise_conv2d_s8_avx512vnni_4x64", "pointwise_conv2d_s8_avx2_6x16"} <= set(choices)


def test_host_without_the_isa_is_refused():
    target = load_target("x86_64-v4")
    assert missing_cpu_flags(target, frozenset({"avx2", "fma"})) == [f for f in target.cpu_flags if f not in ("avx2", "fma")]
    with pytest.raises(DwsError, match=r"x86_64-v4.*avx512f.*avx512_vnni.*lower x86 level"):
        require_host_isa(target, frozenset({"sse4_2", "avx", "avx2", "fma"}))
    # verify_graph on this host, for a target that needs a flag no host reports: refused before building
    fake = dataclasses.replace(target, name="x86_64-v4-plus", cpu_flags=target.cpu_flags + ("no_such_cpu_flag",))
    graph = conv_graph(MATRIX[0], "int8")
    with pytest.raises(DwsError, match="no_such_cpu_flag"):
        verify_graph(graph, fake, runs=1)


# --- the tvm backend on the x86 levels -----------------------------------------------------------

@pytest.mark.tvm
@pytest.mark.parametrize("dtype", ["int8", "float32"])
@pytest.mark.parametrize("case", [MATRIX[0], MATRIX[9], MATRIX[12]], ids=ConvCase.id)
def test_tvm_backend_tiles_by_vector_width(case, dtype, level):
    """The tvm backend's convolutions tile their channels by the target's vector width (gcc vectorizes the
    unrolled tile under -march); results stay exact."""
    pytest.importorskip("tvm")
    from dwscodegen.backends.tvm import generate_kernels as tvm_kernels
    from dwscodegen.backends.tvm.backend import vector_lanes
    graph = conv_graph(case, dtype, seed=MATRIX.index(case))
    lanes = vector_lanes(level)
    assert lanes == (16 if "avx512" in level.features else 8)
    if case.kind == CV:
        tile = next(t for t in (lanes, lanes // 2) if case.out_channels % t == 0)
        assert f"acc_ptr[{tile}]" in tvm_kernels(graph, level)[0].source
    _check(verify_graph(graph, level, backend="tvm", runs=2, seed=2, oracle="numpy", footprint=False))
