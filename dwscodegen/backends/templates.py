"""Templates backend: each op becomes a Jinja-rendered C kernel specialised on its constant shapes."""
from __future__ import annotations

import numpy as np

from ..ir import Graph, Op
from ..qparams import add_qparams, conv_qparams
from ..targets import Target
from .kernel import Kernel
from .render import c_identifier, render


def kernel_name(op: Op) -> str:
    return f"layer{op.index}_{c_identifier(op.name)}"


def _activation_label(op: Op) -> str:
    act = op.attrs.activation
    return f"clamp [{act.low:g}, {act.high:g}]" if act.kind == "clamp" else act.kind


def _conv_context(graph: Graph, op: Op) -> dict:
    x, w, y = graph.tensor(op.inputs[0]), graph.tensor(op.inputs[1]), graph.tensor(op.outputs[0])
    a = op.attrs
    low, high = a.activation.bounds()
    ctx = dict(
        fn=kernel_name(op), title=f"op {op.index} '{op.name}' ({op.type})",
        H=x.shape[1], W=x.shape[2], C=x.shape[3], OH=y.shape[1], OW=y.shape[2], OC=y.shape[3],
        KH=w.shape[1], KW=w.shape[2], SH=a.stride[0], SW=a.stride[1], DH=a.dilation[0], DW=a.dilation[1],
        PT=a.pad[0], PL=a.pad[2], MULT=a.depth_multiplier, activation=_activation_label(op),
        act_low=low, act_high=high, in_offset=0)
    bias = graph.tensor(op.inputs[2]).data if len(op.inputs) > 2 else np.zeros(y.shape[3], w.data.dtype)
    if op.type == "DepthwiseConv2D":
        filt = w.data.reshape(-1)                       # [KH][KW][OC], TFLite's layout
    else:
        filt = w.data.reshape(w.shape[0], -1)           # [OC][KH*KW*IC]
    if graph.dtype == "int8":
        q = conv_qparams(graph, op)
        bias = bias.astype(np.int64)
        if a.pad == (0, 0, 0, 0):
            # Without padding every tap reads a real input, so sum((x + off) * w) = sum(x * w) + off * sum(w).
            per_channel_w = (w.data.reshape(-1, y.shape[3]).sum(axis=0) if op.type == "DepthwiseConv2D"
                             else w.data.reshape(y.shape[3], -1).sum(axis=1, dtype=np.int64))
            folded = bias + q.input_offset * per_channel_w.astype(np.int64)
        if a.pad == (0, 0, 0, 0) and np.abs(folded).max() < 2**31:
            bias = folded
        else:
            ctx["in_offset"] = q.input_offset
        ctx.update(multiplier=q.multiplier, shift=q.shift, output_offset=q.output_offset,
                   act_min=q.act_min, act_max=q.act_max)
        bias = bias.astype(np.int32)
    ctx.update(filter=filt, bias=bias)
    return ctx


def _template(op: Op, graph: Graph) -> str:
    suffix = "s8" if graph.dtype == "int8" else "f32"
    if op.type == "Add":
        return f"kernels/add_{suffix}.c.j2"
    if op.type == "DepthwiseConv2D":
        return f"kernels/depthwise_conv2d_{suffix}.c.j2"
    w = graph.tensor(op.inputs[1])
    if w.shape[1:3] == (1, 1) and op.attrs.pad == (0, 0, 0, 0):
        return f"kernels/pointwise_conv2d_{suffix}.c.j2"
    return f"kernels/conv2d_{suffix}.c.j2"


def generate_kernels(graph: Graph, target: Target) -> list[Kernel]:
    del target   # the portable C kernels are the same for every target (SIMD variants come per target)
    kernels = []
    for op in graph.ops:
        if op.type == "Add":
            ctx = dict(fn=kernel_name(op), title=f"op {op.index} '{op.name}' (Add)",
                       N=graph.tensor(op.outputs[0]).size, activation=_activation_label(op))
            low, high = op.attrs.activation.bounds()
            ctx.update(act_low=low, act_high=high)
            if graph.dtype == "int8":
                ctx["q"] = add_qparams(graph, op)
            const_bytes = 0
        else:
            ctx = _conv_context(graph, op)
            const_bytes = sum(np.asarray(ctx[k]).nbytes for k in ("filter", "bias", "multiplier", "shift")
                              if k in ctx)
        kernels.append(Kernel(op_index=op.index, fn=ctx["fn"], source=render(_template(op, graph), k=ctx),
                              const_bytes=const_bytes))
    return kernels
