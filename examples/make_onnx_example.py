"""Build a small MobileNetV2-style ONNX model and its int8 QDQ quantization, deterministically.

    python examples/make_onnx_example.py

writes, next to this file:
  * mbv2_small.onnx      float32, NCHW: conv 3x3 s2 + relu6 (Clip 0..6), an inverted-residual block
                         (pw expand + relu6, dw 3x3 + relu6, pw project, Add), GlobalAveragePool,
                         Flatten, Gemm, Softmax; weights from a seeded generator;
  * mbv2_small_qdq.onnx  the same quantized by onnxruntime's static quantizer: QuantFormat.QDQ,
                         int8 activations and weights, per-channel weights, calibrated with MinMax on
                         seeded inputs.

`dwscodegen verify examples/mbv2_small_qdq.onnx -t x86_64` imports either one (NHWC at the C API).
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = Path(__file__).resolve().parent
FLOAT_MODEL = HERE / "mbv2_small.onnx"
QDQ_MODEL = HERE / "mbv2_small_qdq.onnx"
INPUT_SHAPE = (1, 3, 32, 32)
OPSET = 13
IR_VERSION = 8


def build_float_model(seed: int = 0) -> onnx.ModelProto:
    rng = np.random.default_rng(seed)
    inits, nodes = [], []

    def const(name: str, value: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(np.asarray(value, dtype=np.float32), name))
        return name

    def conv(name: str, x: str, cin: int, cout: int, k: int, stride: int = 1, group: int = 1,
             relu6: bool = False) -> str:
        fan_in = cin // group * k * k
        w = rng.normal(0.0, np.sqrt(2.0 / fan_in), size=(cout, cin // group, k, k))
        b = rng.normal(0.0, 0.1, size=cout)
        out = f"{name}_out"
        nodes.append(helper.make_node("Conv", [x, const(f"{name}_w", w), const(f"{name}_b", b)], [out], name=name,
                                      kernel_shape=[k, k], strides=[stride, stride], pads=[k // 2] * 4,
                                      group=group))
        if not relu6:
            return out
        nodes.append(helper.make_node("Clip", [out, "relu6_min", "relu6_max"], [f"{name}_relu6"],
                                      name=f"{name}_clip"))
        return f"{name}_relu6"

    const("relu6_min", np.array(0.0))
    const("relu6_max", np.array(6.0))
    x = conv("stem", "input", 3, 16, 3, stride=2, relu6=True)                  # [1,16,16,16]
    e = conv("expand", x, 16, 64, 1, relu6=True)                               # [1,64,16,16]
    d = conv("dw", e, 64, 64, 3, group=64, relu6=True)                         # depthwise
    p = conv("project", d, 64, 16, 1)                                          # linear bottleneck
    nodes.append(helper.make_node("Add", [x, p], ["residual"], name="residual"))
    nodes.append(helper.make_node("GlobalAveragePool", ["residual"], ["pool"], name="pool"))
    nodes.append(helper.make_node("Flatten", ["pool"], ["flat"], name="flatten", axis=1))
    const("fc_w", rng.normal(0.0, np.sqrt(1.0 / 16), size=(10, 16)))
    const("fc_b", rng.normal(0.0, 0.1, size=10))
    nodes.append(helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["logits"], name="fc", transB=1))
    nodes.append(helper.make_node("Softmax", ["logits"], ["probs"], name="softmax", axis=-1))
    graph = helper.make_graph(
        nodes, "mbv2_small",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, list(INPUT_SHAPE))],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, [1, 10])], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="dwscodegen-examples")
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model, full_check=True)
    return model


class SeededReader:
    """Calibration data: seeded inputs in the range the float model sees (N(0, 1))."""

    def __init__(self, seed: int = 1, count: int = 16):
        rng = np.random.default_rng(seed)
        self.batches = iter([{"input": rng.normal(0.0, 1.0, size=INPUT_SHAPE).astype(np.float32)}
                             for _ in range(count)])

    def get_next(self):
        return next(self.batches, None)

    def rewind(self):   # pragma: no cover - some onnxruntime versions call it
        pass


def quantize(float_path: Path, qdq_path: Path) -> None:
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    quantize_static(str(float_path), str(qdq_path), SeededReader(), quant_format=QuantFormat.QDQ,
                    activation_type=QuantType.QInt8, weight_type=QuantType.QInt8, per_channel=True,
                    calibrate_method=CalibrationMethod.MinMax)


def main() -> int:
    model = build_float_model()
    onnx.save(model, str(FLOAT_MODEL))
    quantize(FLOAT_MODEL, QDQ_MODEL)
    for path in (FLOAT_MODEL, QDQ_MODEL):
        m = onnx.load(str(path))
        ops = {}
        for n in m.graph.node:
            ops[n.op_type] = ops.get(n.op_type, 0) + 1
        print(f"{path.name}: {path.stat().st_size} bytes, {len(m.graph.node)} nodes: "
              + ", ".join(f"{k} x{v}" for k, v in ops.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
