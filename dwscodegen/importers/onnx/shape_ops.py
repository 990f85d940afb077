"""Pooling, reductions, shape ops: AveragePool, MaxPool, GlobalAveragePool, ReduceMean, Flatten, Reshape,
Identity, Dropout, Pad, Concat."""
from __future__ import annotations

import numpy as np

from ...ir import ConcatAttrs, MeanAttrs, NoAttrs, PadAttrs, PoolAttrs
from . import layout
from .conv_ops import padding


def _nchw(t, name: str) -> tuple[int, ...]:
    s = t.shape_of(name)
    if len(s) != 4:
        raise t.fail(f"input {list(s)} must be 4-D NCHW")
    return s


def global_average_pool(t, node) -> None:
    n, c, _, _ = _nchw(t, node.input[0])
    t.emit(node, "Mean", [t.act(node.input[0])], (n, c, 1, 1), MeanAttrs(keep_dims=True))


def reduce_mean(t, node) -> None:
    """The mean over H and W, as torch >= 2.9 writes global average pooling (keepdims 0 or 1)."""
    a = t.attrs(node)
    s = t.shape_of(node.input[0])
    if t.opset >= 18:
        axes_name = t.optional_input(node, 1)
        axes = [] if axes_name is None else [int(v) for v in t.static(axes_name, "ReduceMean axes").reshape(-1)]
    else:
        axes = [int(v) for v in a.get("axes", [])]
    if not axes and a.get("noop_with_empty_axes", 0):
        raise t.fail("noop_with_empty_axes=1 without axes (an identity) is not supported")
    axes = sorted(ax + len(s) if ax < 0 else ax for ax in (axes or range(len(s))))
    if len(s) != 4 or axes != [2, 3]:
        raise t.fail(f"the mean over axes {axes} of a {len(s)}-D input is not supported; only over H and W (axes "
                     "2, 3) of a 4-D NCHW input")
    keep = bool(a.get("keepdims", 1))
    n, c = s[:2]
    t.emit(node, "Mean", [t.act(node.input[0])], (n, c, 1, 1) if keep else (n, c), MeanAttrs(keep_dims=keep))


