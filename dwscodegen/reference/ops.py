"""NumPy reference of each op, float32 and int8 (TFLite reference-kernel semantics).

Float math is done in float64 so the reference is the more accurate side of every comparison.
"""
from __future__ import annotations

import numpy as np

from .. import qparams as qp
from ..ir import Activation, Graph, Op
from ..qparams import is_hybrid, onnx_requant_scales
from ..quant import multiply_by_quantized_multiplier
from ..int8_elementwise import table as int8_table
from . import activations as act
from . import binary
from . import elementwise as ew
from . import hybrid
from . import fully_connected as fc
from . import pool, shape_ops, softmax, spatial
from ..resize import resize_plan


def _windows(x: np.ndarray, kh: int, kw: int, attrs, pad_value) -> np.ndarray:
    """[N,H,W,C] -> [N,OH,OW,KH,KW,C] patches after explicit padding with `pad_value`."""
    top, bottom, left, right = attrs.pad
    xp = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)), constant_values=pad_value)
    (sh, sw), (dh, dw) = attrs.stride, attrs.dilation
    oh = (xp.shape[1] - ((kh - 1) * dh + 1)) // sh + 1
    ow = (xp.shape[2] - ((kw - 1) * dw + 1)) // sw + 1
    rows = (np.arange(oh) * sh)[:, None] + np.arange(kh) * dh          # [OH,KH]
    cols = (np.arange(ow) * sw)[:, None] + np.arange(kw) * dw          # [OW,KW]
    return xp[:, rows[:, None, :, None], cols[None, :, None, :], :]     # [N,OH,OW,KH,KW,C]


def _conv_acc(graph: Graph, op: Op, x: np.ndarray, pad_value) -> np.ndarray:
    """Sum of products over the receptive field, before bias; float64 or int64."""
    w = graph.tensor(op.inputs[1]).data
    patches = _windows(x, w.shape[1], w.shape[2], op.attrs, pad_value)
    acc_type = np.int64 if x.dtype.kind == "i" else np.float64
    patches, w = patches.astype(acc_type), w.astype(acc_type)
    if op.type == "DepthwiseConv2D":
        mult = op.attrs.depth_multiplier
        patches = np.repeat(patches, mult, axis=5)          # output channel c*mult+m reads input c
        return np.einsum("nhwijc,ijc->nhwc", patches, w[0])
    return np.einsum("nhwijc,oijc->nhwo", patches, w)


def _bias(graph: Graph, op: Op):
    return graph.tensor(op.inputs[2]).data if len(op.inputs) > 2 else 0


def _float_activation(y: np.ndarray, act: Activation) -> np.ndarray:
    low, high = act.bounds()
    if low is not None:
        y = np.maximum(y, low)
    if high is not None:
        y = np.minimum(y, high)
    return y


def conv_float(graph: Graph, op: Op, x: np.ndarray) -> np.ndarray:
    acc = _conv_acc(graph, op, x.astype(np.float64), 0.0) + _bias(graph, op)
    return _float_activation(acc, op.attrs.activation)


def conv_hybrid(graph: Graph, op: Op, x: np.ndarray) -> np.ndarray:
    w = graph.tensor(op.inputs[1])
    scales = np.broadcast_to(w.quant.scale.astype(np.float32), (graph.tensor(op.outputs[0]).shape[3],))
    bias = graph.tensor(op.inputs[2]).data if len(op.inputs) > 2 else None
    return hybrid.hybrid_conv(x, scales, bias, op.attrs, lambda xq: _conv_acc(graph, op, xq, 0))


def conv_float_or_hybrid(graph: Graph, op: Op, x: np.ndarray) -> np.ndarray:
    return (conv_hybrid if is_hybrid(graph, op) else conv_float)(graph, op, x)


def depthwise_hybrid(graph: Graph, op: Op, x: np.ndarray) -> np.ndarray:
    w = graph.tensor(op.inputs[1])
    scales = np.broadcast_to(w.quant.scale.astype(np.float32), (graph.tensor(op.outputs[0]).shape[3],))
    bias = graph.tensor(op.inputs[2]).data if len(op.inputs) > 2 else None
    return hybrid.hybrid_depthwise(x, scales, bias, op.attrs, lambda xq: _conv_acc(graph, op, xq, 0))


def depthwise_float_or_hybrid(graph: Graph, op: Op, x: np.ndarray) -> np.ndarray:
    return (depthwise_hybrid if is_hybrid(graph, op) else conv_float)(graph, op, x)


