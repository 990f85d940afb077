"""Source ops: what an importer translates 1:1 but the IR has no kernel for. Each is folded to a constant or
rewritten into IR ops by a pass; none may reach validation or a backend (`require_none_left` says which one
could not be rewritten and why).

Their meaning is format-neutral (NumPy terms); `SourceAttrs.options` carries the source op's options
under these names:

    Shape          [x] -> int32 [rank]: x's static shape (x may be an activation: only its shape is read)
    StridedSlice   [x, begin, end, strides]; begin_mask, end_mask, shrink_axis_mask, ellipsis_mask,
                   new_axis_mask, offset (TFLite STRIDED_SLICE; NumPy basic indexing)
    SliceSize      [x, begin, size] (TFLite SLICE; size -1 = to the end)
    Split          [x] -> outputs of equal size along `axis`
    SplitSizes     [x] -> outputs of `sizes` along `axis` (TFLite SPLIT_V)
    Pack           [x0, x1, ...] stacked along a new `axis`
    Gather         [params, indices] along `axis` (batch_dims 0)
    Squeeze        [x] -> x without some of its size-1 axes (the output tensor gives the shape)
    ExpandDims     [x, axis] -> x with a new size-1 axis (the output tensor gives the shape)
    ReduceProd     [x, axes]; keep_dims
    Requantize     [x] int8 -> int8 with another scale / zero point (TFLite QUANTIZE int8 -> int8, which a
                   converter puts in front of a CONCATENATION input of another quantization)
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

from ..errors import DwsError
from ..ir import Graph, Op

SOURCE_OP_TYPES = ("Shape", "StridedSlice", "SliceSize", "Split", "SplitSizes", "Pack", "Gather", "Squeeze",
                   "ExpandDims", "ReduceProd", "Requantize")


@dataclass
class SourceAttrs:
    """The source op's options (see the module docstring), and its name in the model file for messages."""
    source: str = ""
    options: dict = field(default_factory=dict)


def fail(graph: Graph, op: Op, what: str) -> DwsError:
    source = f" ({op.attrs.source})" if isinstance(op.attrs, SourceAttrs) and op.attrs.source else ""
    return DwsError(f"{graph.source or graph.name}: {op.where()}{source}: {what}")


def rebuild(graph: Graph, ops: list[Op], tensors: dict | None = None) -> Graph:
    """`graph` with `ops` (renumbered 0, 1, ... in order: kernel names, traces and the tuner index ops by
    position) and only the tensors that they or the graph's inputs and outputs use."""
    tensors = dict(graph.tensors if tensors is None else tensors)
    used = set(graph.inputs) | set(graph.outputs) | {n for op in ops for n in (*op.inputs, *op.outputs)}
    kept = {n: t for n, t in tensors.items() if n in used}
    return replace(graph, ops=[replace(op, index=i) for i, op in enumerate(ops)], tensors=kept,
                   origin={n: o for n, o in graph.origin.items() if n in kept})


def require_none_left(graph: Graph) -> Graph:
    """The last pass of an importer: a source op still here could not be rewritten."""
    for op in graph.ops:
        if op.type == "Requantize":
            raise fail(graph, op, "an int8 -> int8 requantization is supported only where it feeds CONCATENATION "
                                  "inputs (folded into the concatenation)")
        if op.type in SOURCE_OP_TYPES:
            inputs = [n for n in op.inputs if not graph.tensor(n).is_const]
            raise fail(graph, op, f"computed at run time from {', '.join(repr(n) for n in inputs)}; only "
                                  "constant (or static-shape) instances are supported, which import folds away")
    return graph
