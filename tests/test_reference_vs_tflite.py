"""The NumPy reference against an oracle nobody here wrote: TFLite's reference kernels (BUILTIN_REF).

Single-op models are built with the tflite flatbuffer builder from the very same tensors the IR holds.
int8 must be bit-exact; float32 within the verifier's tolerance.
"""
from __future__ import annotations

import numpy as np
import pytest

from dwscodegen.compare import compare
from dwscodegen.reference.graph import run_graph
from .support.layers import ConvCase, add_graph, conv_graph

pytest.importorskip("ai_edge_litert")
from .support.tflite_builder import TensorSpec, build_single_op_model, run_reference  # noqa: E402

DW, CONV = "DepthwiseConv2D", "Conv2D"
CASES = [
    ConvCase(DW, (1, 9, 9, 8), (3, 3)),
    ConvCase(DW, (1, 10, 9, 8), (3, 3), stride=(2, 2), activation="relu6"),
    ConvCase(DW, (1, 9, 11, 6), (3, 3), padding="VALID", activation="relu"),
    ConvCase(DW, (1, 12, 12, 4), (3, 3), dilation=(2, 2), activation="relu6"),
    ConvCase(DW, (1, 7, 5, 3), (3, 3), multiplier=2, stride=(2, 1)),
    ConvCase(DW, (1, 8, 8, 4), (5, 5), stride=(2, 2), per_channel=False, in_zp=100, out_zp=-100),
    ConvCase(DW, (1, 6, 6, 16), (3, 3), bias=False, activation="relu_n1_to_1"),
    ConvCase(CONV, (1, 8, 8, 8), (1, 1), out_channels=16, activation="relu6"),
    ConvCase(CONV, (1, 9, 7, 3), (3, 3), out_channels=5, stride=(2, 2)),
    ConvCase(CONV, (1, 49, 10, 1), (10, 4), out_channels=8, stride=(2, 2), activation="relu"),
    ConvCase(CONV, (1, 10, 10, 4), (3, 3), out_channels=6, dilation=(2, 2), padding="VALID", in_zp=-128),
    ConvCase(CONV, (1, 6, 6, 12), (1, 1), out_channels=7, stride=(2, 2), per_channel=False),
]
TFLITE_ACT = {"none": "NONE", "relu": "RELU", "relu6": "RELU6", "relu_n1_to_1": "RELU_N1_TO_1"}


def spec(t, quant_axis=0) -> TensorSpec:
    q = t.quant
    return TensorSpec(t.name, t.shape, t.dtype, data=t.data,
                      scale=None if q is None else [float(s) for s in q.scale] if q.per_channel else float(q.scale[0]),
                      zero_point=None if q is None else [int(z) for z in q.zero_point] if q.per_channel
                      else int(q.zero_point[0]),
                      quantized_dimension=q.axis if q is not None and q.per_channel else quant_axis)


def tflite_conv(graph, case: ConvCase) -> bytes:
    op = graph.ops[0]
    ins = [spec(graph.tensor(n)) for n in op.inputs]
    options = dict(padding=case.padding, stride_h=case.stride[0], stride_w=case.stride[1],
                   dilation_h=case.dilation[0], dilation_w=case.dilation[1],
                   fused_activation=TFLITE_ACT[case.activation])
    if case.kind == DW:
        options["depth_multiplier"] = case.multiplier
    name = "DEPTHWISE_CONV_2D" if case.kind == DW else "CONV_2D"
    return build_single_op_model(name, ins, [spec(graph.tensor("y"))], options)


@pytest.mark.parametrize("dtype", ["int8", "float32"])
@pytest.mark.parametrize("case", CASES, ids=ConvCase.id)
def test_conv_reference_matches_tflite(case, dtype):
    graph = conv_graph(case, dtype, seed=CASES.index(case))
    model = tflite_conv(graph, case)
    rng = np.random.default_rng(7)
    for _ in range(3):
        if dtype == "int8":
            x = rng.integers(-128, 128, case.in_shape, dtype=np.int8)
        else:
            x = rng.normal(0, 1, case.in_shape).astype(np.float32)
        (expected,) = run_reference(model, [x])
        got = run_graph(graph, {"x": x})["y"]
        result = compare("y", got, expected)
        assert result.ok, result.summary()
        if dtype == "int8":   # the case must exercise requantization, not just saturate
            assert len(np.unique(expected)) > 20 or case.activation != "none"


@pytest.mark.parametrize("dtype", ["int8", "float32"])
@pytest.mark.parametrize("activation", ["none", "relu6"])
def test_add_reference_matches_tflite(dtype, activation):
    shape = (1, 5, 7, 6)
    graph = add_graph(shape, dtype, activation, seed=3)
    a, b, y = (spec(graph.tensor(n)) for n in ("a", "b", "y"))
    model = build_single_op_model("ADD", [a, b], [y], {"fused_activation": TFLITE_ACT[activation]})
    rng = np.random.default_rng(11)
    for _ in range(3):
        if dtype == "int8":
            xa, xb = (rng.integers(-128, 128, shape, dtype=np.int8) for _ in range(2))
        else:
            xa, xb = (rng.normal(0, 3, shape).astype(np.float32) for _ in range(2))
        (expected,) = run_reference(model, [xa, xb])
        result = compare("y", run_graph(graph, {"a": xa, "b": xb})["y"], expected)
        assert result.ok, result.summary()
