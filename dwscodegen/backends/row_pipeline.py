"""Rendering a row fusion (row_fusion.py): the one-row kernel instances a backend generates for it, and the
generated loops that call them through the windows.

A backend that can run fusions gives the library assembler a `row_kernels(fusion)` that renders the first op
on the graphs `row_graph` builds (one per run of equally padded rows) and each later op on an input of its KH
rows, through its own kernels (`fusion_kernels`: both roads, templates/generate.py and tvm/backend.py); the
loops here are backend-independent. They nest one level per window, the last op's outermost: to
compute its row, a level slides its window by the reader's stride (the rows it shares with the last one move
up) and fills the new rows, each either padding, a row of the first op read from the chain's input, or a row
of the op before computed from its own window one level further in. An inner op is asked for its rows 0, 1,
2, ... (row_fusion.chain_ok), so its level keeps rows whenever its row is not 0. An element-wise op's level
is its one row (no loop, nothing kept); its call also passes its side inputs (row_fusion.side_inputs), stored
whole in the arena: a broadcast one as it is, one of the output's shape at the row computed.
"""
from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from dataclasses import dataclass

from ..ir import Graph, Op, Tensor
from ..row_fusion import (FUSABLE, RowClass, RowFusion, Window, producer_classes, rows_read, side_per_row, sides,
                          window_schedules)
from .kernel import Kernel
from .render import c_affine, c_plus, comment_safe


@dataclass(frozen=True)
class RowKernels:
    fusion: RowFusion
    producers: tuple[tuple[RowClass, Kernel], ...]   # the first op, per run of its rows: the kernel computing one
    stages: tuple[Kernel, ...]                       # each later op: one output row from its window

    @property
    def scratch(self) -> int:
        """Bytes of scratch the chain needs: its kernels run one at a time, so the largest kernel's."""
        return max(k.scratch for k in (*(k for _, k in self.producers), *self.stages))

    @property
    def consumer(self) -> Kernel:
        """The last op's kernel."""
        return self.stages[-1]


def row_graph(graph: Graph, op: Op, in_rows: int, pad_top: int, pad_bottom: int, data: str | None = None) -> Graph:
    """`op` alone on one image of `in_rows` rows of its streamed input `data` (default: its first input) with
    that top/bottom padding (left/right as in the model), computing one output row (its kernel is `renamed`
    after op's). An element-wise op's sides read row by row are one row too; a broadcast side stays whole."""
    data = data or op.inputs[0]
    x, y = graph.tensor(data), graph.tensor(op.outputs[0])
    tensors = {n: graph.tensor(n) for n in op.inputs if n != data}
    for n in sides(graph, op, data):
        if side_per_row(graph, op, n):
            tensors[n] = dataclasses.replace(tensors[n], shape=(1, 1, *y.shape[2:]))
    tensors[x.name] = dataclasses.replace(x, shape=(1, in_rows, *x.shape[2:]))
    tensors[y.name] = dataclasses.replace(y, shape=(1, 1, *y.shape[2:]))
    one = op
    if op.type in FUSABLE:
        pad = op.attrs.pad
        one = dataclasses.replace(op, attrs=dataclasses.replace(op.attrs, pad=(pad_top, pad_bottom, pad[2], pad[3])))
    inputs = [n for n in op.inputs if not tensors[n].is_const]
    return Graph(name=graph.name, tensors=tensors, ops=[one], inputs=inputs, outputs=[y.name],
                 source=graph.source, origin=graph.origin)


def producer_graphs(graph: Graph, fusion: RowFusion) -> list[tuple[RowClass, Graph, str]]:
    op = graph.ops[fusion.producer]
    kh = rows_read(graph, op)[0]
    many = len(producer_classes(graph, op)) > 1
    return [(c, row_graph(graph, op, kh - c.pad_top - c.pad_bottom, c.pad_top, c.pad_bottom, fusion.input),
             f"rows{c.first}" if many else "row")
            for c in producer_classes(graph, op)]


def stage_graphs(graph: Graph, fusion: RowFusion) -> list[Graph]:
    """Each op after the first on its window: KH rows (an element-wise op's one row), no top/bottom padding
    (the window holds it)."""
    return [row_graph(graph, graph.ops[w.reader], w.rows, 0, 0, w.middle) for w in fusion.windows]


def fusion_kernels(graph: Graph, fusion: RowFusion, render_one: Callable[[Graph], Kernel]) -> RowKernels:
    """The kernels of a fusion, `render_one` being the backend's kernel of the one op of a `row_graph`: the
    first op's instances (sharing their constants, share_constants) and each later op's instance on its window."""
    classes = producer_graphs(graph, fusion)
    rows = share_constants([renamed(render_one(g), suffix) for _, g, suffix in classes])
    return RowKernels(fusion, tuple(zip((c for c, _, _ in classes), rows)),
                      tuple(renamed(render_one(g), "window") for g in stage_graphs(graph, fusion)))


