"""Constant folding: every Static op (a source node whose inputs are all constants, or that only reads a
shape: ONNX Shape / Constant / ConstantOfShape / Gather / Unsqueeze / Concat / Cast chains and the like)
turns into the constants it computes, and what nothing reads any more goes.

The importer evaluated each Static op already while reading the file, because the op reading it may need
the value to know its own output shape (a Reshape's target shape decides its NHWC output). Evaluating as
it reads, in file order, needs no second evaluator here; this pass makes those values the graph's."""
from __future__ import annotations

from ..ir import Graph
from .graph_edit import remove_unused
from .source_ops import STATIC


def fold_constants(graph: Graph) -> Graph:
    kept = []
    for op in graph.ops:
        if op.type != STATIC:
            kept.append(op)
            continue
        for name, value in zip(op.outputs, op.attrs.values):
            graph.tensors[name].data = value
    graph.ops = kept
    return remove_unused(graph)
