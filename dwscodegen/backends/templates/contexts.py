"""The templates road's per-op contexts: what each kernel template is specialised on (shapes, constants,
integer parameters), built from the graph and qparams. Every template lists the keys it reads in its
header comment."""
from __future__ import annotations

import numpy as np

from ... import qparams as qp
from ...ir import Graph, Op
from ...qparams import is_hybrid, onnx_requant_scales
from .contexts_spatial import resize_context, transpose_conv_context
from .contexts_elementwise import activation_context, binary_context, table_context

def _conv_context(graph: Graph, op: Op) -> dict:
    x, w, y = graph.tensor(op.inputs[0]), graph.tensor(op.inputs[1]), graph.tensor(op.outputs[0])
    a = op.attrs
    low, high = a.activation.bounds()
    ctx = dict(
        H=x.shape[1], W=x.shape[2], C=x.shape[3], OH=y.shape[1], OW=y.shape[2], OC=y.shape[3],
        KH=w.shape[1], KW=w.shape[2], SH=a.stride[0], SW=a.stride[1], DH=a.dilation[0], DW=a.dilation[1],
        PT=a.pad[0], PL=a.pad[2], MULT=a.depth_multiplier, activation=op.attrs.activation.label(),
        act_low=low, act_high=high, in_offset=0)
    bias = graph.tensor(op.inputs[2]).data if len(op.inputs) > 2 else np.zeros(y.shape[3], w.data.dtype)
    if op.type == "DepthwiseConv2D":
        filt = w.data.reshape(-1)                       # [KH][KW][OC], TFLite's layout
    else:
        filt = w.data.reshape(w.shape[0], -1)           # [OC][KH*KW*IC]
    if graph.op_dtype(op) == "int8":
        q = qp.conv_qparams(graph, op)
        bias, ctx["in_offset"] = qp.fold_input_offset(graph, op, bias.astype(np.int64), q.input_offset)
        ctx.update(multiplier=q.multiplier, shift=q.shift, output_offset=q.output_offset,
                   act_min=q.act_min, act_max=q.act_max, requant=a.requant)
        if a.requant == "onnx":
            ctx.update(scale=onnx_requant_scales(graph, op), multiplier=None, shift=None)
        bias = bias.astype(np.int32)
    if is_hybrid(graph, op):
        ctx["filter_scale"] = np.broadcast_to(w.quant.scale.astype(np.float32), (y.shape[3],))
        ctx["per_channel"] = qp.hybrid_per_channel(w.quant.scale)
    ctx.update(filter=filt, bias=bias)
    return ctx


def _pool_context(graph: Graph, op: Op) -> dict:
    x, y = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    a = op.attrs
    low, high = a.activation.bounds()
    ctx = dict(N=x.shape[0], H=x.shape[1], W=x.shape[2], C=x.shape[3], KH=a.filter[0], KW=a.filter[1],
               SH=a.stride[0], SW=a.stride[1], PT=a.pad[0], PL=a.pad[2], OH=y.shape[1], OW=y.shape[2],
               act_low=low, act_high=high, activation=op.attrs.activation.label())
    if graph.op_dtype(op) == "int8":
        ctx["act_min"], ctx["act_max"] = qp.output_activation_range(graph, op)
    return ctx


def _fully_connected_context(graph: Graph, op: Op) -> dict:
    x, w = graph.tensor(op.inputs[0]), graph.tensor(op.inputs[1])
    units, depth = w.shape
    bias = graph.tensor(op.inputs[2]).data if len(op.inputs) > 2 else None
    low, high = op.attrs.activation.bounds()
    ctx = dict(N=x.size // depth, K=depth, O=units, weights=w.data, act_low=low, act_high=high,
               activation=op.attrs.activation.label())
    if graph.op_dtype(op) == "int8":
        p = qp.fully_connected_qparams(graph, op)
        ctx.update(bias=qp.folded_bias(w.data, bias, p), weights_offset=p.weights_offset,
                   output_offset=p.output_offset, scale=p.scale, act_min=p.act_min, act_max=p.act_max,
                   requant=op.attrs.requant)
        if op.attrs.requant == "onnx":
            ctx["scale"] = onnx_requant_scales(graph, op)
    else:
        ctx["bias"] = bias
    return ctx