def renamed(kernel: Kernel, suffix: str) -> Kernel:
    """A one-row kernel under a name of its own: every identifier the kernel's name starts (its function and
    constant arrays) takes `_<suffix>`."""
    name = re.compile(rf"\b{re.escape(kernel.fn)}(?=\w*\b)")
    source = name.sub(lambda m: f"{kernel.fn}_{suffix}", kernel.source)
    return dataclasses.replace(kernel, fn=f"{kernel.fn}_{suffix}", source=source)


def _row_elems(t: Tensor) -> int:
    return t.size // (t.shape[0] * t.shape[1])


def _what(graph: Graph, w: Window) -> str:
    mt = graph.tensor(w.middle)
    held = "its row" if w.rows == 1 else f"a window of its {w.rows} rows"
    return f"'{w.middle}' ({'x'.join(map(str, mt.shape))}) is never stored whole, only {held}"


@dataclass(frozen=True)
class _Pointers:
    """The element pointers the generated loops start from."""
    x_img: str                # the chain's input, this image
    windows: list[str]        # each window, RowFusion.windows' order
    sides: dict[str, str]     # each side input (row_fusion.side_inputs), this image where it is read row by row
    scratch: str | None       # the chain's scratch: the row kernels with Kernel.scratch take it, one call at a time


def _call(graph: Graph, f: RowFusion, k: int, kernel: Kernel, data: str, out: str, row: str, at: _Pointers) -> str:
    """The call of chain op k's row kernel computing its output row `row` from `data` into `out`: its
    non-constant inputs in the op's order (as library.assemble calls a kernel), the output, then its scratch."""
    op = graph.ops[f.ops[k]]
    streamed = ([f.input, *f.middles])[k]
    args = []
    for n in op.inputs:
        t = graph.tensor(n)
        if n == streamed:
            args.append(data)
        elif not t.is_const:   # a side: its row `row`, or the whole broadcast tensor
            args.append(c_plus(at.sides[n], c_affine(row, _row_elems(t))) if side_per_row(graph, op, n)
                        else at.sides[n])
    return f"{kernel.fn}({', '.join([*args, out, *([at.scratch] if kernel.scratch else [])])});"


