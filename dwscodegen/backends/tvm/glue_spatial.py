"""TVM backend kernels of the spatial ops (ResizeBilinear, ResizeNearest, TransposeConv2D): constants (the
resize tables of dwscodegen/resize.py, the filter and int8 parameters of qparams.py), compute
(compute_spatial.py), schedule and the wrapper with the library's calling convention (glue._emit)."""
from __future__ import annotations

import numpy as np

from ... import qparams as qp
from ...ir import Graph, Op
from ...resize import resize_plan
from . import knobs
from . import schedules as ts
from .compute import ConvSpec
from .compute_spatial import (RESIZE_STAGES, TRANSPOSE_CONV_STAGES, resize_bilinear_func, resize_nearest_func,
                              transpose_conv_func)
from .emit import lower_kernel
from .glue import emit_kernel
from ..kernel import Kernel, kernel_name


def schedule_resize(func, params: dict, stages):
    """Output loops n, y, x, c; the int8 `total` per element (a channel-row array when the channel loop is
    unrolled, so each unrolled copy reads its own value)."""
    from tvm import s_tir
    sch = s_tir.Schedule(func)
    _, _, j, c = sch.get_loops(sch.get_sblock("output"))
    unroll = params["unroll_channels"]
    for stage in stages:
        sch.compute_at(sch.get_sblock(stage), j if unroll else c)
    if unroll:
        sch.unroll(c)
        for stage in stages:
            sch.unroll(sch.get_loops(sch.get_sblock(stage))[-1])
    return sch.mod["main"]


def resize_kernel(graph: Graph, op: Op, overrides: dict | None) -> Kernel:
    x, y = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    dtype = graph.op_dtype(op)
    p = resize_plan(graph, op)
    params = knobs.resolve("resize", op.where(), overrides)
    a = op.attrs
    flags = f"align_corners {int(a.align_corners)}, half_pixel_centers {int(a.half_pixel_centers)}"
    if op.type == "ResizeNearest":
        func, stages = resize_nearest_func(dtype, x.shape, y.shape), ()
        consts = {"rows": ("int32_t", p.rows), "cols": ("int32_t", p.cols)}
        detail = f"{dtype} nearest-neighbour resize ({flags})"
    else:
        func, stages = resize_bilinear_func(dtype, x.shape, y.shape), RESIZE_STAGES[dtype]
        weight_type = "int32_t" if dtype == "int8" else "float"
        consts = {"row_index": ("int32_t", np.stack([p.rows.lower, p.rows.upper], axis=1)),
                  "row_weight": (weight_type, p.rows.weight),
                  "col_index": ("int32_t", np.stack([p.cols.lower, p.cols.upper], axis=1)),
                  "col_weight": (weight_type, p.cols.weight)}
        detail = f"{dtype} bilinear resize ({flags}{', weights in 1/1024' if dtype == 'int8' else ''})"
    func = schedule_resize(func, params, stages)
    body = lower_kernel(func, f"{kernel_name(op)}_tvm", op.where())
    return emit_kernel(graph, op, body, consts, ["input", *consts, "output"], params, detail)


def transpose_conv_kernel(graph: Graph, op: Op, overrides: dict | None) -> Kernel:
    x, w, y = graph.tensor(op.inputs[0]), graph.tensor(op.inputs[1]), graph.tensor(op.outputs[0])
    a = op.attrs
    oc = y.shape[3]
    dtype = graph.op_dtype(op)
    common = dict(kind="conv", dtype=dtype, in_shape=tuple(x.shape), out_shape=tuple(y.shape),
                  kernel=(w.shape[1], w.shape[2]), stride=tuple(a.stride), dilation=(1, 1), pad=tuple(a.pad))
    bias = graph.tensor(op.inputs[2]).data if len(op.inputs) > 2 else np.zeros(oc, w.data.dtype)
    if dtype == "int8":
        q = qp.conv_qparams(graph, op)
        spec = ConvSpec(**common, input_offset=q.input_offset, output_offset=q.output_offset, act_min=q.act_min,
                        act_max=q.act_max, left_shift=bool(np.any(q.shift > 0)),
                        max_right=int(max(0, -int(q.shift.min()))))
        consts = {"filter": ("int8_t", w.data), "bias": ("int32_t", bias.astype(np.int32)),
                  "multiplier": ("int32_t", q.multiplier), "shift": ("int32_t", q.shift)}
    else:
        low, high = a.activation.bounds()
        spec = ConvSpec(**common, act_low=low, act_high=high)
        consts = {"filter": ("float", w.data), "bias": ("float", bias.astype(np.float32))}
    params = knobs.resolve("transpose_conv", op.where(), overrides, spec.kernel, oc, x.shape[3])
    func = ts.schedule_conv(transpose_conv_func(spec), params, TRANSPOSE_CONV_STAGES[dtype], True, spec.kernel,
                            x.shape[3])
    body = lower_kernel(func, f"{kernel_name(op)}_tvm", op.where())
    (kh, kw), (sh, sw) = spec.kernel, spec.stride
    detail = (f"{dtype} transpose convolution {kh}x{kw}, stride {sh}x{sw}, cropped (top, bottom, left, right) "
              f"{spec.pad}, activation {a.activation.label()}")
    return emit_kernel(graph, op, body, consts, ["input", *consts, "output"], params, detail)
