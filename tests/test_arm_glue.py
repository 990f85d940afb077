"""Cortex-M glue-op variants (simd/arm_glue.py) against the TFLite interpreter's reference kernels, under QEMU:
which kernel each layer gets, and bit-exact outputs (odd depths and row counts, batch 2, one output, saturating
scales)."""
from __future__ import annotations

import numpy as np
import pytest

from dwscodegen.backends.templates import generate_kernels, kernel_used, simd
from dwscodegen.verify import verify_graph
from .support.layers import assert_verified
from .support.targets import target_or_skip

ISA = {"cortex-m4": "dsp", "cortex-m55": "mve", "cortex-m3": "tiled", "cortex-m33": "dsp", "cortex-m7": "dsp"}


def _tflite_graph(tmp_path, name, inputs, outputs, options):
    pytest.importorskip("tflite")
    from dwscodegen.importers import load_model
    from dwscodegen.oracles import tflite_interpreter
    from .support.tflite_builder import build_single_op_model
    if not tflite_interpreter.available():
        pytest.skip("ai-edge-litert not installed")
    path = tmp_path / "op.tflite"
    path.write_bytes(build_single_op_model(name, inputs, outputs, options))
    return load_model(path)


def _fc(rng, rows, depth, units, out_scale=0.2, activation="RELU", w_range=127, x_zp=-5):
    from .support.tflite_builder import TensorSpec
    from .support.tflite_cases import act
    w = TensorSpec("w", (units, depth), "int8", scale=0.004, zero_point=0,
                   data=rng.integers(-w_range, w_range + 1, (units, depth), dtype=np.int8))
    b = TensorSpec("b", (units,), "int32", data=rng.integers(-3000, 3000, units, dtype=np.int32),
                   scale=float(np.float32(0.04) * np.float32(0.004)), zero_point=0)
    return ("FULLY_CONNECTED", [act("x", (rows, depth), "int8", 0.04, x_zp), w, b],
            [act("y", (rows, units), "int8", out_scale, 3)], dict(fused_activation=activation))


FC_CASES = {
    "odd": dict(rows=2, depth=67, units=13),                  # depth % 4, % 16 and units % 4 all nonzero; batch 2
    "round": dict(rows=1, depth=64, units=8),                 # whole words / vectors and row blocks only
    "tiny": dict(rows=1, depth=3, units=1),                   # less than one word, one output
    "saturating": dict(rows=3, depth=40, units=6, out_scale=0.001, activation="NONE", x_zp=127),
    "wide": dict(rows=1, depth=300, units=21, w_range=1),
}


def _check_fc(tmp_path, case, target_name, seed=3):
    target = target_or_skip(target_name)
    graph = _tflite_graph(tmp_path, *_fc(np.random.default_rng(len(case)), **FC_CASES[case]))
    name = f"fully_connected_s8_{ISA[target_name]}_4r"
    assert kernel_used(graph, graph.ops[0], target) == name
    source = "\n".join(k.source for k in generate_kernels(graph, target))
    assert f"kernel {name}" in source
    assert_verified(verify_graph(graph, target, runs=3, seed=seed, oracle="tflite", footprint=False))


@pytest.mark.parametrize("target_name", ["cortex-m4", "cortex-m55", "cortex-m3"])
def test_fully_connected_variant_matches_tflite(tmp_path, target_name):
    _check_fc(tmp_path, "odd", target_name)


@pytest.mark.slow
@pytest.mark.parametrize("case", ["round", "tiny", "saturating", "wide"])
@pytest.mark.parametrize("target_name", ["cortex-m4", "cortex-m55", "cortex-m3", "cortex-m33"])
def test_fully_connected_variant_cases_match_tflite(tmp_path, case, target_name):
    _check_fc(tmp_path, case, target_name)


def test_fully_connected_portable_when_forced(tmp_path, monkeypatch):
    """The tuner's "portable" choice and the portable switch still give the portable kernel."""
    target = target_or_skip("cortex-m4")
    graph = _tflite_graph(tmp_path, *_fc(np.random.default_rng(0), **FC_CASES["odd"]))
    assert kernel_used(graph, graph.ops[0], target, simd.PORTABLE) == simd.PORTABLE
    monkeypatch.setenv(simd.PORTABLE_ENV, "1")
    assert kernel_used(graph, graph.ops[0], target) == simd.PORTABLE
