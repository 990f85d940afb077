"""Small ONNX models shared by the ONNX and TVM tests (rounding ties, the ops torch exports write), the
QDQ quantizer seeded, and a layer-by-layer comparison with onnxruntime."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from dwscodegen.oracles.onnxruntime_session import run_onnxruntime
from dwscodegen.reference.ops import KERNELS


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


# ------------------------------------------------------------------------------------ model builders

def save_model(path: Path, nodes, inits: dict, inputs: dict, outputs: dict, opset: int = 13) -> Path:
    """A float32 model: `inputs` / `outputs` map names to shapes, `inits` names to arrays."""
    graph = helper.make_graph(
        nodes, path.stem, [helper.make_tensor_value_info(k, TensorProto.FLOAT, list(v)) for k, v in inputs.items()],
        [helper.make_tensor_value_info(k, TensorProto.FLOAT, list(v)) for k, v in outputs.items()],
        initializer=[numpy_helper.from_array(np.asarray(v), k) for k, v in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def quantize_qdq(src: Path, dst: Path, seed: int = 0, per_channel: bool = True, count: int = 8,
                 activations: str = "int8") -> Path:
    """onnxruntime's static quantizer (QDQ, int8 weights, int8 or uint8 activations: its default is uint8)
    calibrated on seeded N(0, 1) inputs."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    model = onnx.load(str(src))
    shapes = {i.name: [d.dim_value for d in i.type.tensor_type.shape.dim] for i in model.graph.input}
    # the quantizer writes a '<name>-inferred.onnx' beside its input: quantize a copy in dst's folder, so that
    # nothing is written beside the source (../shared is read-only) and parallel workers do not share that file
    src = Path(dst).parent / f"{Path(dst).stem}_source.onnx"
    onnx.save(model, str(src))

    class Reader(CalibrationDataReader):
        def __init__(self):
            rng = np.random.default_rng(seed)
            self.data = iter([{k: rng.normal(0.0, 1.0, s).astype(np.float32) for k, s in shapes.items()}
                              for _ in range(count)])

        def get_next(self):
            return next(self.data, None)

    quantize_static(str(src), str(dst), Reader(), quant_format=QuantFormat.QDQ,
                    activation_type={"int8": QuantType.QInt8, "uint8": QuantType.QUInt8}[activations],
                    weight_type=QuantType.QInt8, per_channel=per_channel)
    return dst


def _conv_init(rng, name: str, cout: int, cin: int, k: int = 1) -> dict:
    return {f"{name}_w": rng.normal(0, 0.4, (cout, cin, k, k)).astype(np.float32),
            f"{name}_b": rng.normal(0, 0.1, cout).astype(np.float32)}


