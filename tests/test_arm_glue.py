"""Cortex-M glue-op variants (simd/arm_glue.py) against the TFLite interpreter's reference kernels, under QEMU:
which kernel each layer gets, and bit-exact outputs (odd depths and row counts, batch 2, one output, saturating
scales)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dwscodegen.backends.templates import generate_kernels, kernel_used, simd
from dwscodegen.verify import verify_graph
from .support import glue_cases as glue
from .support.layers import assert_verified
from .support.targets import target_or_skip

ISA = {"cortex-m4": "dsp", "cortex-m55": "mve", "cortex-m3": "tiled", "cortex-m33": "dsp", "cortex-m7": "dsp"}


def _check_fc(tmp_path, case, target_name, seed=3):
    target = target_or_skip(target_name)
    graph = glue.single_op_graph(tmp_path, *glue.fully_connected(np.random.default_rng(len(case)), **glue.FC_CASES[case]))
    name = f"fully_connected_s8_{ISA[target_name]}_4r"
    assert kernel_used(graph, graph.ops[0], target) == name
    source = "\n".join(k.source for k in generate_kernels(graph, target))
    assert f"kernel {name}" in source
    assert_verified(verify_graph(graph, target, runs=3, seed=seed, oracle="tflite", footprint=False))


@pytest.mark.parametrize("target_name", ["cortex-m4", "cortex-m55", "cortex-m3"])
def test_fully_connected_variant_matches_tflite(tmp_path, target_name):
    _check_fc(tmp_path, "odd", target_name)


@pytest.mark.slow
@pytest.mark.parametrize("case", ["round", "tiny", "saturating", "wide", "per_channel", "no_bias"])
@pytest.mark.parametrize("target_name", ["cortex-m4", "cortex-m55", "cortex-m3", "cortex-m33"])
def test_fully_connected_variant_cases_match_tflite(tmp_path, case, target_name):
    _check_fc(tmp_path, case, target_name)


def test_fully_connected_portable_when_forced(tmp_path, monkeypatch):
    """The tuner's "portable" choice and the portable switch still give the portable kernel."""
    target = target_or_skip("cortex-m4")
    graph = glue.single_op_graph(tmp_path, *glue.fully_connected(np.random.default_rng(0), **glue.FC_CASES["odd"]))
    assert kernel_used(graph, graph.ops[0], target, simd.PORTABLE) == simd.PORTABLE
    monkeypatch.setenv(simd.PORTABLE_ENV, "1")
    assert kernel_used(graph, graph.ops[0], target) == simd.PORTABLE


MUL_CASES = {
    "se": dict(shape_a=(1, 1, 1, 6), shape_b=(1, 4, 5, 6), out_shape=(1, 4, 5, 6)),            # squeeze-excite
    "se_batch": dict(shape_a=(2, 5, 3, 19), shape_b=(2, 1, 1, 19), out_shape=(2, 5, 3, 19)),
    "se_shared": dict(shape_a=(2, 3, 3, 5), shape_b=(1, 1, 1, 5), out_shape=(2, 3, 3, 5)),       # one vector, 2 images
    "same": dict(shape_a=(1, 3, 7, 5), shape_b=(1, 3, 7, 5), out_shape=(1, 3, 7, 5), activation="NONE"),
    "one": dict(shape_a=(1, 1), shape_b=(1, 1), out_shape=(1, 1)),
    "rows": dict(shape_a=(2, 3, 1, 4), shape_b=(1, 1, 6, 1), out_shape=(2, 3, 6, 4), qa=(0.05, 3)),
    "tiny_scale": dict(shape_a=(1, 2, 2, 9), shape_b=(1, 1, 1, 9), out_shape=(1, 2, 2, 9),
                       qa=(0.5, 120), qb=(0.9, -127), qy=(1e-4, 0), activation="NONE"),    # every output saturates
    "big_scale": dict(shape_a=(1, 2, 2, 9), shape_b=(1, 1, 1, 9), out_shape=(1, 2, 2, 9),
                      qa=(1e-4, 0), qb=(2e-4, 0), qy=(0.5, 0), activation="NONE"),
}


# the broadcast forms mul_s8_mve has; the others take the DSP variant on M55 too
MVE_FORMS = ("se", "se_batch", "se_shared", "same", "one", "tiny_scale", "big_scale")


def _check_mul(tmp_path, case, target_name, expected=None):
    """case: a name in MUL_CASES or the keyword arguments of _mul."""
    target = target_or_skip(target_name)
    graph = glue.single_op_graph(tmp_path, *glue.mul(**(MUL_CASES[case] if isinstance(case, str) else case)))
    if expected is None:
        expected = "mul_s8_mve" if "mve" in target.features and case in MVE_FORMS else "mul_s8_dsp"
    assert kernel_used(graph, graph.ops[0], target) == expected
    assert_verified(verify_graph(graph, target, runs=3, seed=4, oracle="tflite", footprint=False))


