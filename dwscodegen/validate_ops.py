"""Semantic checks of the ops of squeeze-excite blocks and detector / segmentation heads: broadcasting binary
ops, one-input activations, resizes and transpose convolutions (validate.py calls them by op type)."""
from __future__ import annotations

import numpy as np

from .broadcast import broadcast_shape
from .ir import Graph, Op
from .qparams import hard_swish_params, scale_zp
from .validate_tensors import check_bias, check_filter_quant, check_quant_values, same_quant, single_input


def check_resize(graph: Graph, op: Op, dtype: str, fail) -> None:
    x, y = single_input(graph, op, fail)
    if len(x.shape) != 4 or len(y.shape) != 4 or (x.shape[0], x.shape[3]) != (y.shape[0], y.shape[3]):
        raise fail(f"{op.where()}: resizes H and W of a 4-D NHWC input; input {list(x.shape)} and output "
                   f"{list(y.shape)} must agree in N and C")
    if op.attrs.align_corners and op.attrs.half_pixel_centers:
        raise fail(f"{op.where()}: align_corners and half_pixel_centers cannot both be set (TFLite refuses it)")
    if dtype == "int8":
        same_quant(op, x, y, fail)    # TFLite interpolates the int8 values as they are
        if op.type == "ResizeBilinear":
            from .resize import bilinear_axis_int8
            for axis in (1, 2):
                if bilinear_axis_int8(x.shape[axis], y.shape[axis], op.attrs).lower.max() > x.shape[axis] - 1:
                    raise fail(f"{op.where()}: TFLite's integer bilinear resize from {x.shape[axis]} to "
                               f"{y.shape[axis]} reads past the input's last row or column (its 1/1024 scale "
                               "is too coarse for this upscale); resize in smaller steps")


def check_transpose_conv(graph: Graph, op: Op, dtype: str, fail) -> None:
    where = op.where()
    if len(op.inputs) not in (2, 3):
        raise fail(f"{where}: expects inputs [input, filter] or [input, filter, bias]")
    x, w, y = graph.tensor(op.inputs[0]), graph.tensor(op.inputs[1]), graph.tensor(op.outputs[0])
    if not w.is_const or len(w.shape) != 4 or len(x.shape) != 4:
        raise fail(f"{where}: needs a 4-D NHWC input and a constant filter [OC, KH, KW, IC], got "
                   f"{list(x.shape)} and {list(w.shape)}")
    oc, kh, kw, ic = w.shape
    if ic != x.shape[3]:
        raise fail(f"{where}: filter {list(w.shape)} has {ic} input channels but input '{x.name}' has {x.shape[3]}")
    a = op.attrs
    top, bottom, left, right = a.pad
    if min(a.stride) < 1 or top < 0 or left < 0:
        raise fail(f"{where}: stride {list(a.stride)} must be >= 1 and the top/left crop {top}/{left} >= 0")
    expected = (x.shape[0], (x.shape[1] - 1) * a.stride[0] + kh - top - bottom,
                (x.shape[2] - 1) * a.stride[1] + kw - left - right, oc)
    if expected[1] < 1 or expected[2] < 1 or y.shape != expected:
        raise fail(f"{where}: output '{y.name}' has shape {list(y.shape)} but the op computes {list(expected)} "
                   f"(padding {list(a.pad)})")
    check_bias(graph, op, dtype, oc, fail)
    if w.dtype != dtype:
        raise fail(f"{where}: filter '{w.name}' is {w.dtype} but the op's activations are {dtype} (hybrid "
                   "transpose convolution is not supported)")
    if dtype == "int8":
        check_filter_quant(w, 0, oc, where, fail)