def transpose_conv(graph: Graph, op: Op, x: np.ndarray) -> np.ndarray:
    w = graph.tensor(op.inputs[1]).data
    bias = graph.tensor(op.inputs[2]).data if len(op.inputs) > 2 else None
    a, out_hw = op.attrs, graph.tensor(op.outputs[0]).shape[1:3]
    if _int8(graph, op):
        return spatial.transpose_conv_int8(x, w, bias, a.stride, a.pad, out_hw, qp.conv_qparams(graph, op))
    return spatial.transpose_conv_f32(x, w, bias, a.stride, a.pad, out_hw, *a.activation.bounds())


def conv_int8(graph: Graph, op: Op, x: np.ndarray) -> np.ndarray:
    q = qp.conv_qparams(graph, op)
    # Padding contributes (zero_point + input_offset) * w = 0, exactly as TFLite skips it.
    acc = _conv_acc(graph, op, x.astype(np.int64) + q.input_offset, 0)
    acc = acc + np.asarray(_bias(graph, op), dtype=np.int64)
    if op.attrs.requant == "onnx":
        return requantize_onnx(acc, onnx_requant_scales(graph, op), q.output_offset, q.act_min, q.act_max)
    y = multiply_by_quantized_multiplier(acc, q.multiplier, q.shift) + q.output_offset
    return np.clip(y, q.act_min, q.act_max).astype(np.int8)


def requantize_onnx(acc: np.ndarray, scale: np.ndarray, zero_point: int, act_min: int, act_max: int) -> np.ndarray:
    """onnxruntime's MlasRequantizeOutput: float32(int32 acc) * float32 scale (rounded to float32), clamped
    to [act_min - zp, act_max - zp], rounded half to even, plus the zero point."""
    acc32 = ((np.asarray(acc, dtype=np.int64) + (1 << 31)) % (1 << 32)) - (1 << 31)     # int32 accumulator
    v = acc32.astype(np.float32) * np.asarray(scale, dtype=np.float32)
    v = np.clip(v, np.float32(act_min - zero_point), np.float32(act_max - zero_point))
    return (np.rint(v).astype(np.int32) + zero_point).astype(np.int8)


def _int8(graph: Graph, op: Op) -> bool:
    return graph.op_dtype(op) == "int8"


def _by_dtype(int8_fn, float_fn):
    return lambda graph, op, *xs: (int8_fn if _int8(graph, op) else float_fn)(graph, op, *xs)


def _pool(int8_kernel, float_kernel):
    def run(graph: Graph, op: Op, x: np.ndarray) -> np.ndarray:
        a = op.attrs
        if _int8(graph, op):
            return int8_kernel(x, a.filter, a.stride, a.pad, *qp.output_activation_range(graph, op))
        return float_kernel(x, a.filter, a.stride, a.pad, *a.activation.bounds())
    return run


def _binary(int8_fn, float_fn):
    """Two operands, broadcast NumPy-style; run_graph passes the activations, constants come from the graph."""
    def run(graph: Graph, op: Op, *xs: np.ndarray) -> np.ndarray:
        given = iter(xs)
        a, b = (graph.tensor(n).data if graph.tensor(n).is_const else next(given) for n in op.inputs)
        return (int8_fn if _int8(graph, op) else float_fn)(graph, op, a, b)
    return run


def _activation(float_fn):
    """int8 by table (int8_elementwise.py), float32 by `float_fn`."""
    return _by_dtype(lambda g, op, x: act.lookup_int8(x, int8_table(g, op)), lambda g, op, x: float_fn(x))


def fully_connected(graph: Graph, op: Op, x: np.ndarray) -> np.ndarray:
    w = graph.tensor(op.inputs[1]).data
    bias = _bias(graph, op) if len(op.inputs) > 2 else None
    if _int8(graph, op) and op.attrs.requant == "onnx":
        p = qp.fully_connected_qparams(graph, op)
        rows = np.asarray(x, dtype=np.int64).reshape(-1, w.shape[1])
        acc = (rows + p.input_offset) @ (w.astype(np.int64) + p.weights_offset).T
        acc = acc + (0 if bias is None else np.asarray(bias, dtype=np.int64))
        return requantize_onnx(acc, onnx_requant_scales(graph, op), p.output_offset, p.act_min, p.act_max)
    if _int8(graph, op):
        return fc.fully_connected_int8(x, w, bias, qp.fully_connected_qparams(graph, op))
    return fc.fully_connected_f32(x, w, bias, *op.attrs.activation.bounds())


