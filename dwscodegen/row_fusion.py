"""Row-streamed fusion of a chain of convolution and element-wise layers so the tensors between them are never
stored whole.

A fused chain (ops i, i+1, ..., j; the pair i, i+1 is the chain of two) runs as a row pipeline. Each middle
tensor (op k's output, op k+1's input) lives only as a window of its reader's KH rows: to compute its output
row r the reader's window holds middle rows r * stride - pad_top + 0..KH-1, rows outside the image filled
with that middle tensor's zero point (int8; 0.0 for float32), which is exactly TFLite's padding (a padded tap
adds (zp - zp) * w = 0). The rows the previous window shares are copied up (KH - stride rows); the new ones
are computed by the previous layer one row at a time, straight into the window, which pulls the rows it needs
from its own window the same way (a demand-driven line-buffer schedule: every middle row computed once, in
order). Every layer keeps its specialised kernel: the first becomes a kernel instance with one output row
(one instance per distinct top/bottom padding of its input rows: its first rows, the interior, its last rows),
each later one an instance on an input of KH rows with no top/bottom padding and one output row; short
generated loops call them (backends/row_pipeline.py).

Element-wise members (HardSwish, Table, Logistic, Relu, ...; ops.OPS kind "elementwise") are stages of one
row: output row r is the op on row r of its streamed input, so the window an element-wise reader has is one
row and keeps none (no row moves), and its kernel instance is the op on a one-row tensor. A binary one (Mul,
Add, ...) streams the input of its output's shape (the middle, inside a chain) and reads its other input, a
side, stored whole and computed before the chain: one broadcast over rows (N and H of 1, e.g. a squeeze-excite
scale 1x1x1xC, also a constant) passed whole to every row, or a tensor of the output's shape read row by
row (a residual Add). A side is never a middle (a middle has one reader, the next op).

The generated loops slide an inner window by its reader's stride on each call, so an inner layer (neither the
first nor the last) must be asked for its rows 0, 1, 2, ... in order; chains where it would skip or repeat a
row are not offered (chain_ok). The last layer may skip rows (a strided consumer), as a pair's always could.

What it costs: no extra arithmetic (every middle row is computed once), the kept window rows copied once per
row and one call per row (extra_instructions estimates it). The planner (planner.py) takes a fusion only where
it lowers the arena; under `--optimize speed` it drops those the RAM budget has room for (fastest_within).
Refused: dilation, strided pointwise producers, hybrid (float32 with int8 weights) layers, a dtype change
(Quantize / Dequantize), an element-wise op that broadcasts its streamed input or has a side neither
broadcast over rows nor of its output's shape (or a constant one of its output's shape), a middle tensor that
anything else reads or that is a graph output, layers that are not consecutive, top padding of a whole kernel
or more, and the inner-row order above.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .ir import Graph, Op
from .ops import OPS
from .overlap import stream_lag
from .qparams import is_hybrid

FUSABLE = ("Conv2D", "DepthwiseConv2D")   # conv-like: each output row reads a window of KH input rows
ELEMENTWISE = tuple(t for t, f in OPS.items() if f.kind == "elementwise")   # each output row reads its own row
# conv-like ops of a chain; longer runs are offered as their sub-chains (each planner trial is a whole placement).
# Element-wise members do not count: they keep no rows and add no window of more than one row.
MAX_CHAIN = 8


@dataclass(frozen=True)
class Window:
    """A middle tensor's rows as its reader sees them: KH rows of the reader's input."""
    middle: str         # the tensor never materialized (its producer's output)
    producer: int       # op index
    reader: int         # op index, producer + 1
    rows: int           # the reader's KH
    row_bytes: int      # one middle row of one image

    @property
    def name(self) -> str:
        """The arena item of the window."""
        return f"{self.middle}@window"

    @property
    def nbytes(self) -> int:
        return self.rows * self.row_bytes


@dataclass(frozen=True)
class RowFusion:
    ops: tuple[int, ...]          # consecutive op indices, 2 or more
    windows: tuple[Window, ...]   # one per middle tensor, windows[k] between ops[k] and ops[k + 1]
    input: str                    # the chain's input (the first op's streamed input), stored whole

    @property
    def producer(self) -> int:
        """The first op: it reads the chain's input, stored whole."""
        return self.ops[0]

    @property
    def consumer(self) -> int:
        """The last op: it writes the chain's output, stored whole; its call runs the whole chain."""
        return self.ops[-1]

    @property
    def middles(self) -> tuple[str, ...]:
        return tuple(w.middle for w in self.windows)

    @property
    def window_bytes(self) -> int:
        return sum(w.nbytes for w in self.windows)

    def where(self) -> str:
        return "->".join(map(str, self.ops))


