"""Facts about ops that every stage asks the same way: what kind of convolution a layer is, how many
multiply-accumulates it does. Importers, validation, both backends, `inspect` and the benchmarks read
them from here, so they cannot disagree."""
from __future__ import annotations

import numpy as np

from .ir import Graph, Op

CONV_TYPES = ("Conv2D", "DepthwiseConv2D")


def is_pointwise(graph: Graph, op: Op) -> bool:
    """A 1x1 Conv2D without padding: a matrix product over pixels (stride may still skip pixels)."""
    return (op.type == "Conv2D" and graph.tensor(op.inputs[1]).shape[1:3] == (1, 1)
            and tuple(op.attrs.pad) == (0, 0, 0, 0))


def conv_kind(graph: Graph, op: Op) -> str:
    """depthwise | pointwise | conv for a conv-like op."""
    if op.type == "DepthwiseConv2D":
        return "depthwise"
    return "pointwise" if is_pointwise(graph, op) else "conv"


def op_macs(graph: Graph, op: Op) -> int:
    out = graph.tensor(op.outputs[0])
    if op.type in CONV_TYPES:
        w = graph.tensor(op.inputs[1])
        per_output = w.shape[1] * w.shape[2] * (w.shape[3] if op.type == "Conv2D" else 1)
        return out.size * per_output
    if op.type == "FullyConnected":
        return out.size * graph.tensor(op.inputs[1]).shape[1]
    if op.type in ("AveragePool2D", "MaxPool2D"):
        return out.size * int(np.prod(op.attrs.filter))
    if op.type == "TransposeConv2D":
        # every input value times the whole filter, as the scatter computes it (cropped taps included)
        return graph.tensor(op.inputs[0]).size * int(np.prod(graph.tensor(op.inputs[1]).shape[:3]))
    return 0