@pytest.mark.parametrize("target_name", ["cortex-m4", "cortex-m55"])
def test_mul_variant_matches_tflite(tmp_path, target_name):
    _check_mul(tmp_path, "se_batch", target_name)


@pytest.mark.slow
@pytest.mark.parametrize("case", ["se", "se_shared", "same", "one", "rows", "tiny_scale", "big_scale"])
@pytest.mark.parametrize("target_name", ["cortex-m4", "cortex-m55", "cortex-m7"])
def test_mul_variant_cases_match_tflite(tmp_path, case, target_name):
    _check_mul(tmp_path, case, target_name)


def test_mul_on_cortex_m3_is_portable(tmp_path):
    """No SMMLAR without the DSP extension: the portable kernel, still exact."""
    _check_mul(tmp_path, "se", "cortex-m3", expected=simd.PORTABLE)


def _add(shape_a, shape_b, out_shape, qa=(0.05, -3), qb=(0.03, 7), qy=(0.07, -1), activation="RELU", const_b=False):
    from .support.tflite_builder import TensorSpec
    from .support.tflite_cases import act
    b = act("c", shape_b, "int8", *qb)
    if const_b:
        b = TensorSpec("c", shape_b, "int8", scale=qb[0], zero_point=qb[1],
                       data=np.random.default_rng(2).integers(-128, 128, shape_b, dtype=np.int8))
    return ("ADD", [act("a", shape_a, "int8", *qa), b], [act("y", out_shape, "int8", *qy)],
            dict(fused_activation=activation))


ADD_CASES = {
    "same": dict(shape_a=(2, 4, 5, 6), shape_b=(2, 4, 5, 6), out_shape=(2, 4, 5, 6)),       # residual, batch 2
    "equal_scales": dict(shape_a=(1, 3, 3, 7), shape_b=(1, 3, 3, 7), out_shape=(1, 3, 3, 7), qa=(0.03, 7),
                         activation="NONE"),                                                 # input shifts of 0
    "channel": dict(shape_a=(1, 3, 5, 11), shape_b=(1, 1, 1, 11), out_shape=(1, 3, 5, 11)),
    "constant": dict(shape_a=(1, 2, 3, 5), shape_b=(1, 1, 1, 5), out_shape=(1, 2, 3, 5), const_b=True),
    "one": dict(shape_a=(1,), shape_b=(1,), out_shape=(1,)),
    "extreme": dict(shape_a=(1, 4, 9), shape_b=(1, 4, 9), out_shape=(1, 4, 9), qa=(1e-3, 127), qb=(2.0, -128),
                    qy=(1e-2, 0), activation="NONE"),
}


def _check_add(tmp_path, case, target_name, expected="add_s8_dsp"):
    target = target_or_skip(target_name)
    graph = glue.single_op_graph(tmp_path, *_add(**ADD_CASES[case]))
    assert kernel_used(graph, graph.ops[0], target) == expected
    assert_verified(verify_graph(graph, target, runs=3, seed=6, oracle="tflite", footprint=False))


@pytest.mark.parametrize("target_name", ["cortex-m4", "cortex-m55"])
def test_add_variant_matches_tflite(tmp_path, target_name):
    _check_add(tmp_path, "same", target_name)


@pytest.mark.slow
@pytest.mark.parametrize("case", ["equal_scales", "channel", "constant", "one", "extreme"])
@pytest.mark.parametrize("target_name", ["cortex-m4", "cortex-m55", "cortex-m33"])
def test_add_variant_cases_match_tflite(tmp_path, case, target_name):
    _check_add(tmp_path, case, target_name)


def _mean(shape, qi=(0.05, -3), qo=(0.02, 1), keep_dims=True):
    from .support.tflite_cases import act
    out_shape = (shape[0], 1, 1, shape[3]) if keep_dims else (shape[0], shape[3])
    return ("MEAN", [act("x", shape, "int8", *qi)], [act("y", out_shape, "int8", *qo)],
            dict(axis=[1, 2], keep_dims=keep_dims))


MEAN_CASES = {
    "blocks": dict(shape=(2, 17, 19, 10)),                   # 323 positions: two SXTAB16 blocks; C % 4 = 2; batch 2
    "small": dict(shape=(1, 3, 3, 4), keep_dims=False),
    "wide": dict(shape=(1, 24, 24, 37), qi=(0.02, 127), qo=(0.001, -128)),     # saturating output
}


def _check_mean(tmp_path, case, target_name, input_sets=None):
    target = target_or_skip(target_name)
    graph = glue.single_op_graph(tmp_path, *_mean(**MEAN_CASES[case]))
    assert kernel_used(graph, graph.ops[0], target) == "mean_s8_dsp"
    assert_verified(verify_graph(graph, target, runs=3, seed=7, oracle="tflite", footprint=False,
                                 input_sets=input_sets))


