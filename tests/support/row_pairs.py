"""Conv-like layers in a chain (the middle tensors row-fusable, row_fusion.py): two (pair_graph) or more
(chain_graph), or with element-wise stages among them (stage_graph), optionally between copies so the chain's
input and output are arena tensors too."""
from __future__ import annotations

import copy
import dataclasses

import numpy as np

from dwscodegen.ir import AddAttrs, Graph, MulAttrs, NoAttrs, Op, Quant, Tensor
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


@dataclasses.dataclass(frozen=True)
class Elementwise:
    """An element-wise stage of a chain (stage_graph): a unary op, or Mul / Add with a side input: "scale" a
    1x1x1xC input 's' (a squeeze-excite scale), "residual" the chain's input 'x', "full" an input 'r' of the
    output's shape. in_shape: only where it is the first stage."""
    type: str
    side: str | None = None
    out_zp: int = 0
    in_shape: tuple[int, int, int, int] | None = None


def stage_graph(stages: list, dtype: str, seed: int = 0, in_arena: bool = False) -> Graph:
    """stages (ConvCase or Elementwise) in a row: x -> 'mid1' -> ... -> 'y' (with in_arena, x, y and the side
    inputs are copies of the graph's inputs and outputs, so the arena holds them)."""
    rng = np.random.default_rng(seed)
    first = stages[0]
    x = conv_graph(first, dtype, seed=seed).tensor("x") if isinstance(first, ConvCase) else _activation_tensor(
        rng, "x", first.in_shape, dtype, -5)
    tensors, ops, cur, extra = {"x": x}, [], x, []
    last = len(stages) - 1
    for i, stage in enumerate(stages):
        out = "y" if i == last else f"mid{i + 1}"
        if isinstance(stage, ConvCase):
            zp = int(cur.quant.zero_point[0]) if dtype == "int8" else 0
            g = conv_graph(dataclasses.replace(stage, in_shape=cur.shape, in_zp=zp), dtype, seed=seed + i)
            names = {"x": cur.name, "w": f"w{i}", "b": f"b{i}", "y": out}
            for n, t in g.tensors.items():
                if n != "x":
                    tensors[names[n]] = dataclasses.replace(t, name=names[n])
            ops.append(Op(i, f"layer{i}", stage.kind, [names[n] for n in g.ops[0].inputs], [out], g.ops[0].attrs))
        else:
            inputs = [cur.name]
            if stage.side == "scale":
                tensors["s"] = _activation_tensor(rng, "s", (1, 1, 1, cur.shape[3]), dtype, 7)
                inputs, extra = [cur.name, "s"] if i % 2 else ["s", cur.name], extra + ["s"]
            elif stage.side == "residual":
                inputs = [cur.name, "x"]
            elif stage.side == "full":
                tensors["r"] = _activation_tensor(rng, "r", cur.shape, dtype, -9)
                inputs, extra = ["r", cur.name], extra + ["r"]
            attrs = {"Mul": MulAttrs, "Add": AddAttrs}.get(stage.type, NoAttrs)()
            tensors[out] = _activation_tensor(rng, out, cur.shape, dtype, stage.out_zp)
            ops.append(Op(i, f"{stage.type.lower()}{i}", stage.type, inputs, [out], attrs))
        cur = tensors[out]
    inputs, outputs = ["x", *extra], ["y"]
    if in_arena:
        copies = [(n, f"{n}_in") for n in inputs] + [("y", "y_out")]
        for name, twin in copies:
            tensors[twin] = dataclasses.replace(copy.deepcopy(tensors[name]), name=twin)
        ins = [Op(k, f"copy_{n}", "Reshape", [twin], [n], NoAttrs()) for k, (n, twin) in enumerate(copies[:-1])]
        ops = [*ins, *(dataclasses.replace(op, index=op.index + len(ins)) for op in ops),
               Op(len(ins) + len(ops), "copy_out", "Reshape", ["y"], ["y_out"], NoAttrs())]
        inputs, outputs = [twin for _, twin in copies[:-1]], ["y_out"]
    return validate(Graph("row_stages", tensors, ops, inputs, outputs, source="<test>"))


def _activation_tensor(rng, name: str, shape, dtype: str, zp: int) -> Tensor:
    t = Tensor(name, tuple(shape), dtype)
    if dtype == "int8":
        t.quant = Quant(np.array([float(np.float32(rng.uniform(0.02, 0.08)))]), np.array([zp], np.int32))
    return t
