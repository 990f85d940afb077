"""Template contexts of the spatial ops (resize, transpose convolution), built from the graph, qparams and the
resize tables of dwscodegen/resize.py; registered in contexts.KERNELS. Each template lists the keys it reads."""
from __future__ import annotations

import numpy as np

from ... import qparams as qp
from ...ir import Graph, Op
from ...resize import resize_plan


def resize_context(graph: Graph, op: Op) -> dict:
    p = resize_plan(graph, op)
    ctx = dict(N=p.N, H=p.H, W=p.W, C=p.C, OH=p.OH, OW=p.OW, align_corners=op.attrs.align_corners,
               half_pixel_centers=op.attrs.half_pixel_centers, constant_keys=("row_offset", "col_offset"))
    row, col = p.W * p.C, p.C                     # element offsets of one input row / column
    if op.type == "ResizeNearest":
        return dict(ctx, row_offset=p.rows * row, col_offset=p.cols * col)
    ctx.update(row_offset=np.stack([p.rows.lower, p.rows.upper], axis=1).astype(np.int32) * row,
               col_offset=np.stack([p.cols.lower, p.cols.upper], axis=1).astype(np.int32) * col)
    if graph.op_dtype(op) == "int8":
        return dict(ctx, row_weight=p.rows.weight, col_weight=p.cols.weight,
                    constant_keys=("row_offset", "col_offset", "row_weight", "col_weight"))
    return dict(ctx, row_frac=p.rows.weight, col_frac=p.cols.weight,
                constant_keys=("row_offset", "col_offset", "row_frac", "col_frac"))


def transpose_conv_context(graph: Graph, op: Op) -> dict:
    x, w, y = graph.tensor(op.inputs[0]), graph.tensor(op.inputs[1]), graph.tensor(op.outputs[0])
    a = op.attrs
    low, high = a.activation.bounds()
    ctx = dict(N=x.shape[0], H=x.shape[1], W=x.shape[2], C=x.shape[3], OH=y.shape[1], OW=y.shape[2],
               OC=y.shape[3], KH=w.shape[1], KW=w.shape[2], SH=a.stride[0], SW=a.stride[1], PT=a.pad[0],
               PL=a.pad[2], activation=a.activation.label(), act_low=low, act_high=high, filter=w.data.reshape(-1))
    bias = graph.tensor(op.inputs[2]).data if len(op.inputs) > 2 else np.zeros(y.shape[3], w.data.dtype)
    if graph.op_dtype(op) == "int8":
        q = qp.conv_qparams(graph, op)
        # The number of taps varies with the output position, so the input offset stays in the sum.
        ctx.update(in_offset=q.input_offset, multiplier=q.multiplier, shift=q.shift, output_offset=q.output_offset,
                   act_min=q.act_min, act_max=q.act_max, bias=bias.astype(np.int32))
    else:
        ctx["bias"] = bias.astype(np.float32)
    return ctx
