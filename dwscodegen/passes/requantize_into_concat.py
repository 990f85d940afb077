"""An int8 -> int8 Requantize (TFLite QUANTIZE) whose only consumers are Concatenations is folded into them.

TFLite's int8 CONCATENATION requires every input to have the output's quantization, so converters requantize
the others with a QUANTIZE in front. The IR's Concatenation takes inputs of any quantization and requantizes
them exactly as that QUANTIZE does (reference_ops::Requantize, see reference/shape_ops.py), so reading the
QUANTIZE's input directly computes the same values.
"""
from __future__ import annotations

from dataclasses import replace

from ..ir import Graph
from .shape_source_ops import rebuild


def requantize_into_concat(graph: Graph) -> Graph:
    consumers: dict[str, list] = {}
    for op in graph.ops:
        for name in op.inputs:
            consumers.setdefault(name, []).append(op)
    folded = {}
    for op in graph.ops:
        out = op.outputs[0]
        if (op.type == "Requantize" and out not in graph.outputs and consumers.get(out)
                and all(c.type == "Concatenation" for c in consumers[out])):
            folded[out] = op.inputs[0]
    ops = [replace(op, inputs=[folded.get(n, n) for n in op.inputs]) for op in graph.ops
           if not (op.type == "Requantize" and op.outputs[0] in folded)]
    return rebuild(graph, ops)
