"""The int8 form of one float op between Dequantize and Quantize ops (see fold_qdq), or None where the IR
has no int8 op with these quantization parameters and the op stays float.

`sources` maps each activation input of the float op to the int8 tensor its Dequantize reads; constants
behind a Dequantize of int8/int32 data become those integer constants (the float tensor turns into the
integer one, keeping its name), plain float constants have no int8 form except a convolution's bias.
"""
from __future__ import annotations

import copy

import numpy as np

from ..ir import Conv2DAttrs, Graph, NoAttrs, Op, Quant, Tensor
from .graph_edit import add_tensor, fail

# TFLite's int8 Softmax and Logistic have a fixed output quantization
FIXED_OUTPUT_QUANT = {"Softmax": (1 / 256, -128), "Logistic": (1 / 256, -128)}
# TFLite's int8 kernels of these ops read and write one quantization
SAME_QUANT = ("MaxPool2D", "Reshape", "Pad", "ResizeBilinear", "ResizeNearest")
# int8 kernels that requantize from any input to any output quantization
ANY_QUANT = ("Add", "Mul", "Concatenation", "HardSwish", "Relu", "Relu6")
# Which filter axis holds the output channels (per-channel weights must be quantized along it)
OUTPUT_AXIS = {"Conv2D": 0, "DepthwiseConv2D": 3, "FullyConnected": 0, "TransposeConv2D": 0}


def _dequantized_constant(graph: Graph, name: str, made_by: dict[str, Op]) -> Tensor | None:
    """The integer constant a Dequantize op turns into `name`, if one does."""
    op = made_by.get(name)
    if op is not None and op.type == "Dequantize" and graph.tensor(op.inputs[0]).is_const:
        return graph.tensor(op.inputs[0])
    return None


def _make_constant(graph: Graph, name: str, q: Tensor, data: np.ndarray | None = None, quant: bool = True) -> None:
    """Tensor `name` (a Dequantize output) becomes the integer constant it was dequantized from (a bias
    without quantization parameters: the accumulator's scale is implied)."""
    data = q.data if data is None else data
    graph.tensors[name] = Tensor(name=name, shape=tuple(data.shape), dtype=q.dtype, quant=q.quant if quant else None,
                                 data=np.ascontiguousarray(data))


def _scale_zp(graph: Graph, name: str) -> tuple[np.float32, int]:
    q = graph.tensor(name).quant
    return np.float32(q.scale[0]), int(q.zero_point[0])


def lower_int8(graph: Graph, op: Op, sources: dict[str, str], y: str, requant: str,
               made_by: dict[str, Op]) -> list[Op] | None:
    if op.type in OUTPUT_AXIS:
        return _lower_weighted(graph, op, sources, y, requant, made_by)
    if op.type in ("Mean", "AveragePool2D"):
        return _lower_average(graph, op, sources, y)
    if op.type in FIXED_OUTPUT_QUANT:
        scale, zp = FIXED_OUTPUT_QUANT[op.type]
        yq = graph.tensor(y).quant
        if abs(yq.scale[0] - scale) > 1e-12 or yq.zero_point[0] != zp:
            return None
    elif op.type in SAME_QUANT:
        if _scale_zp(graph, sources[op.inputs[0]]) != _scale_zp(graph, y):
            return None
    elif op.type not in ANY_QUANT:
        return None
    inputs = []
    for name in op.inputs:
        if name in sources:
            inputs.append((sources[name], None))
        elif _dequantized_constant(graph, name, made_by) is not None:
            inputs.append((name, _dequantized_constant(graph, name, made_by)))
        else:
            return None                   # a float constant: no int8 form
    for name, q in inputs:
        if q is not None:
            _make_constant(graph, name, q)
    return [Op(op.index, op.name, op.type, [n for n, _ in inputs], [y], op.attrs, origin=op.origin)]


def _lower_weighted(graph: Graph, op: Op, sources: dict[str, str], y: str, requant: str,
                    made_by: dict[str, Op]) -> list[Op] | None:
    """Conv2D, DepthwiseConv2D, FullyConnected, TransposeConv2D: int8 weights, int32 bias."""
    x = sources.get(op.inputs[0])
    w_name = op.inputs[1]
    wq = _dequantized_constant(graph, w_name, made_by)
    if x is None or wq is None:
        return None                       # float weights: the op runs in float between Dequantize and Quantize
    what = f"weights '{graph.origin.get(w_name, w_name)}'"
    if wq.dtype != "int8":
        raise fail(graph, op, f"{what} are {wq.dtype}; int8 weights are required")
    if np.any(wq.quant.zero_point != 0):
        raise fail(graph, op, f"{what} have a non-zero zero point; only symmetric int8 weights are supported "
                              "(onnxruntime's quantizer makes them symmetric by default)")
    if wq.quant.axis is not None and wq.quant.axis != OUTPUT_AXIS[op.type]:
        raise fail(graph, op, f"{what} are quantized per channel along another axis than the output channels; "
                              "only per-output-channel (or per-tensor) weights are supported")
    channels = wq.shape[OUTPUT_AXIS[op.type]]
    bias = _int32_bias(graph, op, op.inputs[2], x, wq, channels, made_by) if len(op.inputs) > 2 else None
    _make_constant(graph, w_name, wq)
    if bias is not None:
        _make_constant(graph, op.inputs[2], *bias, quant=False)
    attrs = copy.copy(op.attrs)
    if hasattr(attrs, "requant"):
        attrs.requant = requant
    return [Op(op.index, op.name, op.type, [x] + op.inputs[1:], [y], attrs, origin=op.origin)]


