"""Assemble a C library from a backend's kernels: header, weights, arena, run function.

Everything here is backend-independent, which is what makes the backends interchangeable: the same
API, the same arena plan and the same layer hook whichever road produced the kernels.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .. import __version__
from ..ops import op_macs, touches_int8
from ..ir import Graph
from ..planner import ArenaPlan, plan_arena
from ..qparams import is_hybrid
from .kernel import Kernel
from .render import C_TYPES, c_identifier, render

C_KEYWORDS = {"auto", "break", "case", "char", "const", "continue", "default", "do", "double", "else", "enum",
              "extern", "float", "for", "goto", "if", "inline", "int", "long", "register", "restrict",
              "return", "short", "signed", "sizeof", "static", "struct", "switch", "typedef", "union",
              "unsigned", "void", "volatile", "while", "arena", "arena_words"}


@dataclass(frozen=True)
class Library:
    name: str
    files: dict[str, str]     # file name -> content
    arena_bytes: int
    const_bytes: int
    plan: ArenaPlan


def _param_names(graph: Graph) -> dict[str, str]:
    names: dict[str, str] = {}
    for role, tensors in (("input", graph.inputs), ("output", graph.outputs)):
        for i, t in enumerate(tensors):
            base = c_identifier(t)
            if base in C_KEYWORDS or base in names.values() or base.startswith("dws_"):
                base = f"{role}{i}_{base}"
            names[t] = base
    return names


def comment_safe(text: str) -> str:
    return text.replace("*/", "* /")


def assemble(graph: Graph, kernels: list[Kernel], backend: str) -> Library:
    plan = plan_arena(graph)
    params = _param_names(graph)
    # The arena has the type of its float tensors if it holds any (int8 views of it are character
    # accesses, always allowed); otherwise words, for alignment.
    arena_float = any(graph.tensor(n).dtype == "float32" for n in plan.offsets)

    def pointer(tensor: str) -> str:
        if tensor in params:
            return params[tensor]
        offset = plan.offset(tensor)
        if graph.tensor(tensor).dtype == "float32":
            return f"arena + {offset // 4}" if offset else "arena"
        return f"ARENA + {offset}" if offset else "ARENA"

    def decl(name: str, const: bool) -> str:
        return f"{'const ' if const else ''}{C_TYPES[graph.tensor(name).dtype]} *{params[name]}"

    calls = []
    for op, kernel in zip(graph.ops, kernels):
        tensors = [t for t in op.inputs if not graph.tensor(t).is_const] + [op.outputs[0]]
        args = [pointer(t) for t in tensors]
        call = dict(fn=kernel.fn, args=args, output=args[-1], bytes=graph.tensor(op.outputs[0]).nbytes, images=1)
        if kernel.images > 1:
            # A per-image kernel: called once per image, each pointer advanced by one image of its tensor
            # (the loop variable has the dws_ prefix, which _param_names keeps away from parameters).
            strides = [graph.tensor(t).size // kernel.images for t in tensors]
            if any(graph.tensor(t).size != s * kernel.images for t, s in zip(tensors, strides)):
                raise AssertionError(f"{op.where()}: tensors {tensors} do not split into {kernel.images} images")
            call.update(images=kernel.images, args=[f"{a} + dws_image * {s}" for a, s in zip(args, strides)])
        calls.append(call)
    io = []
    for role, tensors in (("input", graph.inputs), ("output", graph.outputs)):
        for t in tensors:
            tensor = graph.tensor(t)
            q = tensor.quant
            io.append(dict(role=role.capitalize(), tensor=comment_safe(t), dtype=tensor.dtype, shape=list(tensor.shape),
                           size=tensor.size, macro=f"{graph.name.upper()}_{params[t].upper()}",
                           scale=None if q is None else float(q.scale[0]),
                           zero_point=None if q is None else int(q.zero_point[0])))
    arena_table = [comment_safe(f"{name:<24} bytes {plan.offsets[name]:>7} .. {plan.offsets[name] + graph.tensor(name).nbytes}")
                   for name in sorted(plan.offsets, key=lambda n: (plan.offsets[n], n))]
    lib = dict(
        name=graph.name, macro=graph.name.upper(), guard=f"{graph.name.upper()}_H", version=__version__,
        source=comment_safe(Path(graph.source).name or graph.name), backend=backend,
        needs_int8=any(touches_int8(graph, op) or is_hybrid(graph, op) for op in graph.ops),
        needs_float=any(graph.op_dtype(op) == "float32" for op in graph.ops), arena_float=arena_float,
        ops=graph.ops, macs=sum(op_macs(graph, op) for op in graph.ops), const_bytes=sum(k.const_bytes for k in kernels),
        arena_bytes=plan.size, arena_table=arena_table, io=io,
        params=", ".join([decl(t, True) for t in graph.inputs] + [decl(t, False) for t in graph.outputs]),
        first_input=params[graph.inputs[0]], kernels=[k.source for k in kernels], calls=calls)
    files = {f"{graph.name}.h": render("library/library.h.j2", lib=lib),
             f"{graph.name}.c": render("library/library.c.j2", lib=lib)}
    return Library(name=graph.name, files=files, arena_bytes=plan.size, const_bytes=lib["const_bytes"], plan=plan)