def check_binary(graph: Graph, op: Op, dtype: str, fail) -> None:
    """Add, Mul, Maximum, Minimum: [a, b]; PRelu: [input, alpha]. NumPy-style broadcasting (shapes aligned
    at the right, each dimension equal or 1) of any rank, as ai-edge-litert 2.3's reference kernels do it
    (measured up to 7 dimensions); one operand may be a constant."""
    where = op.where()
    if len(op.inputs) != 2:
        raise fail(f"{where}: expects exactly two inputs, got {len(op.inputs)}")
    a, b, y = (graph.tensor(n) for n in (*op.inputs, op.outputs[0]))
    if a.is_const and b.is_const:
        raise fail(f"{where}: both inputs '{a.name}' and '{b.name}' are constants; fold the op into a constant "
                   "before generating code")
    expected = broadcast_shape(a.shape, b.shape)
    if expected is None:
        raise fail(f"{where}: shapes {list(a.shape)} and {list(b.shape)} do not broadcast (aligned at the right, "
                   "each dimension must be equal or 1)")
    if op.type == "PRelu" and (a.is_const or expected != a.shape):
        raise fail(f"{where}: alpha '{b.name}' {list(b.shape)} must broadcast to the input '{a.name}' "
                   f"{list(a.shape)}, and the input must be an activation")
    if y.shape != expected:
        raise fail(f"{where}: output '{y.name}' has shape {list(y.shape)} but {list(a.shape)} and {list(b.shape)} "
                   f"broadcast to {list(expected)}")
    for t in (a, b):
        if t.is_const and t.dtype != dtype:
            raise fail(f"{where}: constant '{t.name}' is {t.dtype} but the op computes in {dtype}")
        if t.is_const and dtype == "int8":
            if t.quant is None or t.quant.per_channel or len(t.quant.scale) != 1:
                raise fail(f"{where}: int8 constant '{t.name}' needs per-tensor quant {{scale, zero_point}}")
            check_quant_values(t, fail)
    if op.type in ("Maximum", "Minimum") and dtype == "int8":
        if len({scale_zp(graph, n) for n in (*op.inputs, op.outputs[0])}) != 1:
            raise fail(f"{where}: int8 {op.type} compares raw int8 values, so its inputs and output must share one "
                       f"quantization (TFLite's int8 spec); got (scale, zero point) "
                       f"{[scale_zp(graph, n) for n in (*op.inputs, op.outputs[0])]}")


def check_activation(graph: Graph, op: Op, dtype: str, fail) -> None:
    """HardSwish, Logistic, Tanh, LeakyRelu: one input, same shape out; int8 as TFLite's Prepare demands."""
    x, y = single_input(graph, op, fail)
    if x.shape != y.shape:
        raise fail(f"{op.where()}: output shape {list(y.shape)} must equal input shape {list(x.shape)}")
    if dtype != "int8":
        return
    (si, zi), (so, zo) = scale_zp(graph, x.name), scale_zp(graph, y.name)
    if op.type == "Logistic" and so != 1 / 256:
        raise fail(f"{op.where()}: int8 logistic output '{y.name}' must have scale 1/256 (TFLite's requirement), "
                   f"got {so:g}")
    if op.type == "HardSwish" and hard_swish_params(si, zi, so, zo).output_exponent > 0:
        raise fail(f"{op.where()}: int8 hard swish needs output scale > input scale / 128 (TFLite's requirement), "
                   f"got input {si:g}, output {so:g}")


def check_table(graph: Graph, op: Op, dtype: str, fail) -> None:
    """Table (passes/fuse_tables.py): int8 in, int8 out of the same shape, 256 int8 entries."""
    x, y = single_input(graph, op, fail)
    if dtype != "int8" or x.shape != y.shape:
        raise fail(f"{op.where()}: a table maps an int8 tensor to an int8 tensor of the same shape, got {x.dtype} "
                   f"{list(x.shape)} -> {y.dtype} {list(y.shape)}")
    table = np.asarray(op.attrs.table)
    if table.shape != (256,) or table.dtype != np.int8:
        raise fail(f"{op.where()}: the table must hold 256 int8 values, got {table.dtype} {list(table.shape)}")
