"""Squeeze and ExpandDims of an activation become a Reshape: they only add or drop size-1 axes, so the
values keep their order and the output tensor already has the new shape. (Of a constant, fold_constants
has folded them first.)"""
from __future__ import annotations

from dataclasses import replace

from ..ir import Graph, NoAttrs
from .shape_source_ops import rebuild

RESHAPES = ("Squeeze", "ExpandDims")


def shape_to_reshape(graph: Graph) -> Graph:
    ops = [replace(op, type="Reshape", inputs=op.inputs[:1], attrs=NoAttrs())
           if op.type in RESHAPES and not graph.tensor(op.inputs[0]).is_const else op for op in graph.ops]
    return rebuild(graph, ops)