@pytest.mark.parametrize("target_name", ["cortex-m4", "cortex-m55"])
def test_mean_variant_matches_tflite(tmp_path, target_name):
    _check_mean(tmp_path, "blocks", target_name)


def test_mean_variant_extreme_inputs(tmp_path):
    """Every input -128 (then 127): each int16 lane of a 256-position block reaches -32768 (32512), the bound
    the block size is chosen for."""
    shape = MEAN_CASES["blocks"]["shape"]
    sets = [{"x": np.full(shape, v, np.int8)} for v in (-128, 127)]
    _check_mean(tmp_path, "blocks", "cortex-m4", input_sets=sets)


@pytest.mark.slow
@pytest.mark.parametrize("case", ["small", "wide"])
@pytest.mark.parametrize("target_name", ["cortex-m4", "cortex-m55", "cortex-m7"])
def test_mean_variant_cases_match_tflite(tmp_path, case, target_name):
    _check_mean(tmp_path, case, target_name)


def test_mul_without_an_exact_plan_is_portable(tmp_path):
    """input1_scale * input2_scale / output_scale in [2^-32, 2^-31): a right shift of 31, which
    the SMMLAR and VRSHL forms cannot take, so the layer keeps the portable kernel (and is still exact)."""
    case = dict(shape_a=(1, 2, 2, 5), shape_b=(1, 2, 2, 5), out_shape=(1, 2, 2, 5), qa=(1e-4, 0), qb=(1e-4, 0),
                qy=(28.6, 0), activation="NONE")
    for name in ("cortex-m4", "cortex-m55"):
        _check_mul(tmp_path, case, name, expected=simd.PORTABLE)


ZOO = Path("/work/shared/models/zoo")
GLUE = ("FullyConnected", "Mul", "Add", "Mean")


@pytest.mark.parametrize("model", ["effb0_96_s8", "mbv2_a035_96_s8", "mbv3s_96_s8"])
@pytest.mark.parametrize("target_name", ["cortex-m4", "cortex-m55"])
def test_zoo_glue_ops_get_variants(model, target_name):
    """Every int8 FullyConnected, Mul, Add and Mean of the zoo's int8 models gets a variant, except those beside a
    one-element constant, which are 256-entry lookup tables on every target (generation only)."""
    path = ZOO / f"{model}.tflite"
    if not path.exists():
        pytest.skip(f"{path} not present")
    from dwscodegen.importers import load_model
    from dwscodegen.int8_elementwise import has_table
    graph = load_model(path)
    target = target_or_skip(target_name)
    portable = [op.where() for op in graph.ops if op.type in GLUE and graph.op_dtype(op) == "int8"
                and not has_table(graph, op) and kernel_used(graph, op, target) == simd.PORTABLE]
    assert not portable, portable


@pytest.mark.parametrize("op", ["LOGISTIC", "HARD_SWISH"])
def test_lookup_table_variant_matches_tflite(tmp_path, op):
    """37 values (two whole vectors and a predicated tail of 5), batch 2."""
    from .support.tflite_cases import act
    target = target_or_skip("cortex-m55")
    out_q = {"LOGISTIC": (1 / 256, -128)}.get(op, (0.04, -20))
    graph = glue.single_op_graph(tmp_path, op, [act("x", (2, 37), "int8", 0.06, -7)], [act("y", (2, 37), "int8", *out_q)], {})
    assert kernel_used(graph, graph.ops[0], target) == "lookup_table_s8_mve"
    assert_verified(verify_graph(graph, target, runs=3, seed=8, oracle="tflite", footprint=False))


@pytest.mark.slow
@pytest.mark.parametrize("op", ["TANH", "LEAKY_RELU", "MUL"])
def test_more_lookup_table_variants_match_tflite(tmp_path, op):
    from .support.tflite_builder import TensorSpec
    from .support.tflite_cases import act
    target = target_or_skip("cortex-m55")
    inputs = [act("x", (1, 1), "int8", 0.06, -7)]
    if op == "MUL":         # beside a one-element constant: a table
        inputs.append(TensorSpec("c", (1,), "int8", scale=0.01, zero_point=3, data=np.array([-90], np.int8)))
    out_q = {"TANH": (1 / 128, 0)}.get(op, (0.04, -20))
    graph = glue.single_op_graph(tmp_path, op, inputs, [act("y", (1, 1), "int8", *out_q)],
                          dict(alpha=0.2) if op == "LEAKY_RELU" else {})
    assert kernel_used(graph, graph.ops[0], target) == "lookup_table_s8_mve"
    assert_verified(verify_graph(graph, target, runs=3, seed=8, oracle="tflite", footprint=False))