def _kernel_hw(graph: Graph, op: Op) -> tuple[int, int]:
    return tuple(graph.tensor(op.inputs[1]).shape[1:3])


def rows_read(graph: Graph, op: Op) -> tuple[int, int, int]:
    """(rows, stride, top padding) of a stage's streamed input per output row: a conv-like op's KH rows from
    row r * stride - pad_top; an element-wise op's row r alone."""
    if op.type in FUSABLE:
        return _kernel_hw(graph, op)[0], op.attrs.stride[0], op.attrs.pad[0]
    return 1, 1, 0


def streamed(graph: Graph, op: Op, mid: str | None = None) -> str:
    """The input a chain streams through `op` row by row: `mid` where op reads it; else a conv's input, an
    element-wise op's first non-constant input of its output's shape (its other inputs are its sides)."""
    if mid in op.inputs:
        return mid
    if op.type in FUSABLE:
        return op.inputs[0]
    shape = graph.tensor(op.outputs[0]).shape
    return next((n for n in op.inputs if not graph.tensor(n).is_const and graph.tensor(n).shape == shape),
                op.inputs[0])


def sides(graph: Graph, op: Op, data: str) -> list[str]:
    """An element-wise op's other non-constant inputs than the streamed `data` (a conv's are none)."""
    if op.type in FUSABLE:
        return []
    return [n for n in op.inputs if n != data and not graph.tensor(n).is_const]


def side_per_row(graph: Graph, op: Op, side: str) -> bool:
    """A side the pipeline reads row by row (a full tensor of the output's shape) rather than whole for every
    row (one broadcast over the rows, e.g. a squeeze-excite scale 1x1x1xC)."""
    return graph.tensor(side).shape == graph.tensor(op.outputs[0]).shape


def _stage_ok(graph: Graph, op: Op, data: str) -> bool:
    """`op` can compute one output row from one row (element-wise) or KH rows (conv-like) of `data` alone."""
    if op.type in FUSABLE:
        return not is_hybrid(graph, op) and tuple(op.attrs.dilation) == (1, 1)
    if op.type not in ELEMENTWISE or op.inputs.count(data) != 1:
        return False
    y = graph.tensor(op.outputs[0])
    if graph.tensor(data).shape != y.shape or len(y.shape) != 4:
        return False
    for n in op.inputs:   # every other input the same for every row (broadcast over H and N) or read row by row
        t = graph.tensor(n)
        shape = (1,) * (4 - len(t.shape)) + tuple(t.shape)
        if n != data and not (shape[:2] == (1, 1) or (not t.is_const and side_per_row(graph, op, n))):
            return False
    return True


