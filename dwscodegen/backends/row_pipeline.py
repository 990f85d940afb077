"""Rendering a row fusion (row_fusion.py): the one-row kernel instances a backend generates for it, and the
generated loop that calls them through the window.

A backend that can run fusions gives the library assembler a `row_kernels(fusion)` that renders the
producer on the graphs `row_graph` builds (one per run of equally padded rows) and the consumer on an input
of its KH rows; the loop here is backend-independent.
"""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

from ..ir import Graph, Op, Tensor
from ..row_fusion import RowClass, RowFusion, producer_classes, schedule
from .kernel import Kernel
from .render import c_affine, c_plus, comment_safe


@dataclass(frozen=True)
class RowKernels:
    fusion: RowFusion
    producers: tuple[tuple[RowClass, Kernel], ...]   # per run of middle rows, the kernel computing one
    consumer: Kernel                                 # one output row from the window


def row_graph(graph: Graph, op: Op, in_rows: int, pad_top: int, pad_bottom: int) -> Graph:
    """`op` alone on one image of `in_rows` input rows with that top/bottom padding (left/right as in the
    model), computing one output row (its kernel is `renamed` after op's)."""
    x, y = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    tensors = {n: graph.tensor(n) for n in op.inputs[1:]}
    tensors[x.name] = dataclasses.replace(x, shape=(1, in_rows, *x.shape[2:]))
    tensors[y.name] = dataclasses.replace(y, shape=(1, 1, *y.shape[2:]))
    pad = op.attrs.pad
    attrs = dataclasses.replace(op.attrs, pad=(pad_top, pad_bottom, pad[2], pad[3]))
    one = dataclasses.replace(op, attrs=attrs)
    return Graph(name=graph.name, tensors=tensors, ops=[one], inputs=[x.name], outputs=[y.name],
                 source=graph.source, origin=graph.origin)


def producer_graphs(graph: Graph, fusion: RowFusion) -> list[tuple[RowClass, Graph, str]]:
    op = graph.ops[fusion.producer]
    kh = graph.tensor(op.inputs[1]).shape[1]
    many = len(producer_classes(graph, op)) > 1
    return [(c, row_graph(graph, op, kh - c.pad_top - c.pad_bottom, c.pad_top, c.pad_bottom),
             f"rows{c.first}" if many else "row")
            for c in producer_classes(graph, op)]


def consumer_graph(graph: Graph, fusion: RowFusion) -> Graph:
    return row_graph(graph, graph.ops[fusion.consumer], fusion.rows, 0, 0)


def renamed(kernel: Kernel, suffix: str) -> Kernel:
    """A one-row kernel under a name of its own: every identifier the kernel's name starts (its function and
    constant arrays) takes `_<suffix>`."""
    name = re.compile(rf"\b{re.escape(kernel.fn)}(?=\w*\b)")
    source = name.sub(lambda m: f"{kernel.fn}_{suffix}", kernel.source)
    return dataclasses.replace(kernel, fn=f"{kernel.fn}_{suffix}", source=source)


def _row_elems(t: Tensor) -> int:
    return t.size // (t.shape[0] * t.shape[1])


def pipeline_c(graph: Graph, rk: RowKernels, x: str, window: str, y: str) -> str:
    """The C statements running the fused pair: x, window, y are the element pointers of the producer's
    input, the window and the consumer's output."""
    f = rk.fusion
    producer, consumer = graph.ops[f.producer], graph.ops[f.consumer]
    xt, mt, yt = graph.tensor(producer.inputs[0]), graph.tensor(f.middle), graph.tensor(consumer.outputs[0])
    n, row = xt.shape[0], _row_elems(mt)
    image = "dws_image" if n > 1 else None
    x_img = c_plus(x, c_affine(image, xt.size // n))
    y_img = c_plus(y, c_affine(image, yt.size // n))
    rows = schedule(graph, f)
    keep = rows[-1][0] if len(rows) > 1 else 0
    s, pt = consumer.attrs.stride[0], consumer.attrs.pad[0]
    ps, ppt = producer.attrs.stride[0], producer.attrs.pad[0]
    padded = any(m < 0 for _, made in rows for m in made)
    one = f.rows == 1   # a pointwise consumer: its window is the one middle row, no loop over window rows
    at_k = window if one else c_plus(window, c_affine("dws_k", row))
    zero = f"(int8_t){int(mt.quant.zero_point[0])}" if mt.dtype == "int8" else "0.0f"
    fill = "dws_fill_s8" if mt.dtype == "int8" else "dws_fill_f32"
    what = "its row" if one else f"a window of its {f.rows} rows"
    lines = ["/* " + comment_safe(f"{producer.where()} and {consumer.where()} fused row by row: '{f.middle}' "
                                  f"({'x'.join(map(str, mt.shape))}) is never stored whole, only {what}") + " */"]
    if image:
        lines.append(f"for (int dws_image = 0; dws_image < {n}; ++dws_image) {{")
    lines.append(f"for (int dws_row = 0; dws_row < {yt.shape[1]}; ++dws_row) {{")
    if one:
        lines.append(f"const int dws_y = {c_affine('dws_row', s, -pt)};")
    else:
        lines.append("int dws_k = 0;")
        if keep:
            bytes_ = keep * row * (1 if mt.dtype == "int8" else 4)
            lines += ["if (dws_row > 0) {",
                      f"/* the {keep} rows this window shares with the last one move up */",
                      f"dws_arena_move((int8_t *)({window}), (const int8_t *)({c_plus(window, s * row)}), {bytes_});",
                      f"dws_k = {keep};", "}"]
        lines += [f"for (; dws_k < {f.rows}; ++dws_k) {{",
                  f"const int dws_y = {c_affine('dws_row', s, -pt)} + dws_k;"]
    branches = []
    if padded:
        branches.append((f"dws_y < 0 || dws_y >= {mt.shape[1]}", f"{fill}({at_k}, {zero}, {row});"))
    for i, (c, kernel) in enumerate(rk.producers):
        # the first input row it reads: dws_y * stride - pad_top, plus the rows its padding stands for
        src = c_plus(x_img, c_affine("dws_y", ps * _row_elems(xt), (c.pad_top - ppt) * _row_elems(xt)))
        cond = None if i == len(rk.producers) - 1 else f"dws_y <= {c.last}"
        branches.append((cond, f"{kernel.fn}({src}, {at_k});"))
    for i, (cond, call) in enumerate(branches):
        head = "if" if i == 0 else "} else if"
        if cond is None:
            lines += ([call] if i == 0 else ["} else {", call, "}"])
        else:
            lines += [f"{head} ({cond}) {{", call]
            if i == len(branches) - 1:
                lines.append("}")
    if not one:
        lines.append("}")
    lines += [f"{rk.consumer.fn}({window}, {c_plus(y_img, c_affine('dws_row', _row_elems(yt)))});", "}"]
    if image:
        lines.append("}")
    return "\n".join(lines)


def keeps_rows(graph: Graph, fusion: RowFusion) -> bool:
    """Its loop moves window rows up (dws_arena_move)."""
    rows = schedule(graph, fusion)
    return len(rows) > 1 and rows[-1][0] > 0


def pads_rows(graph: Graph, fusion: RowFusion) -> bool:
    """Its loop fills padding rows with the zero point (dws_fill_s8 / dws_fill_f32)."""
    return any(m < 0 for _, made in schedule(graph, fusion) for m in made)


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
