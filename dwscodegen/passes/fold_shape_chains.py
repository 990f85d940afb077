"""Constant folding of static shape chains: an op whose value inputs are all constant (and a Shape, which
reads only its input's static shape) becomes the constant it computes. Keras 3 `Reshape` heads
(SHAPE -> STRIDED_SLICE -> PACK -> RESHAPE) fold to a RESHAPE with a constant new shape; a Reshape whose
new shape is then constant takes it from its output tensor (checked to agree) and drops the input, so
every Reshape left is the IR's single-input one.

Folding moves values without arithmetic (int8 constants only when every quantization agrees), so the
constant is exactly what the source runtime computes.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..ir import IMPORT_DTYPES, Graph, Op, Tensor
from .slicing import box_of_index, strided_slice_box
from .shape_source_ops import fail, rebuild


def _ints(values) -> list[int]:
    return [int(v) for v in np.asarray(values).reshape(-1)]


def _strided_slice(op, x, begin, end, strides):
    box = strided_slice_box(x.shape, begin, end, strides, op.attrs.options)
    return [x[box.index]]


def _slice_size(op, x, begin, size):
    index = tuple(slice(b, None if s == -1 else b + s) for b, s in zip(_ints(begin), _ints(size)))
    return [x[box_of_index(x.shape, index).index]]


def _split(op, x):
    """Split (equal parts) and SplitSizes (`sizes`) along `axis`."""
    o = op.attrs.options
    sizes = o.get("sizes") or [x.shape[o["axis"]] // o["num_splits"]] * o["num_splits"]
    return np.split(x, list(np.cumsum(sizes)[:-1]), axis=o["axis"])


# op type -> (value inputs -> [output values]); inputs arrive as NumPy arrays of their tensors' shapes
EVALUATORS = {
    "StridedSlice": _strided_slice,
    "SliceSize": _slice_size,
    "Split": _split,
    "SplitSizes": _split,
    "Pack": lambda op, *xs: [np.stack(xs, axis=op.attrs.options.get("axis", 0))],
    "Gather": lambda op, params, indices: [np.take(params, indices, axis=op.attrs.options.get("axis", 0))],
    "ReduceProd": lambda op, x, axes: [np.prod(x, axis=tuple(_ints(axes)), dtype=x.dtype,
                                               keepdims=bool(op.attrs.options.get("keep_dims")))],
    "Concatenation": lambda op, *xs: [np.concatenate(xs, axis=op.attrs.axis)],
    "Reshape": lambda op, x, *shape: [x],          # reshaped to the output tensor below
    "Squeeze": lambda op, x: [x],
    "ExpandDims": lambda op, x, axis: [x],
}


def _same_quant(tensors: list[Tensor]) -> bool:
    """int8 constants fold only where no requantization is implied (every quantization equal)."""
    quants = [t.quant for t in tensors if t.dtype == "int8"]
    if not quants:
        return True
    if any(q is None for q in quants):
        return False
    first = quants[0]
    return all(np.array_equal(q.scale, first.scale) and np.array_equal(q.zero_point, first.zero_point)
               for q in quants[1:])


def _foldable(graph: Graph, op: Op) -> bool:
    if op.type == "Shape":
        return True
    if op.type not in EVALUATORS:
        return False
    ins, outs = [graph.tensor(n) for n in op.inputs], [graph.tensor(n) for n in op.outputs]
    return all(t.is_const for t in ins) and _same_quant(ins + outs)


def _evaluate(graph: Graph, op: Op) -> list[np.ndarray]:
    x = graph.tensor(op.inputs[0])
    if op.type == "Shape":
        return [np.array(x.shape, dtype=np.int32)]
    try:
        return EVALUATORS[op.type](op, *(graph.tensor(n).data for n in op.inputs))
    except (ValueError, IndexError, KeyError, TypeError) as exc:
        raise fail(graph, op, f"cannot fold the constant: {exc}") from None


def fold_shape_chains(graph: Graph) -> Graph:
    tensors = dict(graph.tensors)
    folded = replace(graph, tensors=tensors)   # sees each constant as soon as it is folded
    ops = []
    for op in graph.ops:
        if not _foldable(folded, op):
            ops.append(op)
            continue
        for name, value in zip(op.outputs, _evaluate(folded, op)):
            y = tensors[name]
            if name in graph.outputs:
                raise fail(graph, op, f"graph output '{name}' is a constant; a model must compute its outputs")
            if np.size(value) != y.size:
                raise fail(graph, op, f"folds to {np.size(value)} values but output '{name}' has shape "
                                      f"{list(y.shape)}")
            tensors[name] = replace(y, data=np.asarray(value).astype(IMPORT_DTYPES[y.dtype]).reshape(y.shape))
    return rebuild(graph, [_static_reshape(folded, op) for op in ops], tensors)


def _static_reshape(graph: Graph, op: Op) -> Op:
    """Reshape [x, new_shape]: the new shape must be constant and agree with the output tensor's shape."""
    if op.type != "Reshape" or len(op.inputs) < 2:
        return op
    x, shape, y = graph.tensor(op.inputs[0]), graph.tensor(op.inputs[1]), graph.tensor(op.outputs[0])
    if not shape.is_const:
        raise fail(graph, op, f"the new shape '{shape.name}' is computed at run time by ops that do not fold to a "
                              "constant; only static shapes are supported")
    wanted = _ints(shape.data)
    known = int(np.prod([d for d in wanted if d != -1]))
    if wanted.count(-1) == 1 and known and x.size % known == 0:
        wanted[wanted.index(-1)] = x.size // known
    # Only the number of values matters: a reshape keeps their order, and the output tensor has the shape.
    if int(np.prod(wanted)) != y.size:
        raise fail(graph, op, f"new shape {_ints(shape.data)} does not fit output '{y.name}' {list(y.shape)}")
    return replace(op, inputs=op.inputs[:1])