def fusable(graph: Graph, producer: Op, consumer: Op) -> bool:
    """The pair can be a link of a chain: the consumer reads the producer's output row by row."""
    mid = producer.outputs[0]
    if consumer.index != producer.index + 1 or mid in graph.outputs or mid in graph.inputs:
        return False
    if streamed(graph, consumer, mid) != mid or consumer.inputs.count(mid) != 1:
        return False
    if any(mid in op.inputs for op in graph.ops if op is not consumer):
        return False
    x = streamed(graph, producer)
    if not (_stage_ok(graph, producer, x) and _stage_ok(graph, consumer, mid)):
        return False
    if graph.tensor(x).dtype != graph.tensor(mid).dtype or len(graph.tensor(mid).shape) != 4:
        return False
    # a 1x1 producer with a stride reads rows the generic row walk would not skip: keep it to stride 1
    return not (producer.type in FUSABLE and _kernel_hw(graph, producer) == (1, 1)
                and tuple(producer.attrs.stride) != (1, 1))


def chain(graph: Graph, first: int, last: int) -> RowFusion:
    """ops first..last as a fusion (whether it is safe: chain_ok)."""
    windows = []
    for k in range(first, last):
        mid = graph.tensor(graph.ops[k].outputs[0])
        windows.append(Window(mid.name, k, k + 1, rows_read(graph, graph.ops[k + 1])[0],
                              mid.nbytes // (mid.shape[0] * mid.shape[1])))
    return RowFusion(tuple(range(first, last + 1)), tuple(windows), streamed(graph, graph.ops[first]))


def side_inputs(graph: Graph, fusion: RowFusion) -> list[str]:
    """The tensors the chain's element-wise ops read besides what it streams (each stored whole, computed before
    the chain), in op order."""
    data = [fusion.input, *fusion.middles]
    return [n for op_index, d in zip(fusion.ops, data) for n in sides(graph, graph.ops[op_index], d)]


def chain_ok(graph: Graph, fusion: RowFusion) -> bool:
    """Every link fusable, and every inner op asked for its rows 0, 1, 2, ... in order (the generated loops
    slide its window by one stride per call)."""
    if len(fusion.ops) < 2 or any(not fusable(graph, graph.ops[a], graph.ops[b])
                                  for a, b in zip(fusion.ops, fusion.ops[1:])):
        return False
    levels = window_schedules(graph, fusion)
    return all([r for r, _, _ in level] == list(range(len(level))) for level in levels[:-1])


def candidates(graph: Graph) -> list[RowFusion]:
    """Every safe chain of 2 or more consecutive ops, at most MAX_CHAIN of them conv-like, in graph order
    (shorter first at each start)."""
    found = []
    for op in graph.ops:
        last, convs = op.index, int(op.type in FUSABLE)
        while last + 1 < len(graph.ops) and fusable(graph, graph.ops[last], graph.ops[last + 1]):
            convs += graph.ops[last + 1].type in FUSABLE
            if convs > MAX_CHAIN:
                break
            last += 1
            fusion = chain(graph, op.index, last)
            if chain_ok(graph, fusion):
                found.append(fusion)
    return found


@dataclass(frozen=True)
class RowClass:
    """Producer rows `first..last` (middle rows), whose input rows have the same padding."""
    first: int
    last: int
    pad_top: int
    pad_bottom: int


def producer_classes(graph: Graph, op: Op) -> list[RowClass]:
    """Runs of consecutive output rows of `op` whose input windows are padded alike (top, bottom)."""
    h = graph.tensor(streamed(graph, op)).shape[1]
    oh = graph.tensor(op.outputs[0]).shape[1]
    kh, s, pt = rows_read(graph, op)
    runs: list[RowClass] = []
    for r in range(oh):
        top = r * s - pt
        pads = (max(0, -top), max(0, top + kh - h))
        if runs and (runs[-1].pad_top, runs[-1].pad_bottom) == pads:
            runs[-1] = RowClass(runs[-1].first, r, *pads)
        else:
            runs.append(RowClass(r, r, *pads))
    return runs


def window_schedules(graph: Graph, fusion: RowFusion) -> list[list[tuple[int, int, list[int]]]]:
    """Per window (one image): per row its reader computes, in order, (that row, the window rows kept from the
    reader's last row, the middle rows computed for it in order; -1: a padding row filled with the zero point).
    The last op computes all its rows; an earlier one the rows its reader's windows hold."""
    reader_rows = list(range(graph.tensor(graph.ops[fusion.consumer].outputs[0]).shape[1]))
    levels: list[list[tuple[int, int, list[int]]]] = []
    for w in reversed(fusion.windows):
        h = graph.tensor(w.middle).shape[1]
        _, s, pt = rows_read(graph, graph.ops[w.reader])
        keep = max(0, w.rows - s)
        level = []
        for r in reader_rows:
            kept = 0 if r == 0 else keep
            level.append((r, kept, [y if 0 <= y < h else -1 for y in range(r * s - pt + kept, r * s - pt + w.rows)]))
        levels.insert(0, level)
        reader_rows = [y for _, _, made in level for y in made if y >= 0]
    return levels


def schedule(graph: Graph, fusion: RowFusion) -> list[tuple[int, list[int]]]:
    """Per output row of the chain (one image): (kept rows, the rows of the last window computed for it)."""
    return [(kept, made) for _, kept, made in window_schedules(graph, fusion)[-1]]


def first_rows(graph: Graph, fusion: RowFusion) -> list[list[int]]:
    """Per output row of the chain (one image): the rows the first op computes for it, in order."""
    levels = window_schedules(graph, fusion)

    def pulled(k: int, entry: int) -> list[int]:
        made = [y for y in levels[k][entry][2] if y >= 0]
        # an inner op's rows are computed in order 0, 1, ... (chain_ok): its entry is its row
        return made if k == 0 else [m for y in made for m in pulled(k - 1, y)]
    return [pulled(len(levels) - 1, r) for r in range(len(levels[-1]))]


def fused_lag(graph: Graph, fusion: RowFusion) -> int:
    """Bytes by which the chain's output may trail its input (overlap.stream_lag, units = output rows, each
    reading the first op's input rows of the rows it pulls before writing its row)."""
    producer, consumer = graph.ops[fusion.producer], graph.ops[fusion.consumer]
    x, y = graph.tensor(fusion.input), graph.tensor(consumer.outputs[0])
    n, h = x.shape[0], x.shape[1]
    x_row, y_row = x.nbytes // (n * h), y.nbytes // (y.shape[0] * y.shape[1])
    _, s, pt = rows_read(graph, producer)
    read_lo, write_hi = [], []
    for image in range(n):
        for r, made in enumerate(first_rows(graph, fusion)):
            tops = [max(0, m * s - pt) for m in made]
            read_lo.append((image * h + min(tops)) * x_row if tops else x.nbytes)
            write_hi.append((image * y.shape[1] + r + 1) * y_row)
    return stream_lag(np.array(read_lo, np.int64), np.array(write_hi, np.int64), buffered=True)


# What a chain costs over running its layers whole, per the generated loops (backends/row_pipeline.py): the kept
# window rows moved up (dws_arena_move copies words: a load, a store and the loop's add and branch, about one
# instruction per byte) and a call per computed or padding row (arguments, prologue and epilogue, the kernel's
# own per-call setup: a few dozen). Rough on purpose: it only ranks chains for the planner's speed trade
# (planner.fastest_within); the benchmarks measure the plans it picks (benchmarks/memory.py).
MOVE_PER_BYTE = 1.0
PER_CALL = 40


def extra_instructions(graph: Graph, fusion: RowFusion) -> int:
    """Estimated instructions the chain adds to its layers' own (per MOVE_PER_BYTE and PER_CALL above)."""
    images = graph.tensor(graph.ops[fusion.producer].inputs[0]).shape[0]
    moved = calls = 0
    for w, level in zip(fusion.windows, window_schedules(graph, fusion)):
        for _, kept, made in level:
            moved += kept * w.row_bytes
            calls += len(made)
    return int(images * (moved * MOVE_PER_BYTE + calls * PER_CALL))
