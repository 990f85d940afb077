"""Per-layer facts about a graph (shapes, MACs, parameter counts, arena placement) for reports."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .ir import Graph, Op
from .planner import ArenaPlan


@dataclass(frozen=True)
class LayerRow:
    index: int
    name: str
    op: str
    input_shape: str
    output_shape: str
    macs: int
    params: int
    arena: str       # "[start, end)" in the arena, or where the output lives otherwise


def op_macs(graph: Graph, op: Op) -> int:
    out = graph.tensor(op.outputs[0])
    if op.type in ("Conv2D", "DepthwiseConv2D"):
        w = graph.tensor(op.inputs[1])
        per_output = w.shape[1] * w.shape[2] * (w.shape[3] if op.type == "Conv2D" else 1)
        return out.size * per_output
    if op.type == "FullyConnected":
        return out.size * graph.tensor(op.inputs[1]).shape[1]
    if op.type in ("AveragePool2D", "MaxPool2D"):
        return out.size * int(np.prod(op.attrs.filter))
    return 0


def layer_rows(graph: Graph, plan: ArenaPlan) -> list[LayerRow]:
    rows = []
    for op in graph.ops:
        out = graph.tensor(op.outputs[0])
        offset = plan.offset(out.name)
        where = f"[{offset}, {offset + out.nbytes})" if offset is not None else "graph output"
        params = sum(graph.tensor(n).size for n in op.inputs if graph.tensor(n).is_const)
        rows.append(LayerRow(op.index, op.name, op.type, "x".join(map(str, graph.tensor(op.inputs[0]).shape)),
                             "x".join(map(str, out.shape)), op_macs(graph, op), params, where))
    return rows
