"""Every supported TFLite op end to end: a single-op .tflite file (built with the tflite flatbuffer builder)
is imported, generated as C, compiled, run on x86, and compared with the TFLite interpreter's reference
kernels on the same file (int8 bit-exact, float32 within tolerance). Bad files give clear errors.
"""
from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from dwscodegen.cli import main
from dwscodegen.importers import load_model
from dwscodegen.oracles import tflite_interpreter
from dwscodegen.targets import load_target
from dwscodegen.verify import verify_graph

pytestmark = pytest.mark.skipif(not tflite_interpreter.available(), reason="ai-edge-litert not installed")
from .support.layers import assert_verified  # noqa: E402
from .support.tflite_builder import build_single_op_model  # noqa: E402
from .support.tflite_cases import OPS, RNG_SEED, act, bias, conv_weights, single_op  # noqa: E402

@pytest.mark.parametrize("dtype", ["int8", "float32"])
@pytest.mark.parametrize("op", OPS)
def test_single_op_tflite_end_to_end(tmp_path, op, dtype):
    rng = np.random.default_rng(RNG_SEED)
    name, inputs, outputs, options = single_op(op, dtype, rng)
    path = tmp_path / f"{op.lower()}_{dtype}.tflite"
    path.write_bytes(build_single_op_model(name, inputs, outputs, options))
    graph = load_model(path)
    report = verify_graph(graph, load_target("x86_64"), runs=3, seed=2, oracle="tflite")
    assert report.oracle == "tflite"
    assert_verified(report)


def test_quantize_dequantize_at_graph_edges(tmp_path):
    """A float-in/float-out model whose middle is int8: QUANTIZE and DEQUANTIZE ops at the edges."""
    for op, inp, out in (("QUANTIZE", act("x", (1, 30), "float32"), act("y", (1, 30), "int8", 0.02, 3)),
                         ("DEQUANTIZE", act("x", (1, 30), "int8", 0.02, 3), act("y", (1, 30), "float32"))):
        path = tmp_path / f"{op.lower()}.tflite"
        path.write_bytes(build_single_op_model(op, [inp], [out], {}))
        report = verify_graph(load_model(path), load_target("x86_64"), runs=3, seed=1, oracle="tflite")
        assert report.ok, [c.summary() for c in report.comparisons]


@pytest.mark.parametrize("corrupt", ["empty", "truncated", "not_tflite", "garbage_offsets"])
def test_corrupt_tflite_is_a_clear_error(tmp_path, corrupt):
    rng = np.random.default_rng(0)
    good = build_single_op_model(*single_op("CONV_2D", "int8", rng))
    data = {"empty": b"", "truncated": good[: len(good) // 3], "not_tflite": b"PK\x03\x04" + good[4:],
            "garbage_offsets": good[:8] + bytes(rng.integers(0, 256, len(good) - 8, dtype=np.uint8))}[corrupt]
    path = tmp_path / "bad.tflite"
    path.write_bytes(data)
    result = CliRunner().invoke(main, ["generate", str(path), "-t", "x86_64", "-o", str(tmp_path / "out")])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output and str(path) in result.output
    assert "TFLite" in result.output or "tflite" in result.output
    assert not (tmp_path / "out").exists()


def test_unsupported_op_names_operator(tmp_path):
    x = act("x", (1, 8), "float32")
    path = tmp_path / "floor.tflite"
    # FLOOR is a real TFLite op the importer does not support.
    path.write_bytes(build_single_op_model("FLOOR", [x], [act("y", (1, 8), "float32")], {}))
    result = CliRunner().invoke(main, ["verify", str(path), "-t", "x86_64"])
    assert result.exit_code == 1
    assert "FLOOR x1 (operator 0)" in result.output and "not supported" in result.output


def test_hybrid_conv_matches_interpreter(tmp_path):
    """float32 activations with int8 per-channel weights: TFLite's hybrid conv, reproduced exactly."""
    rng = np.random.default_rng(0)
    w = conv_weights(rng, (4, 3, 3, 2), "int8", 0)
    path = tmp_path / "hybrid.tflite"
    path.write_bytes(build_single_op_model("CONV_2D", [act("x", (1, 7, 6, 2), "float32"), w, bias(rng, 4, "float32")],
                                           [act("y", (1, 4, 3, 4), "float32")],
                                           dict(padding="SAME", stride_h=2, stride_w=2, fused_activation="RELU")))
    report = verify_graph(load_model(path), load_target("x86_64"), runs=3, seed=3, oracle="tflite")
    assert report.ok, [c.summary() for c in report.comparisons]


def test_hybrid_transpose_conv_is_rejected_with_reason(tmp_path):
    """Hybrid depthwise is supported (tests/test_spatial_ops.py); hybrid TRANSPOSE_CONV is not, and says so."""
    rng = np.random.default_rng(0)
    w = conv_weights(rng, (2, 3, 3, 2), "int8", 0)
    path = tmp_path / "hybrid_tconv.tflite"
    path.write_bytes(build_single_op_model("TRANSPOSE_CONV",
                                           [act("x", (1, 3, 3, 2), "float32"), w, bias(rng, 2, "float32")],
                                           [act("y", (1, 6, 6, 2), "float32")], dict(padding="SAME", stride_h=2,
                                                                                     stride_w=2)))
    result = CliRunner().invoke(main, ["generate", str(path), "-t", "x86_64", "-o", str(tmp_path / "o")])
    assert result.exit_code == 1 and "hybrid" in result.output
    assert "operator 0 (TRANSPOSE_CONV" in result.output and not (tmp_path / "o").exists()