def _int32_bias(graph: Graph, op: Op, b_name: str, x: str, wq: Tensor, channels: int, made_by: dict[str, Op]):
    """(tensor, data): the bias as int32 at input_scale * weight_scale, as the int32 accumulator needs it.

    A bias quantized at another scale (torch shares equal bias tensors between convolutions, and
    onnxruntime's quantizer quantizes a shared one for the first of them) or left in float (the quantizer
    leaves a bias it reaches through an Identity unquantized) is quantized to the accumulator's scale the
    way the quantizer quantizes biases: float32 b / (x_scale * w_scale), rounded half to even."""
    what = f"bias '{graph.origin.get(b_name, b_name)}'"
    expected = np.broadcast_to(_scale_zp(graph, x)[0] * wq.quant.scale.astype(np.float32), (channels,))
    bq = _dequantized_constant(graph, b_name, made_by)
    b = graph.tensor(b_name)
    if bq is not None:
        if bq.dtype != "int32" or np.any(bq.quant.zero_point != 0):
            raise fail(graph, op, f"{what} must be int32 with zero point 0, got {bq.dtype}")
        got = np.broadcast_to(bq.quant.scale, (channels,))
        if np.all(np.abs(got.astype(np.float64) - expected) <= 1e-6 * expected):
            return bq, np.broadcast_to(bq.data.reshape(-1), (channels,))
        real = np.broadcast_to(bq.data.reshape(-1).astype(np.float32) * bq.quant.scale.astype(np.float32),
                               (channels,))
    elif b.is_const and b.dtype == "float32":
        real = b.data.reshape(-1)
    else:
        raise fail(graph, op, f"{what} must be a constant")
    q = np.rint(real.astype(np.float32) / expected.astype(np.float32)).astype(np.float64)
    q = np.clip(q, np.iinfo(np.int32).min, np.iinfo(np.int32).max).astype(np.int32)
    return Tensor(name=b_name, shape=(channels,), dtype="int32"), np.broadcast_to(q, (channels,))


def _lower_average(graph: Graph, op: Op, sources: dict[str, str], y: str) -> list[Op] | None:
    """Mean (over H and W) and AveragePool2D without padding: a depthwise convolution with a filter of ones
    at weight scale 1/(KH*KW), so they requantize like the convolutions (float32 scale, half to even),
    which is onnxruntime's arithmetic; the IR's int8 Mean and AveragePool2D are TFLite's fixed-point ones.
    An AveragePool2D with padding divides by fewer taps at the border: it stays float."""
    x = sources[op.inputs[0]]
    n, h, w, c = graph.tensor(x).shape
    if op.type == "AveragePool2D":
        if any(op.attrs.pad):
            return None
        k, attrs = op.attrs.filter, Conv2DAttrs(stride=op.attrs.stride, activation=op.attrs.activation)
    else:
        k, attrs = (h, w), Conv2DAttrs()
    attrs.requant = "onnx"
    base = graph.origin.get(op.outputs[0], op.outputs[0])
    scale = np.array([np.float32(1.0) / np.float32(k[0] * k[1])], np.float32).astype(np.float64)
    ones = add_tensor(graph, f"{base}_average_weights", f"{base}_average_weights", shape=(1, k[0], k[1], c),
                      dtype="int8", quant=Quant(scale=scale, zero_point=np.zeros(1, np.int32)),
                      data=np.ones((1, k[0], k[1], c), np.int8))
    if op.type == "AveragePool2D" or op.attrs.keep_dims:
        return [Op(op.index, op.name, "DepthwiseConv2D", [x, ones], [y], attrs, origin=op.origin)]
    yt = graph.tensor(y)
    y4 = add_tensor(graph, f"{base}_keepdims", None, shape=(n, 1, 1, c), dtype="int8", quant=yt.quant)
    return [Op(op.index, op.name, "DepthwiseConv2D", [x, ones], [y4], attrs, origin=op.origin),
            Op(op.index, f"{op.name}_squeeze", "Reshape", [y4], [y], NoAttrs(), origin=op.origin)]
