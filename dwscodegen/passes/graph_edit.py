"""What every pass needs to edit a Graph: who reads a tensor, who writes it, new tensor names, and the
clean-up after a rewrite (drop what nothing reads, number the ops again)."""
from __future__ import annotations

from ..errors import DwsError
from ..ir import Graph, Op, Tensor


def readers(graph: Graph) -> dict[str, list[Op]]:
    """tensor name -> the ops reading it, in op order (an op reading a tensor twice is listed once)."""
    result: dict[str, list[Op]] = {}
    for op in graph.ops:
        for name in dict.fromkeys(op.inputs):
            result.setdefault(name, []).append(op)
    return result


def producers(graph: Graph) -> dict[str, Op]:
    return {name: op for op in graph.ops for name in op.outputs}


def only_reader(graph: Graph, name: str, reading: dict[str, list[Op]]) -> Op | None:
    """The one op reading `name`, if exactly one does and `name` is not a graph output."""
    users = reading.get(name, [])
    return users[0] if len(users) == 1 and name not in graph.outputs else None


def unique_tensor_name(graph: Graph, base: str) -> str:
    """`base`, or `base#1`, `base#2`, ... whichever is free (the importers' convention for repeated names)."""
    name, n = base, 1
    while name in graph.tensors:
        name = f"{base}#{n}"
        n += 1
    return name


def add_tensor(graph: Graph, base: str, origin: str | None, **fields) -> str:
    """Declare a new tensor named after `base` (see unique_tensor_name); `origin` is its name in the source
    file, None for a tensor the source does not have (an oracle running the file cannot read it back)."""
    name = unique_tensor_name(graph, base)
    graph.tensors[name] = Tensor(name=name, **fields)
    if origin is not None:
        graph.origin[name] = origin
    return name


def rename_input(graph: Graph, old: str, new: str) -> None:
    """Every op reading `old` reads `new` instead (and so does the graph's output list)."""
    for op in graph.ops:
        op.inputs = [new if n == old else n for n in op.inputs]
    graph.outputs = [new if n == old else n for n in graph.outputs]


def remove_unused(graph: Graph) -> Graph:
    """Drop ops whose outputs nothing reads (none is a graph output), repeatedly, then tensors no op or graph
    input/output mentions, and number the ops 0, 1, ... again."""
    while True:
        read = {n for op in graph.ops for n in op.inputs} | set(graph.outputs)
        live = [op for op in graph.ops if any(o in read for o in op.outputs)]
        if len(live) == len(graph.ops):
            break
        graph.ops = live
    used = {n for op in graph.ops for n in op.inputs + op.outputs} | set(graph.inputs) | set(graph.outputs)
    graph.tensors = {k: v for k, v in graph.tensors.items() if k in used}
    graph.origin = {k: v for k, v in graph.origin.items() if k in graph.tensors}
    renumber(graph)
    return graph


def renumber(graph: Graph) -> None:
    for i, op in enumerate(graph.ops):
        op.index = i


def fail(graph: Graph, op: Op, what: str) -> DwsError:
    """A DwsError about `op`, located by the source node it came from when the importer recorded one."""
    return DwsError(f"{graph.source or graph.name}: {op.origin or op.where()}: {what}")


def unique_op_names(graph: Graph) -> Graph:
    """Give repeated op names a suffix _1, _2, ... in op order (the first keeps its name)."""
    taken: set[str] = set()
    for op in graph.ops:
        name, n = op.name, 1
        while name in taken:
            name = f"{op.name}_{n}"
            n += 1
        op.name = name
        taken.add(name)
    return graph
