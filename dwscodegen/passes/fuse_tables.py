"""int8 elementwise chains of one tensor become one table lookup.

An int8 tensor y computed from a single int8 tensor x by elementwise ops only (EfficientNet's swish
x * logistic(x), a Rescaling after an activation, tanh(x) + c, ...) is a function of one int8 value: 256
possible inputs. The chain becomes a Table op x -> y whose entries are the chain's ops applied in turn, each
exactly as the reference computes it (int8_elementwise.py), so the result is bit-identical to running the
ops one after the other; the intermediate tensors are never written. Only where nothing else reads them:
an intermediate another op (or the caller) reads stays, and so does its chain.

Ops that take part: the int8 activations (HardSwish, Logistic, Tanh, LeakyRelu), a Table, and the binary
ops (Add, Mul, Maximum, Minimum, PRelu) whose operands are the chain's own tensors of the output's shape or
one-element constants (broadcasting a tensor would mix indices). float32 chains are left alone: their
result depends on more than an 8-bit input.
"""
from __future__ import annotations

import numpy as np

from ..int8_elementwise import BINARY, UNARY, table
from ..ir import Graph, Op, TableAttrs
from .graph_edit import readers, remove_unused

Q = np.arange(-128, 128)


def fuse_tables(graph: Graph) -> Graph:
    chains = _chains(graph)
    reading = readers(graph)
    fused: set[int] = set()
    for op in reversed(list(graph.ops)):
        y = op.outputs[0]
        if y not in chains or any(id(m) in fused for m in chains[y][2]):
            continue
        source, values, members, what = chains[y]
        inner = [m for m in members if m is not op]
        if not inner and not _reads_twice(op, source):
            continue     # one op that is already a table (or a binary op of two different tensors)
        if any(not _private(graph, m.outputs[0], members, reading) for m in inner):
            continue
        position = graph.ops.index(op)
        graph.ops[position] = Op(op.index, op.name, "Table", [source], [y], TableAttrs(values, what), origin=op.origin)
        for m in inner:
            graph.ops.remove(m)
        fused.update(id(m) for m in members)
    return remove_unused(graph) if fused else graph


def _chains(graph: Graph) -> dict[str, tuple[str, np.ndarray, list[Op], str]]:
    """int8 tensor -> (the one tensor x it is a function of, its value for each x = -128..127 (index x + 128),
    the ops computing it from x, a readable formula) for every tensor an elementwise chain of one x makes."""
    chains: dict[str, tuple[str, np.ndarray, list[Op], str]] = {}
    for op in graph.ops:
        if not _takes_part(graph, op):
            continue
        variables = [n for n in op.inputs if not graph.tensor(n).is_const]
        sources = {chains[n][0] if n in chains else n for n in variables}
        if len(sources) != 1:
            continue
        (x,) = sources
        value = {n: chains[n][1].astype(np.int64) if n in chains else Q for n in variables}
        formula = {n: chains[n][3] if n in chains else "x" for n in variables}
        members = list({id(m): m for n in variables if n in chains for m in chains[n][2]}.values()) + [op]
        if op.type in BINARY:
            operands = [graph.tensor(n).data.reshape(-1) if graph.tensor(n).is_const else value[n] for n in op.inputs]
            result = BINARY[op.type](graph, op)(*operands)
            terms = [_constant(graph, n) if graph.tensor(n).is_const else formula[n] for n in op.inputs]
        else:
            (n,) = variables
            result = table(graph, op)[value[n] + 128]
            terms = [formula[n]]
        name = op.attrs.what if op.type == "Table" else op.type.lower()
        chains[op.outputs[0]] = (x, np.asarray(result, np.int8), members, f"{name}({', '.join(terms)})")
    return chains


def _takes_part(graph: Graph, op: Op) -> bool:
    if graph.op_dtype(op) != "int8" or graph.tensor(op.outputs[0]).dtype != "int8":
        return False
    if op.type in UNARY or op.type == "Table":
        return True
    if op.type not in BINARY:
        return False
    shape = graph.tensor(op.outputs[0]).shape
    return all(graph.tensor(n).size == 1 if graph.tensor(n).is_const else graph.tensor(n).shape == shape
               for n in op.inputs)


def _reads_twice(op: Op, source: str) -> bool:
    """A binary op of the same tensor on both sides (x * x): one op, but not a table until fused."""
    return op.type in BINARY and all(n == source for n in op.inputs)


def _private(graph: Graph, name: str, members: list[Op], reading: dict[str, list[Op]]) -> bool:
    """Only ops of the chain read `name`, and the caller does not."""
    return name not in graph.outputs and all(any(r is m for m in members) for r in reading.get(name, []))


def _constant(graph: Graph, name: str) -> str:
    return str(int(np.asarray(graph.tensor(name).data).reshape(-1)[0]))
