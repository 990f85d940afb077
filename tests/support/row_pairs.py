"""Conv-like layers in a chain (the middle tensors row-fusable, row_fusion.py): two (pair_graph) or more
(chain_graph), optionally between two copies so the chain's input and output are arena tensors too."""
from __future__ import annotations

import copy
import dataclasses

from dwscodegen.ir import Graph, NoAttrs, Op
from dwscodegen.validate import validate

from .layers import ConvCase, conv_graph


def pair_graph(first: ConvCase, second: ConvCase, dtype: str, seed: int = 0, in_arena: bool = False) -> Graph:
    """first -> 'mid1' -> second: the chain of two (chain_graph)."""
    return chain_graph([first, second], dtype, seed=seed, in_arena=in_arena)


def chain_graph(cases: list[ConvCase], dtype: str, seed: int = 0, in_arena: bool = False) -> Graph:
    """cases[0] -> 'mid1' -> cases[1] -> 'mid2' -> ... -> 'y' (a row-fusable chain); each later case's in_shape
    is taken from the layer before (its other fields kept), its input zero point from that layer's output."""
    graphs = [conv_graph(cases[0], dtype, seed=seed)]
    for i, case in enumerate(cases[1:], start=1):
        mid = graphs[-1].tensor("y")
        graphs.append(conv_graph(dataclasses.replace(case, in_shape=mid.shape, in_zp=cases[i - 1].out_zp), dtype,
                                 seed=seed + i))
    last = len(cases) - 1
    tensors, ops = {}, []
    for i, g in enumerate(graphs):
        names = {"x": "x" if i == 0 else f"mid{i}", "w": f"w{i}", "b": f"b{i}", "y": "y" if i == last else f"mid{i + 1}"}
        for n, t in g.tensors.items():
            if n != "x" or i == 0:
                tensors[names[n]] = dataclasses.replace(t, name=names[n])
        op = g.ops[0]
        ops.append(Op(i, f"layer{i}", op.type, [names[n] for n in op.inputs], [names["y"]], op.attrs))
    inputs, outputs = ["x"], ["y"]
    if in_arena:
        for name, twin in (("x", "x_in"), ("y", "y_out")):
            tensors[twin] = copy.deepcopy(tensors[name])
            tensors[twin].name = twin
        ops = [Op(0, "copy_in", "Reshape", ["x_in"], ["x"], NoAttrs()),
               *(dataclasses.replace(op, index=op.index + 1) for op in ops),
               Op(len(ops) + 1, "copy_out", "Reshape", ["y"], ["y_out"], NoAttrs())]
        inputs, outputs = ["x_in"], ["y_out"]
    return validate(Graph("row_chain", tensors, ops, inputs, outputs, source="<test>"))
