"""Slices of activations become the IR's Slice: StridedSlice and SliceSize with constant bounds, and Split /
SplitSizes (one Slice per output). Where the source op drops axes (shrink_axis_mask) or adds them
(new_axis_mask), the Slice keeps the input's rank and a Reshape follows it.

Constant slices were folded before (fold_constants); bounds computed at run time are an error.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..ir import Graph, NoAttrs, Op, SliceAttrs
from .slicing import Box, box_of_index, strided_slice_box
from .shape_source_ops import fail, rebuild

SLICES = ("StridedSlice", "SliceSize", "Split", "SplitSizes")


def _constant(graph: Graph, op: Op, position: int, what: str) -> list[int]:
    t = graph.tensor(op.inputs[position])
    if not t.is_const:
        raise fail(graph, op, f"{what} '{t.name}' is computed at run time; only constant bounds are supported")
    return [int(v) for v in t.data.reshape(-1)]


def _boxes(graph: Graph, op: Op) -> list[Box]:
    """One box per output of the op."""
    shape = graph.tensor(op.inputs[0]).shape
    o = op.attrs.options
    if op.type == "StridedSlice":
        bounds = [_constant(graph, op, k, what) for k, what in ((1, "begin"), (2, "end"), (3, "strides"))]
        return [strided_slice_box(shape, *bounds, o)]
    if op.type == "SliceSize":
        begin, size = _constant(graph, op, 1, "begin"), _constant(graph, op, 2, "size")
        return [box_of_index(shape, tuple(slice(b, None if s == -1 else b + s) for b, s in zip(begin, size)))]
    axis = o["axis"]
    sizes = o.get("sizes") or [shape[axis] // o["num_splits"]] * o["num_splits"]
    if sum(sizes) != shape[axis] or min(sizes) < 1:
        raise ValueError(f"sizes {sizes} do not split dimension {axis} of size {shape[axis]}")
    starts = np.cumsum([0] + list(sizes))
    return [box_of_index(shape, (slice(None),) * axis + (slice(int(b), int(b + s)),))
            for b, s in zip(starts, sizes)]


def _rewrite(graph: Graph, op: Op, tensors: dict) -> list[Op]:
    try:
        boxes = _boxes(graph, op)
    except ValueError as exc:
        raise fail(graph, op, f"not a slice of the input {list(graph.tensor(op.inputs[0]).shape)}: {exc}") from None
    ops = []
    for k, (name, box) in enumerate(zip(op.outputs, boxes)):
        y = graph.tensor(name)
        if box.shape != y.shape and int(np.prod(box.shape)) != y.size:
            raise fail(graph, op, f"slices {list(box.shape)} but output '{name}' has shape {list(y.shape)}")
        op_name = op.name if len(op.outputs) == 1 else f"{op.name}_{k}"
        attrs = SliceAttrs(begin=box.starts, strides=box.steps)
        if box.counts == y.shape:
            ops.append(Op(op.index, op_name, "Slice", op.inputs[:1], [name], attrs))
            continue
        # a Slice of the input's rank, then the Reshape to the source op's shape
        part = f"{name}/slice"
        tensors[part] = replace(y, name=part, shape=box.counts, data=None)
        ops += [Op(op.index, op_name, "Slice", op.inputs[:1], [part], attrs),
                Op(op.index, f"{op_name}_reshape", "Reshape", [part], [name], NoAttrs())]
    return ops


def slices(graph: Graph) -> Graph:
    tensors = dict(graph.tensors)
    ops = []
    for op in graph.ops:
        if op.type in SLICES and not graph.tensor(op.inputs[0]).is_const:
            ops += _rewrite(graph, op, tensors)
        else:
            ops.append(op)
    return rebuild(graph, ops, tensors)
