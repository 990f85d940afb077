"""How far an op's output must trail its input for the two to share arena bytes (in-place execution).

A kernel that writes its output in a known order (units: tiles of output pixels, all channels each) and reads,
per unit, only that unit's window of the input can run with its output placed `lag` bytes below its input,
overlapping it: every output byte lands on input bytes no later unit reads. `stream_lag` computes the
smallest such lag exactly, at unit granularity, by simulating the order: the output written by units 0..u
must end at or below the lowest input byte units u..last still read (unit u included, since a unit may write
before it has read everything). A backend declares the order of each kernel variant (which pixel tiles, in
which order); the planner (planner.py) uses the lag only where the input dies at that op.

Batches: a kernel computes its images one after the other (the per-image kernels are called once per image),
so image n's units follow image n-1's, each tensor advanced by one image.
"""
from __future__ import annotations

import numpy as np

from .ir import Graph, Op


def stream_lag(read_lo: np.ndarray, write_hi: np.ndarray, buffered: bool = False) -> int:
    """read_lo[u]: lowest input byte unit u reads; write_hi[u]: one past the highest output byte it writes
    (both in bytes from their tensor's start, units in execution order). The smallest d >= 0 such that the
    output at input - d never overwrites an input byte before its last read. buffered: each unit reads all
    its input (into a patch) before writing anything, so only later units' reads count."""
    written = np.maximum.accumulate(write_hi)
    unread = np.minimum.accumulate(read_lo[::-1])[::-1]
    if buffered:
        written, unread = written[:-1], unread[1:]
    return max(0, int(np.max(written - unread, initial=0)))


def _images(graph: Graph, op: Op, read_lo: np.ndarray, write_hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One image's units repeated over the batch, each image's offsets advanced by one image of its tensor."""
    x, y = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    n = x.shape[0]
    steps = np.arange(n, dtype=np.int64)[:, None]
    return ((read_lo[None, :] + steps * (x.nbytes // n)).ravel(),
            (write_hi[None, :] + steps * (y.nbytes // n)).ravel())


def raster_tiles(pixels: int, tile: int, tail_tile: bool = False) -> list[np.ndarray]:
    """Output pixels 0..pixels-1 in raster order, `tile` at a time; the last pixels % tile one at a time (as
    the Cortex-M GEMM variants' remainder loops run them) or, tail_tile, as one shorter tile."""
    full = pixels - pixels % tile
    tail = [np.arange(full, pixels)] if tail_tile and full < pixels else [np.arange(p, p + 1) for p in range(full, pixels)]
    return [np.arange(p, p + tile) for p in range(0, full, tile)] + tail


def window_lag(graph: Graph, op: Op, tiles: list[np.ndarray], buffered: bool = False) -> int:
    """Lag of a windowed op (Conv2D, DepthwiseConv2D, pooling) computing `tiles` (arrays of output pixel
    indices, y * OW + x, all channels each) in order; each pixel reads its window's input rows and columns.
    The lowest byte a pixel reads is taken at its window's clipped top-left corner (a bound: the first tap
    inside the input is never lower)."""
    x, y = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    _, h, w, c = x.shape
    _, _, ow, oc = y.shape
    attrs = op.attrs
    sh, sw = attrs.stride
    pt, pl = attrs.pad[0], attrs.pad[2]
    isz, osz = x.nbytes // x.size, y.nbytes // y.size
    read_lo, write_hi = [], []
    for tile in tiles:
        iy = np.clip(tile // ow * sh - pt, 0, h - 1)
        ix = np.clip(tile % ow * sw - pl, 0, w - 1)
        read_lo.append(int(np.min((iy * w + ix) * c)) * isz)
        write_hi.append((int(np.max(tile)) + 1) * oc * osz)
    return stream_lag(*_images(graph, op, np.array(read_lo, np.int64), np.array(write_hi, np.int64)), buffered)


def elementwise_lag(graph: Graph, op: Op, operand: str, tile: int) -> int | None:
    """Lag of an elementwise op over `operand` (an input of the output's size and element size, read in the output's order) computed
    `tile` elements at a time in memory order; None if the operand is broadcast (smaller) or converted."""
    x, y = graph.tensor(operand), graph.tensor(op.outputs[0])
    if x.size != y.size or x.nbytes != y.nbytes:
        return None
    size = x.nbytes // x.size
    starts = np.arange(0, x.size, tile, dtype=np.int64)
    return stream_lag(starts * size, np.minimum(starts + tile, x.size) * size)