def _pool(t, node, op_type: str) -> None:
    a = t.attrs(node)
    s = _nchw(t, node.input[0])
    if len(node.output) > 1 and node.output[1]:
        raise t.fail("the Indices output of MaxPool is not supported")
    k = tuple(a.get("kernel_shape", ()))
    if len(k) != 2:
        raise t.fail(f"kernel_shape {list(k)} must be 2-D")
    stride = tuple(a.get("strides", (1, 1)))
    if tuple(a.get("dilations", (1, 1))) != (1, 1):
        raise t.fail(f"dilations {a['dilations']} are not supported in pooling")
    pad = padding(t, a, s[2:], k, stride, (1, 1))
    if op_type == "AveragePool2D" and a.get("count_include_pad", 0) and any(pad):
        raise t.fail("count_include_pad=1 with padding is not supported (padded taps are not counted)")
    oh = (s[2] + pad[0] + pad[1] - k[0]) // stride[0] + 1
    ow = (s[3] + pad[2] + pad[3] - k[1]) // stride[1] + 1
    if a.get("ceil_mode", 0):
        ch = -(-(s[2] + pad[0] + pad[1] - k[0]) // stride[0]) + 1
        cw = -(-(s[3] + pad[2] + pad[3] - k[1]) // stride[1]) + 1
        if (ch, cw) != (oh, ow):
            raise t.fail("ceil_mode=1 changes the output size here; only floor mode is supported")
    t.emit(node, op_type, [t.act(node.input[0])], (s[0], s[1], oh, ow), PoolAttrs(filter=k, stride=stride, pad=pad),
           keeps_quant=op_type == "MaxPool2D")


def average_pool(t, node) -> None:
    _pool(t, node, "AveragePool2D")


def max_pool(t, node) -> None:
    _pool(t, node, "MaxPool2D")


def _layout_free(shape) -> bool:
    """NCHW and NHWC order the elements of `shape` alike (H = W = 1, or C = 1)."""
    return len(shape) != 4 or shape[1] == 1 or shape[2] * shape[3] == 1


def _reshape_to(t, node, out_shape: tuple[int, ...]) -> None:
    x = node.input[0]
    s = t.shape_of(x)
    if int(np.prod(s)) != int(np.prod(out_shape)):
        raise t.fail(f"cannot reshape {list(s)} to {list(out_shape)}")
    if len(out_shape) not in (2, 4):
        raise t.fail(f"output shape {list(out_shape)} must be 2-D or 4-D")
    for shape in (s, out_shape):
        if not _layout_free(shape):
            raise t.fail(f"reshaping {list(s)} to {list(out_shape)} is not supported: ONNX orders the elements of "
                         "an NCHW tensor C, H, W but the generated code keeps NHWC (H, W, C), so the result would "
                         "differ; only tensors with H = W = 1 (e.g. after GlobalAveragePool) or C = 1 can be "
                         "flattened or reshaped")
    t.emit(node, "Reshape", [t.act(x)], out_shape, NoAttrs(), keeps_quant=True)


def flatten(t, node) -> None:
    s = t.shape_of(node.input[0])
    axis = t.attrs(node).get("axis", 1)
    axis = axis + len(s) if axis < 0 else axis
    _reshape_to(t, node, (int(np.prod(s[:axis])), int(np.prod(s[axis:]))))


def reshape(t, node) -> None:
    s = t.shape_of(node.input[0])
    target = [int(v) for v in t.static(node.input[1], "Reshape shape").reshape(-1)]
    allow_zero = t.attrs(node).get("allowzero", 0)
    out = [s[k] if v == 0 and not allow_zero else v for k, v in enumerate(target)]
    if out.count(-1) > 1 or any(v < -1 or v == 0 for v in out):
        raise t.fail(f"shape {target} is not supported")
    if -1 in out:
        known = int(np.prod([v for v in out if v != -1]))
        out[out.index(-1)] = int(np.prod(s)) // known
    _reshape_to(t, node, tuple(out))


def identity(t, node) -> None:
    """Identity and Dropout (inference) are aliases: their output is their input under another name."""
    if len(node.output) > 1 and node.output[1]:
        raise t.fail("the mask output of Dropout is not supported")
    x, y = node.input[0], node.output[0]
    if y in t.graph_outputs:
        raise t.fail("an Identity/Dropout that produces a graph output is not supported")
    if x in t.values:
        t.values[y] = t.values[x]
        if x in t.qconsts:
            t.qconsts[y] = t.qconsts[x]
    elif x in t.ir:
        t.ir[y] = t.ir[x]
    else:
        raise t.fail(f"input '{x}' is not produced by a supported node")


def pad(t, node) -> None:
    a = t.attrs(node)
    mode = t.text_attr(node, "mode", "constant")
    if mode != "constant":
        raise t.fail(f"mode '{mode}' is not supported; only constant padding")
    s = t.shape_of(node.input[0])
    if t.opset < 11:
        pads, value = list(a.get("pads", [])), float(a.get("value", 0.0))
    else:
        pads = [int(v) for v in t.static(node.input[1], "Pad pads").reshape(-1)]
        value_name = t.optional_input(node, 2)
        value = float(t.static(value_name, "Pad value").reshape(-1)[0]) if value_name else 0.0
        if t.optional_input(node, 3):
            raise t.fail("the axes input is not supported")
    if len(pads) != 2 * len(s) or min(pads) < 0:
        raise t.fail(f"pads {pads} must be 2 x {len(s)} values >= 0")
    if value != 0.0:
        raise t.fail(f"constant value {value} is not supported; only 0")
    pairs = list(zip(pads[:len(s)], pads[len(s):]))
    out = tuple(d + p0 + p1 for d, (p0, p1) in zip(s, pairs))
    if len(s) == 4:
        pairs = [pairs[k] for k in layout.NCHW_TO_NHWC]
    t.emit(node, "Pad", [t.act(node.input[0])], out, PadAttrs(paddings=tuple(tuple(p) for p in pairs)))


def concat(t, node) -> None:
    shapes = [t.shape_of(n) for n in node.input]
    axis = t.attrs(node).get("axis", 1)
    rank = len(shapes[0])
    axis = axis + rank if axis < 0 else axis
    out = list(shapes[0])
    out[axis] = sum(s[axis] for s in shapes)
    t.emit(node, "Concatenation", [t.act(n) for n in node.input], tuple(out),
           ConcatAttrs(axis=layout.ir_axis(axis, rank)))


HANDLERS = {"GlobalAveragePool": global_average_pool, "ReduceMean": reduce_mean, "AveragePool": average_pool,
            "MaxPool": max_pool, "Flatten": flatten, "Reshape": reshape, "Identity": identity, "Dropout": identity,
            "Pad": pad, "Concat": concat}
