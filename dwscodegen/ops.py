"""Facts about ops that every stage asks the same way: what kind of convolution a layer is, how many
multiply-accumulates it does. Importers, validation, both backends, `inspect` and the benchmarks read
them from here, so they cannot disagree."""
from __future__ import annotations

import numpy as np

from .ir import Graph, Op

CONV_TYPES = ("Conv2D", "DepthwiseConv2D")
# Ops whose kernels (portable and SIMD variants) compute one image of [N][H][W][C]: the op treats every image
# alike and on its own (hybrid Conv2D quantizes its input per image, as TFLite does), so the library calls the
# kernel once per image (Kernel.images). Every other kernel loops over the whole tensor itself.
PER_IMAGE = ("Conv2D", "DepthwiseConv2D")


def is_pointwise(graph: Graph, op: Op) -> bool:
    """A 1x1 Conv2D without padding: a matrix product over pixels (stride may still skip pixels)."""
    return (op.type == "Conv2D" and graph.tensor(op.inputs[1]).shape[1:3] == (1, 1)
            and tuple(op.attrs.pad) == (0, 0, 0, 0))


def conv_kind(graph: Graph, op: Op) -> str:
    """depthwise | pointwise | conv for a conv-like op."""
    if op.type == "DepthwiseConv2D":
        return "depthwise"
    return "pointwise" if is_pointwise(graph, op) else "conv"


def op_macs(graph: Graph, op: Op) -> int:
    out = graph.tensor(op.outputs[0])
    if op.type in CONV_TYPES:
        w = graph.tensor(op.inputs[1])
        per_output = w.shape[1] * w.shape[2] * (w.shape[3] if op.type == "Conv2D" else 1)
        return out.size * per_output
    if op.type == "FullyConnected":
        return out.size * graph.tensor(op.inputs[1]).shape[1]
    if op.type in ("AveragePool2D", "MaxPool2D"):
        return out.size * int(np.prod(op.attrs.filter))
    if op.type == "TransposeConv2D":
        # every input value times the whole filter, as the scatter computes it (cropped taps included)
        return graph.tensor(op.inputs[0]).size * int(np.prod(graph.tensor(op.inputs[1]).shape[:3]))
    return 0


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
    elif op.type in ("AveragePool2D", "MaxPool2D"):
        text += f", k{a.filter[0]}x{a.filter[1]} s{a.stride[0]}"
    return text
