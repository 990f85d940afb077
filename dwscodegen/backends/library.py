"""Assemble a C library from a backend's kernels: header, weights, arena, run function.

Everything here is backend-independent, which is what makes the backends interchangeable: the same
API, the same arena plan and the same layer hook whichever road produced the kernels.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .. import __version__
from ..errors import DwsError
from ..ops import op_macs, touches_int8
from ..ir import Graph
from ..planner import ArenaPlan, ScratchNeeds, plan_arena, scratch_item
from ..row_fusion import RowFusion, candidates, side_inputs
from ..qparams import is_hybrid
from ..targets import Target
from .kernel import Kernel, entry_signature
from .c_layout import layout_c
from .layout import hoist_preludes
from .render import C_TYPES, c_identifier, comment_safe, render
from .row_pipeline import RowKernels, keeps_rows, padded_windows, pipeline_c

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


# An ISA a kernel needs, recognised by the intrinsics header its prelude includes: (header, ACLE feature
# macro the compiler defines when the ISA is there, what to call it in the #error).
ISA_HEADERS = (("arm_acle.h", "__ARM_FEATURE_DSP", "the Arm DSP extension (Cortex-M4/M7/M33/M55)"),
               ("arm_mve.h", "__ARM_FEATURE_MVE", "Helium (MVE, Cortex-M55)"))
# A kernel's constant array, declared at file scope: where DWS_WEIGHTS_SECTION goes.
CONST_ARRAY = re.compile(r"^(static const [A-Za-z_][A-Za-z0-9_ ]* [A-Za-z_][A-Za-z0-9_]*(?:\[[^\]\n]+\])+) = \{", re.M)
# File-scope data a kernel writes (a scratch buffer): state outside the arena, so not re-entrant.
STATIC_STATE = re.compile(r"^static (?!const )\w+ \w+\[", re.M)
ONNX_FROM_NHWC = (0, 3, 1, 2)   # NHWC axis order -> NCHW


def _io_entries(graph: Graph, params: dict[str, str]) -> list[dict]:
    """Per input and output: positional macro (<NAME>_INPUT0), the name-derived alias, and its comment."""
    macro = graph.name.upper()
    positional = {f"{macro}_{role.upper()}{i}" for role, names in (("input", graph.inputs), ("output", graph.outputs))
                  for i in range(len(names))}
    onnx = Path(graph.source).suffix.lower() == ".onnx"
    io = []
    for role, tensors in (("input", graph.inputs), ("output", graph.outputs)):
        for i, t in enumerate(tensors):
            tensor = graph.tensor(t)
            q = tensor.quant
            named = f"{macro}_{params[t].upper()}"
            io.append(dict(role=role.capitalize(), index=i, tensor=comment_safe(t), dtype=tensor.dtype,
                           shape=list(tensor.shape), size=tensor.size, macro=f"{macro}_{role.upper()}{i}",
                           alias=None if named in positional else named,
                           onnx_shape=[tensor.shape[a] for a in ONNX_FROM_NHWC] if onnx and len(tensor.shape) == 4
                           else None,
                           scale=None if q is None else float(q.scale[0]),
                           zero_point=None if q is None else int(q.zero_point[0])))
    return io


def _aliasable(kernel: Kernel) -> str:
    """The kernel's source with `restrict` dropped from its entry point's input parameters: its output
    overlaps an input in this plan. The output keeps it (without it every int8 store may alias the kernel's
    patches, which costs a third more instructions); the declared order makes every input byte read before
    an output store reaches it, and tests/test_overlap.py checks each compiled kernel bit-exactly."""
    signature = entry_signature(kernel.fn)
    if not signature.search(kernel.source):
        raise AssertionError(f"{kernel.fn}: no entry point to drop restrict from")
    return signature.sub(lambda m: m[1] + m[2].replace("const int8_t *restrict ", "const int8_t *")
                         .replace("const float *restrict ", "const float *") + ")", kernel.source, count=1)


def assemble(graph: Graph, kernels: list[Kernel], backend: str, target: Target,
             row_kernels: Callable[[RowFusion], RowKernels] | None = None,
             row_scratch: Callable[[RowFusion], int] | None = None, arena_budget: int | None = None) -> Library:
    """row_kernels: the backend's renderer of a row fusion's kernels (row_pipeline.py); without it no layers
    are fused. row_scratch: a chain's scratch bytes where the backend knows it without rendering the chain
    (default: its rendered kernels'). arena_budget: the planner's speed trade (planner.plan_arena)."""
    rendered: dict[RowFusion, RowKernels] = {}   # each chain the planner tries, rendered once

    def chain(f: RowFusion) -> RowKernels:
        if f not in rendered:
            rendered[f] = row_kernels(f)
        return rendered[f]

    scratch = ScratchNeeds({k.op_index: k.scratch for k in kernels if k.scratch},
                           row_scratch or ((lambda f: chain(f).scratch) if row_kernels else None))
    plan = plan_arena(graph, {(k.op_index, name): lag for k in kernels for name, lag in k.overlap},
                      fusions=candidates(graph) if row_kernels else None, scratch=scratch,
                      arena_budget=arena_budget)
    fused = {f.consumer: chain(f) for f in plan.fusions}
    producers = {i for f in plan.fusions for i in f.ops[:-1]}   # run inside the last op's call
    if plan.size > 2**31 - 1:
        raise DwsError(f"{graph.source}: the activation arena needs {plan.size:,} bytes; the generated C addresses "
                       "it with 32-bit int offsets, so at most 2,147,483,647")
    params = _param_names(graph)
    # The static arena has the type of its float tensors if it holds any (int8 views of it are character
    # accesses, always allowed); otherwise words, for alignment. Either way 4-byte aligned, which is what a
    # caller's arena for <name>_run_with_arena must be too.
    arena_float = any(graph.tensor(n).dtype == "float32" for n in plan.offsets)
    views = set()

    def pointer(tensor: str, offset: int | None = None) -> str:
        if tensor in params:
            return params[tensor]
        offset = plan.offset(tensor) if offset is None else offset
        if graph.tensor(plan.window_middle(tensor) or tensor).dtype == "float32":
            views.add("f32")
            return f"arena_f32 + {offset // 4}" if offset else "arena_f32"
        views.add("s8")
        return f"arena_s8 + {offset}" if offset else "arena_s8"

    def scratch_pointer(op_index: int) -> str | None:
        """The arena bytes of op's scratch (a fused chain's under its last op), None without."""
        if op_index not in plan.scratch:
            return None
        views.add("s8")
        offset = plan.scratch[op_index][0]
        return f"arena_s8 + {offset}" if offset else "arena_s8"

    def decl(name: str, const: bool) -> str:
        return f"{'const ' if const else ''}{C_TYPES[graph.tensor(name).dtype]} *{params[name]}"

    calls = []
    for op, kernel in zip(graph.ops, kernels):
        if op.index in producers:
            continue   # runs row by row inside the pipeline of its chain's last op
        tensors = [t for t in op.inputs if not graph.tensor(t).is_const] + [op.outputs[0]]
        out = op.outputs[0]
        args = [pointer(t) for t in tensors[:-1]] + [pointer(out, plan.moves.get(out))]
        work = scratch_pointer(op.index)
        call = dict(fn=kernel.fn, args=args + ([work] if kernel.scratch else []), output=pointer(out), bytes=graph.tensor(out).nbytes, images=1,
                    move=None if out not in plan.moves else dict(src=args[-1]), layer=op.index, pipeline=None)
        if op.index in fused:
            rk = fused[op.index]
            windows = [pointer(w.name, plan.windows[w.name]) for w in rk.fusion.windows]
            sides = {t: pointer(t) for t in side_inputs(graph, rk.fusion)}
            call["pipeline"] = pipeline_c(graph, rk, pointer(rk.fusion.input), windows, args[-1], sides, work)
            calls.append(call)
            continue
        if kernel.images > 1:
            # A per-image kernel: called once per image, each pointer advanced by one image of its tensor
            # (the loop variable has the dws_ prefix, which _param_names keeps away from parameters).
            strides = [graph.tensor(t).size // kernel.images for t in tensors]
            if any(graph.tensor(t).size != s * kernel.images for t, s in zip(tensors, strides)):
                raise AssertionError(f"{op.where()}: tensors {tensors} do not split into {kernel.images} images")
            call.update(images=kernel.images, args=[f"{a} + dws_image * {s}" for a, s in zip(args, strides)]
                        + ([work] if kernel.scratch else []))
        calls.append(call)
    width = max((len(name) for name in plan.offsets), default=0)
    arena_table = [comment_safe(f"{name:<{width}}  bytes {plan.offsets[name]:>7} .. "
                                f"{plan.offsets[name] + graph.tensor(name).nbytes}")
                   for name in sorted(plan.offsets, key=lambda n: (plan.offsets[n], n))]
    arena_table += [comment_safe(f"{w.name:<{width}}  bytes {plan.windows[w.name]:>7} .. "
                                 f"{plan.windows[w.name] + w.nbytes}  ({w.rows} rows, layers {w.producer}-{w.reader})")
                    for f in plan.fusions for w in f.windows]
    arena_table += [comment_safe(f"{scratch_item(graph, i):<{width}}  bytes {at:>7} .. {at + n}  (scratch of "
                                 f"{'layers %d-%d' % (fused[i].fusion.producer, i) if i in fused else 'layer %d' % i})")
                    for i, (at, n) in plan.scratch.items()]
    in_place = {op.index for op in graph.ops if op.outputs[0] in plan.overlaps} - set(fused)
    used = [k for k in kernels if k.op_index not in producers and k.op_index not in fused]
    for rk in fused.values():   # the fused chains' row kernels, in layer order
        at = next((i for i, k in enumerate(used) if k.op_index > rk.fusion.consumer), len(used))
        used[at:at] = [k for _, k in rk.producers] + list(rk.stages)
    sources, includes, helpers = hoist_preludes([CONST_ARRAY.sub(r"\1 DWS_WEIGHTS_SECTION = {", _aliasable(k)
                                                                 if k.op_index in in_place else k.source)
                                                 for k in used])
    isas = [dict(macro=m, what=w) for header, m, w in ISA_HEADERS if f"#include <{header}>" in includes]
    moves = bool(plan.moves) or any(keeps_rows(graph, f) for f in plan.fusions)
    # the standard headers the library's own code needs (memmove for moves and row windows) head the file; the
    # kernels' includes follow its ISA checks, each header once in all
    head = ["#include <stddef.h>", "#include <stdint.h>", *(["#include <string.h>"] if moves else [])]
    includes = [line for line in includes if line not in head]
    params_list = [decl(t, True) for t in graph.inputs] + [decl(t, False) for t in graph.outputs]
    lib = dict(
        name=graph.name, macro=graph.name.upper(), guard=f"{graph.name.upper()}_H", version=__version__,
        source=comment_safe(Path(graph.source).name or graph.name), backend=backend,
        onnx=Path(graph.source).suffix.lower() == ".onnx",
        target=dict(name=target.name, description=comment_safe(target.description), cc=target.cc,
                    cflags=comment_safe(" ".join(target.cflags))),
        isas=isas, static_state=any(STATIC_STATE.search(k) for k in sources),
        needs_int8=any(touches_int8(graph, op) or is_hybrid(graph, op) for op in graph.ops),
        needs_float=any(graph.op_dtype(op) == "float32" for op in graph.ops), arena_float=arena_float,
        # the templates' float32 Logistic and Tanh share one exp (the tvm road computes its own)
        needs_exp=backend == "templates" and any(op.type in ("Logistic", "Tanh") and graph.op_dtype(op) == "float32"
                                                 for op in graph.ops),
        moves=moves, views=sorted(views),
        float_io=any(graph.tensor(t).dtype == "float32" for t in [*graph.inputs, *graph.outputs]),
        ops=graph.ops, macs=sum(op_macs(graph, op) for op in graph.ops),
        const_bytes=sum(k.const_bytes for k in used),
        arena_bytes=plan.size, arena_table=arena_table, io=_io_entries(graph, params),
        params=", ".join(params_list), args=", ".join(params[t] for t in [*graph.inputs, *graph.outputs]),
        fills=sorted({graph.tensor(w.middle).dtype for f in plan.fusions for w in padded_windows(graph, f)}),
        first_input=params[graph.inputs[0]], kernels=sources, head_includes=head, includes=includes, helpers=helpers,
        calls=calls)
    files = {f"{graph.name}.h": layout_c(render("library/library.h.j2", lib=lib)),
             f"{graph.name}.c": layout_c(render("library/library.c.j2", lib=lib))}
    return Library(name=graph.name, files=files, arena_bytes=plan.size, const_bytes=lib["const_bytes"], plan=plan)