def pipeline_c(graph: Graph, rk: RowKernels, x: str, windows: list[str], y: str,
               side_pointers: dict[str, str], scratch: str | None = None) -> str:
    """The C statements running the fused chain: x, windows, y are the element pointers of the chain's input,
    each window (RowFusion.windows' order) and the last op's output; side_pointers those of its element-wise
    ops' side inputs (row_fusion.side_inputs); scratch, the chain's scratch."""
    f = rk.fusion
    consumer = graph.ops[f.consumer]
    xt, yt = graph.tensor(f.input), graph.tensor(consumer.outputs[0])
    n = xt.shape[0]
    image = "dws_image" if n > 1 else None
    y_img = c_plus(y, c_affine(image, yt.size // n))
    sides_img = {}
    for i, data in zip(f.ops, [f.input, *f.middles]):
        for side in sides(graph, graph.ops[i], data):   # a side read row by row: its own image's rows
            per_image = graph.tensor(side).size // n if side_per_row(graph, graph.ops[i], side) else 0
            sides_img[side] = c_plus(side_pointers[side], c_affine(image if per_image else None, per_image))
    at = _Pointers(c_plus(x, c_affine(image, xt.size // n)), windows, sides_img, scratch)
    ops = [graph.ops[i].where() for i in f.ops]
    lines = ["/* " + comment_safe(f"{', '.join(ops[:-1])} and {ops[-1]} fused row by row: "
                                  + "; ".join(_what(graph, w) for w in f.windows)) + " */"]
    if image:
        lines.append(f"for (int dws_image = 0; dws_image < {n}; ++dws_image) {{")
    lines.append(f"for (int dws_row = 0; dws_row < {yt.shape[1]}; ++dws_row) {{")
    levels = window_schedules(graph, f)
    lines += _window_c(graph, rk, levels, len(levels) - 1, "dws_row", at)
    lines += [_call(graph, f, len(f.ops) - 1, rk.consumer, windows[-1],
                    c_plus(y_img, c_affine("dws_row", _row_elems(yt))), "dws_row", at), "}"]
    if image:
        lines.append("}")
    return "\n".join(lines)


def _window_c(graph: Graph, rk: RowKernels, levels: list, k: int, row_var: str, at: _Pointers) -> list[str]:
    """The statements filling window k with the rows its reader's row `row_var` needs (see the docstring)."""
    f = rk.fusion
    w, rows = f.windows[k], levels[k]
    producer, reader = graph.ops[f.producer], graph.ops[w.reader]
    xt, mt = graph.tensor(f.input), graph.tensor(w.middle)
    suffix = "" if k == len(levels) - 1 else str(len(levels) - 1 - k)   # the last window's names as a pair's
    dws_k, dws_y = f"dws_k{suffix}", f"dws_y{suffix}"
    window, row = at.windows[k], _row_elems(mt)
    keep = rows[-1][1] if len(rows) > 1 else 0
    _, s, pt = rows_read(graph, reader)
    _, ps, ppt = rows_read(graph, producer)
    padded = any(m < 0 for _, _, made in rows for m in made)
    one = w.rows == 1   # a pointwise or element-wise reader: its window is the one middle row, no loop over rows
    at_k = window if one else c_plus(window, c_affine(dws_k, row))
    zero = f"(int8_t){int(mt.quant.zero_point[0])}" if mt.dtype == "int8" else "0.0f"
    fill = "dws_fill_s8" if mt.dtype == "int8" else "dws_fill_f32"
    lines = []
    if one:
        lines.append(f"const int {dws_y} = {c_affine(row_var, s, -pt)};")
    else:
        lines.append(f"int {dws_k} = 0;")
        if keep:
            bytes_ = keep * row * (1 if mt.dtype == "int8" else 4)
            lines += [f"if ({row_var} > 0) {{",
                      f"/* the {keep} rows this window shares with the last one move up */",
                      f"dws_arena_move((int8_t *)({window}), (const int8_t *)({c_plus(window, s * row)}), {bytes_});",
                      f"{dws_k} = {keep};", "}"]
        lines += [f"for (; {dws_k} < {w.rows}; ++{dws_k}) {{",
                  f"const int {dws_y} = {c_affine(row_var, s, -pt)} + {dws_k};"]
    branches: list[tuple[str | None, list[str]]] = []
    if padded:
        branches.append((f"{dws_y} < 0 || {dws_y} >= {mt.shape[1]}", [f"{fill}({at_k}, {zero}, {row});"]))
    if k == 0:
        for i, (c, kernel) in enumerate(rk.producers):
            # the first input row it reads: dws_y * stride - pad_top, plus the rows its padding stands for
            src = c_plus(at.x_img, c_affine(dws_y, ps * _row_elems(xt), (c.pad_top - ppt) * _row_elems(xt)))
            cond = None if i == len(rk.producers) - 1 else f"{dws_y} <= {c.last}"
            branches.append((cond, [_call(graph, f, 0, kernel, src, at_k, dws_y, at)]))
    else:   # the op before computes this row from its own window, filled one level further in
        inner = _window_c(graph, rk, levels, k - 1, dws_y, at)
        branches.append((None, inner + [_call(graph, f, k, rk.stages[k - 1], at.windows[k - 1], at_k, dws_y, at)]))
    for i, (cond, body) in enumerate(branches):
        head = "if" if i == 0 else "} else if"
        if cond is None:
            lines += (body if i == 0 else ["} else {", *body, "}"])
        else:
            lines += [f"{head} ({cond}) {{", *body]
            if i == len(branches) - 1:
                lines.append("}")
    if not one:
        lines.append("}")
    return lines


def keeps_rows(graph: Graph, fusion: RowFusion) -> bool:
    """Its loops move window rows up (dws_arena_move)."""
    return any(len(rows) > 1 and rows[-1][1] > 0 for rows in window_schedules(graph, fusion))


def padded_windows(graph: Graph, fusion: RowFusion) -> list[Window]:
    """The windows its loops fill padding rows of with the zero point (dws_fill_s8 / dws_fill_f32)."""
    return [w for w, rows in zip(fusion.windows, window_schedules(graph, fusion))
            if any(m < 0 for _, _, made in rows for m in made)]


ARRAY = re.compile(r"^static const (\w+) (\w+)((?:\[[^\]\n]+\])+) = \{\n.*?^\};\n", re.M | re.S)
SIZES = {"int8_t": 1, "uint8_t": 1, "int16_t": 2, "uint16_t": 2, "int32_t": 4, "uint32_t": 4, "float": 4}


def share_constants(kernels: list[Kernel]) -> list[Kernel]:
    """The producer's one-row instances with each constant array the same as an earlier instance's dropped
    and that one's read instead (the instances of one layer mostly share their weights)."""
    seen: dict[tuple[str, str, str], str] = {}   # (type, dims, initialiser) -> the array that has it
    out = []
    for kernel in kernels:
        source, saved = kernel.source, 0
        for m in ARRAY.finditer(kernel.source):
            ctype, name, dims = m[1], m[2], m[3]
            key = (ctype, dims, m[0][m[0].index("= {"):])
            if key in seen and ctype in SIZES and re.fullmatch(r"[\d\[\] *]+", dims):
                source = re.sub(rf"\b{name}\b", seen[key], source.replace(m[0], "", 1))
                count = 1
                for factor in re.findall(r"\d+", dims):
                    count *= int(factor)
                saved += count * SIZES[ctype]
            else:
                seen.setdefault(key, name)
        out.append(dataclasses.replace(kernel, source=source, const_bytes=kernel.const_bytes - saved))
    return out
