"""Small ONNX models for exactness cases (rounding ties) shared by the ONNX and TVM tests."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

def tie_model(path: Path, kind: str) -> Path:
    """x -> QuantizeLinear (scale 1) -> QLinearConv 3x3 or QLinearMatMul with x_scale * w_scale / y_scale = 0.5
    and small weights -> DequantizeLinear: half of the accumulators land exactly on .5, where round half to
    even (onnxruntime) and half away from zero (TFLite) part."""
    rng = np.random.default_rng(1)
    one, zero, half = (numpy_helper.from_array(v, n) for v, n in (
        (np.float32(1.0), "one"), (np.int8(0), "zero"), (np.float32(0.5), "half")))
    if kind == "conv":
        w = numpy_helper.from_array(rng.integers(-2, 3, (8, 4, 3, 3), dtype=np.int8), "w")
        node = helper.make_node("QLinearConv", ["xq", "one", "zero", "w", "half", "zero", "one", "zero"], ["yq"],
                                name="tie_conv", kernel_shape=[3, 3], pads=[1, 1, 1, 1])
        x_shape, y_shape = [1, 4, 5, 5], [1, 8, 5, 5]
    else:
        w = numpy_helper.from_array(rng.integers(-3, 4, (16, 8), dtype=np.int8), "w")
        node = helper.make_node("QLinearMatMul", ["xq", "one", "zero", "w", "half", "zero", "one", "zero"], ["yq"],
                                name="tie_fc")
        x_shape, y_shape = [1, 16], [1, 8]
    nodes = [helper.make_node("QuantizeLinear", ["x", "one", "zero"], ["xq"], name="q"), node,
             helper.make_node("DequantizeLinear", ["yq", "one", "zero"], ["y"], name="dq")]
    graph = helper.make_graph(nodes, "ties", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, y_shape)],
                              initializer=[one, zero, half, w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path
