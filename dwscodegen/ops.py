"""Facts about ops that every stage asks the same way: one table (OPS) with, per op type, its kind, how many
inputs it takes, its attrs class, whether its kernel computes one image of a batch, the dtypes it converts
between and how many multiply-accumulates it does; plus what kind of convolution a layer is. Importers,
validation, both backends, `inspect` and the benchmarks read them from here, so they cannot disagree.

Adding an op is one line in OPS (the table is data: MACs are a function of the graph and op, or None)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .ir import (AddAttrs, ConcatAttrs, Conv2DAttrs, FullyConnectedAttrs, Graph, LeakyReluAttrs, MeanAttrs, MulAttrs,
                 NoAttrs, Op, PadAttrs, PoolAttrs, QuantizeAttrs, ResizeAttrs, SliceAttrs, SoftmaxAttrs,
                 TableAttrs, TransposeConv2DAttrs)


def _conv_macs(graph: Graph, op: Op) -> int:
    w = graph.tensor(op.inputs[1])
    per_output = w.shape[1] * w.shape[2] * (w.shape[3] if op.type == "Conv2D" else 1)
    return graph.tensor(op.outputs[0]).size * per_output


def _fully_connected_macs(graph: Graph, op: Op) -> int:
    return graph.tensor(op.outputs[0]).size * graph.tensor(op.inputs[1]).shape[1]


def _pool_macs(graph: Graph, op: Op) -> int:
    return graph.tensor(op.outputs[0]).size * int(np.prod(op.attrs.filter))


def _transpose_conv_macs(graph: Graph, op: Op) -> int:
    # every input value times the whole filter, as the scatter computes it (cropped taps included)
    return graph.tensor(op.inputs[0]).size * int(np.prod(graph.tensor(op.inputs[1]).shape[:3]))


@dataclass(frozen=True)
class OpFacts:
    # conv (a filter slides over H, W) | transpose_conv (each input value scatters the filter) | fully_connected |
    # pool | reduce | softmax | resize | elementwise (one output value from the values at the same index) |
    # shape (moves values without arithmetic: reshape, pad, concat, slice) | quantize (float32 <-> int8)
    kind: str
    inputs: tuple[int, int]          # how many inputs (activations and constants), at least and at most
    attrs: type                      # the attrs dataclass of ir.py
    # The kernels (portable and SIMD variants) compute one image of [N][H][W][C]: the op treats every image
    # alike and on its own (hybrid Conv2D quantizes its input per image, as TFLite does), so the library calls
    # the kernel once per image (Kernel.images). Every other kernel loops over the whole tensor itself.
    per_image: bool = False
    converts: tuple[str, str] | None = None      # (input dtype, output dtype) of an op that changes the dtype
    macs: Callable[[Graph, Op], int] | None = None   # multiply-accumulates; None: the op does none


MANY = 1 << 16   # "any number of inputs"

OPS: dict[str, OpFacts] = {
    "Conv2D": OpFacts("conv", (2, 3), Conv2DAttrs, per_image=True, macs=_conv_macs),
    "DepthwiseConv2D": OpFacts("conv", (2, 3), Conv2DAttrs, per_image=True, macs=_conv_macs),
    "Add": OpFacts("elementwise", (2, 2), AddAttrs),
    "AveragePool2D": OpFacts("pool", (1, 1), PoolAttrs, macs=_pool_macs),
    "MaxPool2D": OpFacts("pool", (1, 1), PoolAttrs, macs=_pool_macs),
    "FullyConnected": OpFacts("fully_connected", (2, 3), FullyConnectedAttrs, macs=_fully_connected_macs),
    "Softmax": OpFacts("softmax", (1, 1), SoftmaxAttrs),
    "Reshape": OpFacts("shape", (1, 1), NoAttrs),
    "Mean": OpFacts("reduce", (1, 1), MeanAttrs),
    "Pad": OpFacts("shape", (1, 1), PadAttrs),
    "Concatenation": OpFacts("shape", (1, MANY), ConcatAttrs),
    "Quantize": OpFacts("quantize", (1, 1), QuantizeAttrs, converts=("float32", "int8")),
    "Dequantize": OpFacts("quantize", (1, 1), NoAttrs, converts=("int8", "float32")),
    "Relu": OpFacts("elementwise", (1, 1), NoAttrs),
    "Relu6": OpFacts("elementwise", (1, 1), NoAttrs),
    "ResizeBilinear": OpFacts("resize", (1, 1), ResizeAttrs),
    "ResizeNearest": OpFacts("resize", (1, 1), ResizeAttrs),
    "TransposeConv2D": OpFacts("transpose_conv", (2, 3), TransposeConv2DAttrs, macs=_transpose_conv_macs),
    "Slice": OpFacts("shape", (1, 1), SliceAttrs),
    "Mul": OpFacts("elementwise", (2, 2), MulAttrs),
    "Maximum": OpFacts("elementwise", (2, 2), NoAttrs),
    "Minimum": OpFacts("elementwise", (2, 2), NoAttrs),
    "PRelu": OpFacts("elementwise", (2, 2), NoAttrs),
    "HardSwish": OpFacts("elementwise", (1, 1), NoAttrs),
    "Logistic": OpFacts("elementwise", (1, 1), NoAttrs),
    "Tanh": OpFacts("elementwise", (1, 1), NoAttrs),
    "LeakyRelu": OpFacts("elementwise", (1, 1), LeakyReluAttrs),
    "Table": OpFacts("elementwise", (1, 1), TableAttrs),
}

CONV_TYPES = tuple(t for t, f in OPS.items() if f.kind == "conv")
PER_IMAGE = tuple(t for t, f in OPS.items() if f.per_image)


def facts(op: Op) -> OpFacts:
    return OPS[op.type]


def io_dtypes(graph: Graph, op: Op) -> tuple[str, str]:
    """(dtype of the op's activation inputs, dtype of its output): the same but for Quantize / Dequantize."""
    converts = OPS[op.type].converts
    return converts if converts else (graph.op_dtype(op),) * 2


def touches_int8(graph: Graph, op: Op) -> bool:
    """The op reads or writes int8 activations (templates carry the int8 side's `_s8` suffix)."""
    return "int8" in io_dtypes(graph, op)


def is_pointwise(graph: Graph, op: Op) -> bool:
    """A 1x1 Conv2D without padding: a matrix product over pixels (stride may still skip pixels)."""
    return (op.type == "Conv2D" and graph.tensor(op.inputs[1]).shape[1:3] == (1, 1)
            and tuple(op.attrs.pad) == (0, 0, 0, 0))


def conv_kind(graph: Graph, op: Op) -> str:
    """depthwise | pointwise | conv for a conv-like op."""
    if op.type == "DepthwiseConv2D":
        return "depthwise"
    return "pointwise" if is_pointwise(graph, op) else "conv"


def layer_kind(graph: Graph, op: Op) -> str:
    """What reports group a layer by: depthwise | pointwise | conv for convolutions, else the table's kind."""
    return conv_kind(graph, op) if OPS[op.type].kind == "conv" else OPS[op.type].kind


def op_macs(graph: Graph, op: Op) -> int:
    macs = OPS[op.type].macs
    return macs(graph, op) if macs else 0


def activation_bounds(op: Op) -> tuple[float | None, float | None]:
    """Real-valued bounds of an op's fused activation ((None, None) for ops without one)."""
    act = getattr(op.attrs, "activation", None)
    return act.bounds() if act is not None else (None, None)


def describe_layer(graph: Graph, op: Op) -> str:
    """Short shape text for reports: input -> output, and kernel / stride / padding of convs and pools."""
    x = "x".join(map(str, graph.tensor(op.inputs[0]).shape))
    y = "x".join(map(str, graph.tensor(op.outputs[0]).shape))
    text = f"{x} → {y}"
    a = op.attrs
    if op.type in CONV_TYPES:
        w = graph.tensor(op.inputs[1])
        text += f", k{w.shape[1]}x{w.shape[2]} s{a.stride[0]}"
        if any(a.pad):
            text += " pad" + ",".join(map(str, a.pad))
    elif OPS[op.type].kind == "pool":
        text += f", k{a.filter[0]}x{a.filter[1]} s{a.stride[0]}"
    return text
