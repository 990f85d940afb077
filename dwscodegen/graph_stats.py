"""Per-layer facts about a graph (shapes, MACs, parameter counts, arena placement) for reports."""
from __future__ import annotations

from dataclasses import dataclass


from .ir import Graph
from .ops import layer_kind, op_macs
from .planner import ArenaPlan


@dataclass(frozen=True)
class LayerRow:
    index: int
    name: str
    op: str
    kind: str        # the op table's kind; depthwise / pointwise / conv for convolutions
    input_shape: str
    output_shape: str
    macs: int
    params: int
    arena: str       # "[start, end)" in the arena, or where the output lives otherwise


def layer_rows(graph: Graph, plan: ArenaPlan) -> list[LayerRow]:
    rows = []
    for op in graph.ops:
        out = graph.tensor(op.outputs[0])
        offset = plan.offset(out.name)
        where = (f"[{offset}, {offset + out.nbytes})" if offset is not None
                 else "row-fused" if plan.fused_middle(out.name) else "graph output")
        params = sum(graph.tensor(n).size for n in op.inputs if graph.tensor(n).is_const)
        rows.append(LayerRow(op.index, op.name, op.type, layer_kind(graph, op), "x".join(map(str, graph.tensor(op.inputs[0]).shape)),
                             "x".join(map(str, out.shape)), op_macs(graph, op), params, where))
    return rows