def _softmax_context(graph: Graph, op: Op) -> dict:
    x = graph.tensor(op.inputs[0])
    ctx = dict(outer=x.size // x.shape[-1], depth=x.shape[-1], beta=op.attrs.beta)
    if graph.op_dtype(op) == "int8":
        p = qp.softmax_qparams(graph, op)
        ctx.update(input_multiplier=p.input_multiplier, input_left_shift=p.input_left_shift, diff_min=p.diff_min)
    return ctx


def _mean_context(graph: Graph, op: Op) -> dict:
    x = graph.tensor(op.inputs[0])
    axes = op.attrs.axes
    # [outer][count][inner]: the reduced (adjacent) axes in the middle; H and W of NHWC give [N][H * W][C]
    ctx = dict(N=int(np.prod(x.shape[:axes[0]])), HW=int(np.prod(x.shape[axes[0]:axes[-1] + 1])),
               C=int(np.prod(x.shape[axes[-1] + 1:])))
    if graph.op_dtype(op) == "int8":
        p = qp.mean_qparams(graph, op)
        ctx.update(input_zero_point=p.input_zero_point, output_zero_point=p.output_zero_point,
                   multiplier=p.multiplier, shift=p.shift)
    return ctx


def _pad_context(graph: Graph, op: Op) -> dict:
    y = graph.tensor(op.outputs[0])
    ctx = dict(shape=graph.tensor(op.inputs[0]).shape, paddings=[list(p) for p in op.attrs.paddings])
    if y.dtype == "int8":
        ctx["pad_value"] = int(y.quant.zero_point[0])
    return ctx


def _concat_context(graph: Graph, op: Op) -> dict:
    axis = op.attrs.axis
    shapes = [graph.tensor(n).shape for n in op.inputs]
    inputs = [dict(size=int(np.prod(s[axis:]))) for s in shapes]
    if graph.op_dtype(op) == "int8":
        for inp, q in zip(inputs, qp.concat_qparams(graph, op)):
            inp["q"] = q
    return dict(outer=int(np.prod(shapes[0][:axis])), inputs=inputs)


def _quantize_context(graph: Graph, op: Op) -> dict:
    q = graph.tensor(op.outputs[0] if op.type == "Quantize" else op.inputs[0]).quant
    return dict(size=graph.tensor(op.inputs[0]).size, scale=float(q.scale[0]), zero_point=int(q.zero_point[0]),
                rounding=op.attrs.rounding if op.type == "Quantize" else None)


def _relu_context(graph: Graph, op: Op) -> dict:
    ctx = dict(size=graph.tensor(op.inputs[0]).size, activation=op.type.lower())
    if graph.op_dtype(op) == "int8":
        p = qp.relu_qparams(graph, op)
        ctx.update(input_zero_point=p.input_zero_point, output_zero_point=p.output_zero_point,
                   multiplier=p.multiplier, shift=p.shift, act_min=p.act_min, act_max=p.act_max)
    else:
        ctx.update(act_low=0.0, act_high=6.0 if op.type == "Relu6" else None)
    return ctx


def _slice_context(graph: Graph, op: Op) -> dict:
    x, y = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    a = op.attrs
    row = [int(np.prod(x.shape[d + 1:])) for d in range(len(x.shape))]     # input elements per step of each dim
    dims = [dict(size=n, step=s * r) for n, s, r in zip(y.shape, a.strides, row) if n > 1]
    merged: list[dict] = []
    for dim in dims:   # an outer loop whose step is the inner loop's whole run continues that run
        if merged and merged[-1]["step"] == dim["size"] * dim["step"]:
            merged[-1] = dict(size=merged[-1]["size"] * dim["size"], step=dim["step"])
        else:
            merged.append(dim)
    return dict(in_shape=list(x.shape), out_shape=list(y.shape), begin=list(a.begin), strides=list(a.strides),
                offset=int(sum(b * r for b, r in zip(a.begin, row))), dims=merged or [dict(size=1, step=1)])


# op type -> (template stem, context builder)
KERNELS = {
    "Conv2D": ("conv2d", _conv_context), "DepthwiseConv2D": ("depthwise_conv2d", _conv_context),
    "Add": ("add", binary_context), "AveragePool2D": ("avg_pool2d", _pool_context),
    "MaxPool2D": ("max_pool2d", _pool_context), "FullyConnected": ("fully_connected", _fully_connected_context),
    "Softmax": ("softmax", _softmax_context), "Mean": ("mean", _mean_context), "Pad": ("pad", _pad_context),
    "Concatenation": ("concatenation", _concat_context), "Quantize": ("quantize", _quantize_context),
    "Dequantize": ("dequantize", _quantize_context), "Relu": ("relu", _relu_context),
    "Relu6": ("relu", _relu_context), "Reshape": ("reshape", lambda g, op: dict(size=g.tensor(op.inputs[0]).size)),
    "ResizeBilinear": ("resize_bilinear", resize_context), "ResizeNearest": ("resize_nearest", resize_context),
    "TransposeConv2D": ("transpose_conv2d", transpose_conv_context),
    "Mul": ("mul", binary_context), "Maximum": ("maximum", binary_context), "Minimum": ("minimum", binary_context),
    "PRelu": ("prelu", binary_context), "HardSwish": ("hard_swish", activation_context),
    "Logistic": ("logistic", activation_context), "Tanh": ("tanh", activation_context),
    "LeakyRelu": ("leaky_relu", activation_context), "Table": ("table", table_context),
    "Slice": ("slice", _slice_context),
}


CONSTANT_KEYS = ("filter", "weights", "bias", "multiplier", "shift", "scale")
