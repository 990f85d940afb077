"""Single-op int8 glue models for the glue-variant tests of both roads and x86 (test_arm_glue, test_tvm_simd_glue,
test_x86_elementwise): the .tflite file built and imported, and the FullyConnected and Mul operands they share."""
from __future__ import annotations

import numpy as np
import pytest

from .tflite_builder import TensorSpec
from .tflite_cases import act


def single_op_graph(tmp_path, name, inputs, outputs, options):
    """The imported graph of a one-op .tflite model; skips where the interpreter (the oracle) is missing."""
    pytest.importorskip("tflite")
    from dwscodegen.importers import load_model
    from dwscodegen.oracles import tflite_interpreter
    from .tflite_builder import build_single_op_model
    if not tflite_interpreter.available():
        pytest.skip("ai-edge-litert not installed")
    path = tmp_path / "op.tflite"
    path.write_bytes(build_single_op_model(name, inputs, outputs, options))
    return load_model(path)


def fully_connected(rng, rows, depth, units, out_scale=0.2, activation="RELU", w_range=127, x_zp=-5,
                    per_channel=False, with_bias=True):
    """(op, inputs, outputs, options) of an int8 FULLY_CONNECTED of `rows` rows of `depth` into `units`."""
    data = rng.integers(-w_range, w_range + 1, (units, depth), dtype=np.int8)
    if per_channel:
        w = TensorSpec("w", (units, depth), "int8", data=data, scale=[float(s) for s in rng.uniform(0.002, 0.008, units)],
                       zero_point=[0] * units, quantized_dimension=0)
    else:
        w = TensorSpec("w", (units, depth), "int8", scale=0.004, zero_point=0, data=data)
    b = TensorSpec("b", (units,), "int32", data=rng.integers(-3000, 3000, units, dtype=np.int32),
                   scale=float(np.float32(0.04) * np.float32(0.004)), zero_point=0) if with_bias else None
    return ("FULLY_CONNECTED", [act("x", (rows, depth), "int8", 0.04, x_zp), w, b],
            [act("y", (rows, units), "int8", out_scale, 3)], dict(fused_activation=activation))


FC_CASES = {
    "odd": dict(rows=2, depth=67, units=13),                  # depth % 4, % 16 and units % 4 all nonzero; batch 2
    "round": dict(rows=1, depth=64, units=8),                 # whole words / vectors and row blocks only
    "tiny": dict(rows=1, depth=3, units=1),                   # less than one word, one output
    "saturating": dict(rows=3, depth=40, units=6, out_scale=0.001, activation="NONE", x_zp=127),
    "wide": dict(rows=1, depth=300, units=21, w_range=1),
    "per_channel": dict(rows=2, depth=33, units=7, per_channel=True),
    "no_bias": dict(rows=1, depth=18, units=5, with_bias=False),
}


def mul(shape_a, shape_b, out_shape, qa=(0.004, -128), qb=(0.03, 7), qy=(0.002, -5), activation="RELU6"):
    """(op, inputs, outputs, options) of an int8 MUL of two activations (any broadcast of the two shapes)."""
    return ("MUL", [act("a", shape_a, "int8", *qa), act("c", shape_b, "int8", *qb)],
            [act("y", out_shape, "int8", *qy)], dict(fused_activation=activation))