KERNELS = {
    "Conv2D": _by_dtype(conv_int8, conv_float_or_hybrid),
    "DepthwiseConv2D": _by_dtype(conv_int8, depthwise_float_or_hybrid),
    "Add": _binary(lambda g, op, a, b: binary.add_int8(a, b, qp.add_qparams(g, op)),
                   lambda g, op, a, b: _float_activation(a.astype(np.float64) + b, op.attrs.activation)),
    "AveragePool2D": _pool(pool.avg_pool_int8, pool.avg_pool_f32),
    "MaxPool2D": _pool(pool.max_pool_int8, pool.max_pool_f32),
    "FullyConnected": fully_connected,
    "Softmax": _by_dtype(lambda g, op, x: softmax.softmax_int8(x, qp.softmax_qparams(g, op)),
                         lambda g, op, x: softmax.softmax_f32(x, op.attrs.beta)),
    "Reshape": lambda g, op, x: x.reshape(g.tensor(op.outputs[0]).shape),
    "Mean": _by_dtype(lambda g, op, x: pool.mean_int8(x, qp.mean_qparams(g, op), op.attrs.keep_dims, op.attrs.axes),
                      lambda g, op, x: pool.mean_f32(x, op.attrs.keep_dims, op.attrs.axes)),
    "Pad": _by_dtype(lambda g, op, x: shape_ops.pad_int8(x, op.attrs.paddings, qp.scale_zp(g, op.outputs[0])[1]),
                     lambda g, op, x: shape_ops.pad_f32(x, op.attrs.paddings)),
    "Concatenation": _by_dtype(
        lambda g, op, *xs: shape_ops.concatenation_int8(xs, qp.concat_qparams(g, op), op.attrs.axis),
        lambda g, op, *xs: shape_ops.concatenation_f32(xs, op.attrs.axis)),
    "Quantize": lambda g, op, x: ew.quantize_int8(x, *qp.scale_zp(g, op.outputs[0]), op.attrs.rounding),
    "Dequantize": lambda g, op, x: ew.dequantize_int8(x, *qp.scale_zp(g, op.inputs[0])),
    "Relu": _by_dtype(lambda g, op, x: ew.requantize_int8(x, qp.relu_qparams(g, op)), lambda g, op, x: ew.relu_f32(x)),
    "Relu6": _by_dtype(lambda g, op, x: ew.requantize_int8(x, qp.relu_qparams(g, op)),
                       lambda g, op, x: ew.relu6_f32(x)),
    "ResizeBilinear": _by_dtype(lambda g, op, x: spatial.resize_bilinear_int8(x, resize_plan(g, op)),
                                lambda g, op, x: spatial.resize_bilinear_f32(x, resize_plan(g, op))),
    "ResizeNearest": lambda g, op, x: spatial.resize_nearest(x, resize_plan(g, op)),
    "TransposeConv2D": transpose_conv,
    "Mul": _binary(lambda g, op, a, b: binary.mul_int8(a, b, qp.mul_qparams(g, op)),
                   lambda g, op, a, b: _float_activation(a.astype(np.float64) * b, op.attrs.activation)),
    "Maximum": _binary(lambda g, op, a, b: binary.maximum(a, b), lambda g, op, a, b: binary.maximum(a, b)),
    "Minimum": _binary(lambda g, op, a, b: binary.minimum(a, b), lambda g, op, a, b: binary.minimum(a, b)),
    "PRelu": _binary(lambda g, op, x, alpha: binary.prelu_int8(x, alpha, qp.prelu_qparams(g, op)),
                     lambda g, op, x, alpha: binary.prelu_f32(x, alpha)),
    "HardSwish": _activation(act.hard_swish_f32),
    "Logistic": _activation(act.logistic_f32),
    "Tanh": _activation(act.tanh_f32),
    "Table": lambda g, op, x: act.lookup_int8(x, int8_table(g, op)),
    "LeakyRelu": lambda g, op, x: (act.lookup_int8(x, int8_table(g, op)) if _int8(g, op)
                                   else act.leaky_relu_f32(x, op.attrs.alpha)),
    "Slice": lambda g, op, x: shape_ops.slice_values(x, op.attrs.begin, op.attrs.strides, g.tensor(op.outputs[0]).shape),
}
