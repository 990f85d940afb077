"""Row-streamed fusion of two convolution layers so the tensor between them is never stored whole.

A fused pair (producer -> middle tensor -> consumer) runs as a row pipeline: the consumer keeps a window of
its KH input rows of the middle tensor; to compute its output row r the window holds middle rows
r * stride - pad_top + 0..KH-1, rows outside the image filled with the middle tensor's zero point (int8; 0.0
for float32), which is exactly TFLite's padding (a padded tap adds (zp - zp) * w = 0). The rows the previous
window shares are copied up (KH - stride rows); the new ones are computed by the producer one row at a time,
straight into the window. Both layers keep their specialised kernels: the producer becomes a kernel instance
with one output row (one instance per distinct top/bottom padding of its input rows: its first rows, the
interior, its last rows), the consumer an instance on an input of KH rows with no top/bottom padding and one
output row; a short generated loop calls them (backends/row_pipeline.py).

What it costs: no extra arithmetic (every middle row is computed once), the kept window rows copied once per
output row and one call per row. The planner (planner.py) takes a fusion only where it lowers the arena.
Refused: dilation, strided pointwise producers, hybrid (float32 with int8 weights) layers, a middle tensor
that anything else reads or that is a graph output, and layers that are not consecutive.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .ir import Graph, Op
from .overlap import stream_lag
from .qparams import is_hybrid

FUSABLE = ("Conv2D", "DepthwiseConv2D")


@dataclass(frozen=True)
class RowFusion:
    producer: int       # op index
    consumer: int       # op index, producer + 1
    middle: str         # the tensor never materialized
    rows: int           # window rows (the consumer's KH)
    row_bytes: int      # one middle row of one image

    @property
    def window(self) -> str:
        """The arena item of the window."""
        return f"{self.middle}@window"

    @property
    def window_bytes(self) -> int:
        return self.rows * self.row_bytes


def _kernel_hw(graph: Graph, op: Op) -> tuple[int, int]:
    return tuple(graph.tensor(op.inputs[1]).shape[1:3])


def fusable(graph: Graph, producer: Op, consumer: Op) -> bool:
    mid = producer.outputs[0]
    if producer.type not in FUSABLE or consumer.type not in FUSABLE or consumer.index != producer.index + 1:
        return False
    if consumer.inputs[0] != mid or mid in graph.outputs or mid in graph.inputs:
        return False
    if any(mid in op.inputs for op in graph.ops if op is not consumer) or consumer.inputs.count(mid) != 1:
        return False
    if any(is_hybrid(graph, op) or tuple(op.attrs.dilation) != (1, 1) for op in (producer, consumer)):
        return False
    if graph.tensor(producer.inputs[0]).dtype != graph.tensor(mid).dtype or len(graph.tensor(mid).shape) != 4:
        return False
    # a 1x1 producer with a stride reads rows the generic row walk would not skip: keep it to stride 1
    return not (_kernel_hw(graph, producer) == (1, 1) and tuple(producer.attrs.stride) != (1, 1))


def candidates(graph: Graph) -> list[RowFusion]:
    """Every fusable consecutive pair, in graph order."""
    found = []
    for producer, consumer in zip(graph.ops, graph.ops[1:]):
        if fusable(graph, producer, consumer):
            mid = graph.tensor(producer.outputs[0])
            kh = _kernel_hw(graph, consumer)[0]
            found.append(RowFusion(producer.index, consumer.index, mid.name, kh,
                                   mid.nbytes // (mid.shape[0] * mid.shape[1])))
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
    h = graph.tensor(op.inputs[0]).shape[1]
    oh = graph.tensor(op.outputs[0]).shape[1]
    kh = _kernel_hw(graph, op)[0]
    s, pt = op.attrs.stride[0], op.attrs.pad[0]
    runs: list[RowClass] = []
    for r in range(oh):
        top = r * s - pt
        pads = (max(0, -top), max(0, top + kh - h))
        if runs and (runs[-1].pad_top, runs[-1].pad_bottom) == pads:
            runs[-1] = RowClass(runs[-1].first, r, *pads)
        else:
            runs.append(RowClass(r, r, *pads))
    return runs


def schedule(graph: Graph, fusion: RowFusion) -> list[tuple[int, list[int]]]:
    """Per consumer output row (one image): (kept rows, the middle rows computed for it, in order; -1: a
    padding row filled with the zero point)."""
    consumer = graph.ops[fusion.consumer]
    mh = graph.tensor(fusion.middle).shape[1]
    oh = graph.tensor(consumer.outputs[0]).shape[1]
    s, pt = consumer.attrs.stride[0], consumer.attrs.pad[0]
    keep = max(0, fusion.rows - s)
    rows = []
    for r in range(oh):
        kept = 0 if r == 0 else keep
        rows.append((kept, [y if 0 <= y < mh else -1 for y in range(r * s - pt + kept, r * s - pt + fusion.rows)]))
    return rows


def fused_lag(graph: Graph, fusion: RowFusion) -> int:
    """Bytes by which the consumer's output may trail the producer's input (overlap.stream_lag, units =
    output rows, each reading the producer's input rows of its new middle rows before writing its row)."""
    producer, consumer = graph.ops[fusion.producer], graph.ops[fusion.consumer]
    x, y = graph.tensor(producer.inputs[0]), graph.tensor(consumer.outputs[0])
    n, h = x.shape[0], x.shape[1]
    x_row, y_row = x.nbytes // (n * h), y.nbytes // (y.shape[0] * y.shape[1])
    s, pt = producer.attrs.stride[0], producer.attrs.pad[0]
    read_lo, write_hi = [], []
    for image in range(n):
        for r, (_, made) in enumerate(schedule(graph, fusion)):
            tops = [max(0, m * s - pt) for m in made if m >= 0]
            read_lo.append((image * h + min(tops)) * x_row if tops else x.nbytes)
            write_hi.append((image * y.shape[1] + r + 1) * y_row)
    return stream_lag(np.array(read_lo, np.int64), np.array(write_hi, np.int64), buffered=True)
