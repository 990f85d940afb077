"""The order in which each templates-road kernel writes its output, as data: what lets the planner place an
op's output over its dying input (overlap.py computes the lag from it).

Each entry names a kernel (its template stem) and how it walks the output:
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

PIXELS, BUFFERED, WHOLE, ELEMENTS = "pixels", "buffered", "whole", "elements"

STREAMS: dict[str, tuple[str, int]] = {
    # portable
    "conv2d_s8": (PIXELS, 1), "conv2d_f32": (PIXELS, 1),
    "depthwise_conv2d_s8": (PIXELS, 1), "depthwise_conv2d_f32": (PIXELS, 1),
    "pointwise_conv2d_s8": (PIXELS, 1), "pointwise_conv2d_f32": (PIXELS, 1),
    "avg_pool2d_s8": (PIXELS, 1), "avg_pool2d_f32": (PIXELS, 1),
    "max_pool2d_s8": (PIXELS, 1), "max_pool2d_f32": (PIXELS, 1),
    "relu_s8": (ELEMENTS, 1), "relu_f32": (ELEMENTS, 1),
    "hard_swish_s8": (ELEMENTS, 1), "hard_swish_f32": (ELEMENTS, 1),
    "leaky_relu_s8": (ELEMENTS, 1), "leaky_relu_f32": (ELEMENTS, 1),
    "logistic_s8": (ELEMENTS, 1), "logistic_f32": (ELEMENTS, 1), "tanh_s8": (ELEMENTS, 1), "tanh_f32": (ELEMENTS, 1),
    "conv2d_hybrid_f32": (WHOLE, 0), "depthwise_conv2d_hybrid_f32": (WHOLE, 0),
    "reshape_s8": (ELEMENTS, 1), "reshape_f32": (ELEMENTS, 1),
    "add_s8": (ELEMENTS, 1), "add_f32": (ELEMENTS, 1), "mul_s8": (ELEMENTS, 1), "mul_f32": (ELEMENTS, 1),
    # DSP (Cortex-M4/M7/M33)
    "pointwise_conv2d_s8_dsp_4x2": (BUFFERED, 4), "pointwise_conv2d_s8_dsp_1x2": (BUFFERED, 1),
    "conv2d_s8_dsp_im2col_2x2": (BUFFERED, 2), "conv2d_s8_dsp_im2col_1x2": (BUFFERED, 1),
    "depthwise_conv2d_s8_dsp_4c": (PIXELS, 1),
    "pointwise_conv2d_s8_dsp_w8_4x2": (BUFFERED, 4), "pointwise_conv2d_s8_dsp_w8_1x2": (BUFFERED, 1),
    "conv2d_s8_dsp_im2col_w8_2x2": (BUFFERED, 2), "conv2d_s8_dsp_im2col_w8_1x2": (BUFFERED, 1),
    # MVE (Cortex-M55)
    "pointwise_conv2d_s8_mve_2x4": (PIXELS, 2),
    "conv2d_s8_mve_im2col_2x4": (BUFFERED, 2), "conv2d_s8_mve_im2col_1x4": (BUFFERED, 1),
    "depthwise_conv2d_s8_mve_8c": (PIXELS, 1),
    # Cortex-M glue variants (arm_glue.py): the portable broadcast loop nest, or MVE vectors in memory order
    "add_s8_dsp": (ELEMENTS, 1), "mul_s8_dsp": (ELEMENTS, 1), "mul_s8_mve": (ELEMENTS, 4),
    "lookup_table_s8_mve": (ELEMENTS, 16),
}
# x86 GEMM variants run their last NPIX % P pixels as one shorter tile (the others above, one at a time)
STREAMS_TAIL_TILE: dict[str, tuple[str, int]] = {
    "pointwise_conv2d_s8_avx2_6x16": (BUFFERED, 6), "conv2d_s8_avx2_im2col_6x16": (BUFFERED, 6),
    "pointwise_conv2d_s8_avx2_8x8": (BUFFERED, 8), "conv2d_s8_avx2_im2col_8x8": (BUFFERED, 8),
    "pointwise_conv2d_s8_avx512vnni_4x64": (PIXELS, 4), "pointwise_conv2d_s8_avx512vnni_16x16": (PIXELS, 16),
    "conv2d_s8_avx512vnni_im2col_4x64": (BUFFERED, 4), "conv2d_s8_avx512vnni_im2col_16x16": (BUFFERED, 16),
}


def overlap_lags(graph: Graph, op: Op, kernel: str) -> tuple[tuple[str, int], ...]:
    """(activation input, lag in bytes) for each input `kernel`'s output may overlap (Kernel.overlap)."""
    walk = STREAMS.get(kernel) or STREAMS_TAIL_TILE.get(kernel)
    if walk is None:
        return ()
    how, tile = walk
    if how == WHOLE:
        return ((op.inputs[0], 0),)
    if how in (PIXELS, BUFFERED):
        out = graph.tensor(op.outputs[0])
        tiles = raster_tiles(out.shape[1] * out.shape[2], tile, tail_tile=kernel in STREAMS_TAIL_TILE)
        return ((op.inputs[0], window_lag(graph, op, tiles, buffered=how == BUFFERED)),)
    lags = []
    for name in dict.fromkeys(op.inputs):
        if not graph.tensor(name).is_const and (lag := elementwise_lag(graph, op, name, tile)) is not None:
            lags.append((name, lag))
    return tuple(lags)