def _conv(name: str, x: str, y: str, k: int = 1, **attrs):
    return helper.make_node("Conv", [x, f"{name}_w", f"{name}_b"], [y], name=name, kernel_shape=[k, k],
                            pads=[k // 2] * 4, **attrs)


def shape_chain_model(path: Path) -> Path:
    """What torch's legacy exporter writes for `x.view(x.size(0), -1)` and a computed F.pad: Conv, then Pad
    whose pads come from Constant -> ConstantOfShape -> Cast, GlobalAveragePool, Shape -> Gather ->
    Unsqueeze -> Concat -> Reshape, Gemm. Every shape is static, so the chains fold to constants."""
    rng = np.random.default_rng(21)
    inits = {**_conv_init(rng, "conv", 8, 3, 3), "fc_w": rng.normal(0, 0.5, (5, 8)).astype(np.float32),
             "fc_b": rng.normal(0, 0.1, 5).astype(np.float32), "zero": np.array(0, np.int64),
             "minus_one": np.array([-1], np.int64)}
    eight = numpy_helper.from_array(np.array([8], np.int64), "eight")
    nodes = [_conv("conv", "x", "c", 3), helper.make_node("Relu", ["c"], ["r"], name="relu"),
             helper.make_node("Constant", [], ["pads_len"], name="pads_len", value=eight),
             helper.make_node("ConstantOfShape", ["pads_len"], ["pads32"], name="pads_zero",
                              value=numpy_helper.from_array(np.array([0], np.int32))),
             helper.make_node("Cast", ["pads32"], ["pads"], name="pads_cast", to=TensorProto.INT64),
             helper.make_node("Pad", ["r", "pads"], ["p"], name="pad"),
             helper.make_node("GlobalAveragePool", ["p"], ["g"], name="gap"),
             helper.make_node("Shape", ["g"], ["shape"], name="shape"),
             helper.make_node("Gather", ["shape", "zero"], ["batch"], name="batch", axis=0),
             helper.make_node("Unsqueeze", ["batch", "zero_axes"], ["batch1"], name="unsqueeze"),
             helper.make_node("Concat", ["batch1", "minus_one"], ["target"], name="target", axis=0),
             helper.make_node("Reshape", ["g", "target"], ["flat"], name="view"),
             helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["y"], name="fc", transB=1)]
    inits["zero_axes"] = np.array([0], np.int64)
    return save_model(path, nodes, inits, {"x": (1, 3, 8, 8)}, {"y": (1, 5)})


def reduce_mean_model(path: Path, keepdims: int, opset: int = 13) -> Path:
    """Conv + Relu, then global average pooling as torch >= 2.9 writes it: ReduceMean over axes 2, 3 (an
    attribute before opset 18, an input from 18), keepdims 0 (-> Gemm) or 1 (-> Flatten -> Gemm)."""
    rng = np.random.default_rng(22)
    inits = {**_conv_init(rng, "conv", 16, 4, 3), "fc_w": rng.normal(0, 0.3, (10, 16)).astype(np.float32),
             "fc_b": rng.normal(0, 0.1, 10).astype(np.float32)}
    if opset >= 18:
        inits["axes"] = np.array([2, 3], np.int64)
        mean = helper.make_node("ReduceMean", ["r", "axes"], ["m"], name="mean", keepdims=keepdims)
    else:
        mean = helper.make_node("ReduceMean", ["r"], ["m"], name="mean", axes=[-2, -1], keepdims=keepdims)
    nodes = [_conv("conv", "x", "c", 3), helper.make_node("Relu", ["c"], ["r"], name="relu"), mean]
    if keepdims:
        nodes.append(helper.make_node("Flatten", ["m"], ["f"], name="flatten"))
    nodes.append(helper.make_node("Gemm", ["f" if keepdims else "m", "fc_w", "fc_b"], ["y"], name="fc", transB=1))
    return save_model(path, nodes, inits, {"x": (1, 4, 10, 12)}, {"y": (1, 10)}, opset)


GATES = ("sigmoid", "hard_sigmoid", "hard_swish", "x_hard_sigmoid_x", "mul_const", "squeeze_excite")


def gate_model(path: Path, kind: str) -> Path:
    """Conv, then one of the MobileNetV3 / EfficientNet gates, then a Conv:
    sigmoid: Sigmoid; hard_sigmoid: HardSigmoid (alpha 0.2, beta 0.5, ONNX's default);
    hard_swish: HardSwish (opset 14); x_hard_sigmoid_x: x * HardSigmoid(x) with alpha 1/6 (torch's
    hardswish before opset 14); mul_const: x * a [C, 1, 1] constant; squeeze_excite: x * HardSigmoid(Conv(
    Relu(Conv(GlobalAveragePool(x))))), a [1, C, 1, 1] gate broadcast over [1, C, H, W]."""
    rng = np.random.default_rng(23)
    c = 8
    inits = {**_conv_init(rng, "conv", c, 3, 3), **_conv_init(rng, "out", 6, c)}
    nodes = [_conv("conv", "x", "a", 3)]
    opset = 14 if kind == "hard_swish" else 13
    if kind == "sigmoid":
        nodes.append(helper.make_node("Sigmoid", ["a"], ["g"], name="gate"))
    elif kind == "hard_sigmoid":
        nodes.append(helper.make_node("HardSigmoid", ["a"], ["g"], name="gate"))
    elif kind == "hard_swish":
        nodes.append(helper.make_node("HardSwish", ["a"], ["g"], name="gate"))
    elif kind == "x_hard_sigmoid_x":
        nodes += [helper.make_node("HardSigmoid", ["a"], ["h"], name="hsig", alpha=1 / 6, beta=0.5),
                  helper.make_node("Mul", ["a", "h"], ["g"], name="gate")]
    elif kind == "mul_const":
        inits["scale"] = rng.uniform(0.5, 1.5, (c, 1, 1)).astype(np.float32)
        nodes.append(helper.make_node("Mul", ["a", "scale"], ["g"], name="gate"))
    else:
        inits.update({**_conv_init(rng, "se1", 4, c), **_conv_init(rng, "se2", c, 4)})
        nodes += [helper.make_node("GlobalAveragePool", ["a"], ["s0"], name="se_pool"), _conv("se1", "s0", "s1"),
                  helper.make_node("Relu", ["s1"], ["s2"], name="se_relu"), _conv("se2", "s2", "s3"),
                  helper.make_node("HardSigmoid", ["s3"], ["s4"], name="se_gate", alpha=1 / 6, beta=0.5),
                  helper.make_node("Mul", ["a", "s4"], ["g"], name="gate")]
    nodes.append(_conv("out", "g", "y"))
    return save_model(path, nodes, inits, {"x": (1, 3, 8, 10)}, {"y": (1, 6, 8, 10)}, opset)


def resize_model(path: Path, mode: str, coord: str, nearest: str = "round_prefer_floor", in_hw=(5, 6),
                 sizes=None, scales=None, opset: int = 13) -> Path:
    """Conv 1x1, Resize of its output to `sizes` (H, W) or by `scales` (H, W), Conv 1x1."""
    rng = np.random.default_rng(24)
    inits = {**_conv_init(rng, "conv", 4, 3), **_conv_init(rng, "out", 5, 4)}
    if sizes is not None:
        inits["sizes"] = np.array([1, 4, *sizes], np.int64)
        out_hw = tuple(sizes)
        resize_in = ["c", "", "", "sizes"]
    else:
        inits["scales"] = np.array([1, 1, *scales], np.float32)
        out_hw = tuple(int(np.floor(i * s)) for i, s in zip(in_hw, scales))
        resize_in = ["c", "", "scales"]
    nodes = [_conv("conv", "x", "c"),
             helper.make_node("Resize", resize_in, ["r"], name="resize", mode=mode,
                              coordinate_transformation_mode=coord, nearest_mode=nearest),
             _conv("out", "r", "y")]
    return save_model(path, nodes, inits, {"x": (1, 3, *in_hw)}, {"y": (1, 5, *out_hw)}, opset)


def conv_transpose_model(path: Path, stride: int = 2, k: int = 3, pads=(1, 1, 1, 1), output_padding=(1, 1),
                         in_hw=(5, 4)) -> Path:
    """Conv 1x1, ConvTranspose (torch's nn.ConvTranspose2d: explicit pads and output_padding) with bias."""
    rng = np.random.default_rng(25)
    inits = {**_conv_init(rng, "conv", 6, 3), "up_w": rng.normal(0, 0.3, (6, 4, k, k)).astype(np.float32),
             "up_b": rng.normal(0, 0.1, 4).astype(np.float32)}
    out_hw = tuple((i - 1) * stride + k - pads[d] - pads[d + 2] + output_padding[d] for d, i in enumerate(in_hw))
    nodes = [_conv("conv", "x", "c"),
             helper.make_node("ConvTranspose", ["c", "up_w", "up_b"], ["y"], name="up", kernel_shape=[k, k],
                              strides=[stride, stride], pads=list(pads), output_padding=list(output_padding))]
    return save_model(path, nodes, inits, {"x": (1, 3, *in_hw)}, {"y": (1, 4, *out_hw)})


# ------------------------------------------------------------------------------------ comparison

def layer_differences(path, graph, inputs) -> dict[str, tuple[int, int, int]]:
    """Run the reference op by op, each op fed onnxruntime's value of every input onnxruntime has (the
    rest, tensors the passes made, from the reference's own ops); per op output that onnxruntime has:
    (values off, max difference in LSB or in tolerances, values)."""
    acts = [t.name for t in graph.activation_tensors() if t.name in graph.origin]
    ort = run_onnxruntime(path, graph, inputs, tensors=acts)
    values = dict(ort)
    result = {}
    for op in graph.ops:
        args = [values[n] for n in op.inputs if not graph.tensor(n).is_const]
        out = graph.tensor(op.outputs[0])
        got = np.asarray(KERNELS[op.type](graph, op, *args)).reshape(out.shape)
        if out.name not in ort:
            values[out.name] = got
            continue
        want = ort[out.name]
        if out.dtype == "int8":
            diff = np.abs(got.astype(np.int64) - want.astype(np.int64))
        else:
            diff = np.abs(got.astype(np.float64) - want) / (1e-5 * max(1.0, float(np.abs(want).max())))
            diff = np.where(diff <= 1.0, 0, np.ceil(diff))
        result[op.where()] = (int((diff != 0).sum()), int(diff.max()), diff.size)
    return result
