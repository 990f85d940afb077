"""The order in which each templates-road kernel writes its output, as data: what lets the planner place an
op's output over its dying input (overlap.py computes the lag from it).

Each entry names a kernel (a portable kernel's template stem here; a SIMD variant's walk is the `stream` of its
entry in templates/kernels/variants.toml, tail_tile = true where the last NPIX % T pixels run as one shorter
tile, the x86 GEMMs) and how it walks the output:
- ("pixels", T): output pixels in raster order, T at a time, each tile's outputs written only after or while
  reading that tile's input windows, never another tile's (portable conv-like and pooling kernels: T = 1;
  the DSP and MVE GEMM tiles: T = their pixel tile; the region-split depthwise variants walk their regions
  row by row, so in raster order too).
- ("buffered", T): as "pixels", but each tile's input windows are copied into a patch before any of its
  outputs is written (the DSP GEMM tiles and the im2col variants): a pointwise layer with OC <= IC then
  writes over its own input with no lag at all.
- ("whole", 0): the whole input is read (the hybrid kernels quantize it into a buffer of their own) before any
  output is written: the output may start right at the input.
- ("elements", T): elementwise, T values at a time in memory order, over each input of the output's size
  (a broadcast operand, smaller, keeps its own buffer).
A kernel not listed (e.g. the padded depthwise variants, which sweep the whole plane once per channel group,
or the tvm road's kernels) keeps its output disjoint from its inputs. tests/test_overlap.py verifies every
entry bit-exactly with its output overlapping its input.
"""
from __future__ import annotations

from ...ir import Graph, Op
from ...overlap import elementwise_lag, raster_tiles, window_lag
from .simd import registry

PIXELS, BUFFERED, WHOLE, ELEMENTS = "pixels", "buffered", "whole", "elements"

# the portable kernels' walks; each SIMD variant's is its registry entry's `stream` (templates/kernels/variants.toml)
STREAMS: dict[str, tuple[str, int]] = {
    "conv2d_s8": (PIXELS, 1), "conv2d_f32": (PIXELS, 1),
    "depthwise_conv2d_s8": (PIXELS, 1), "depthwise_conv2d_f32": (PIXELS, 1),
    "pointwise_conv2d_s8": (PIXELS, 1), "pointwise_conv2d_f32": (PIXELS, 1),
    "avg_pool2d_s8": (PIXELS, 1), "avg_pool2d_f32": (PIXELS, 1),
    "max_pool2d_s8": (PIXELS, 1), "max_pool2d_f32": (PIXELS, 1),
    "relu_s8": (ELEMENTS, 1), "relu_f32": (ELEMENTS, 1),
    "hard_swish_s8": (ELEMENTS, 1), "hard_swish_f32": (ELEMENTS, 1),
    "leaky_relu_s8": (ELEMENTS, 1), "leaky_relu_f32": (ELEMENTS, 1),
    "table_s8": (ELEMENTS, 1), "logistic_s8": (ELEMENTS, 1), "logistic_f32": (ELEMENTS, 1), "tanh_s8": (ELEMENTS, 1), "tanh_f32": (ELEMENTS, 1),
    "conv2d_hybrid_f32": (WHOLE, 0), "depthwise_conv2d_hybrid_f32": (WHOLE, 0),
    "reshape_s8": (ELEMENTS, 1), "reshape_f32": (ELEMENTS, 1),
    "add_s8": (ELEMENTS, 1), "add_f32": (ELEMENTS, 1), "mul_s8": (ELEMENTS, 1), "mul_f32": (ELEMENTS, 1),
}


def overlap_lags(graph: Graph, op: Op, kernel: str) -> tuple[tuple[str, int], ...]:
    """(activation input, lag in bytes) for each input `kernel`'s output may overlap (Kernel.overlap)."""
    variant = registry.get(kernel)
    if variant is not None:
        walk = None if variant.stream is None else (variant.stream.walk, variant.stream.pixels)
        tail_tile = variant.stream is not None and variant.stream.tail_tile
    else:
        walk, tail_tile = STREAMS.get(kernel), False
    if walk is None:
        return ()
    how, tile = walk
    if how == WHOLE:
        return ((op.inputs[0], 0),)
    if how in (PIXELS, BUFFERED):
        out = graph.tensor(op.outputs[0])
        tiles = raster_tiles(out.shape[1] * out.shape[2], tile, tail_tile=tail_tile)
        return ((op.inputs[0], window_lag(graph, op, tiles, buffered=how == BUFFERED)),)
    lags = []
    for name in dict.fromkeys(op.inputs):
        if not graph.tensor(name).is_const and (lag := elementwise_lag(graph, op, name, tile)) is not None:
            lags.append((name, lag))
    return tuple(lags)
