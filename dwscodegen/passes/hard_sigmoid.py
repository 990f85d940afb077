"""HardSigmoid, max(0, min(1, alpha * x + beta)), which the IR has no op for.

fuse_hard_swish: x * HardSigmoid(x) with alpha = 1/6, beta = 1/2 (how torch < opset 14 and Keras write
hard swish) is x * relu6(x + 3) / 6, the IR's HardSwish. lower_hard_sigmoid: any other HardSigmoid becomes
what it is in IR ops: a 1x1 depthwise convolution with every weight alpha and every bias beta, clamped to
[0, 1] (a 2-D [N, C] input goes through it as [N, 1, 1, C]). Both only for float ops: in a QDQ model the
gate is quantized on its own, and fusing it away would change the result; there the depthwise runs in
float between Dequantize and Quantize, as the file says."""
from __future__ import annotations

import numpy as np

from ..ir import Activation, Conv2DAttrs, Graph, NoAttrs, Op
from .graph_edit import (
    add_tensor,
    only_reader,
    producers,
    readers,
    remove_unused,
    renumber,
)
from .source_ops import HARD_SIGMOID

HARD_SWISH_ALPHA, HARD_SWISH_BETA = np.float32(1 / 6), np.float32(0.5)


def fuse_hard_swish(graph: Graph) -> Graph:
    reading, made_by = readers(graph), producers(graph)
    for mul in list(graph.ops):
        if mul.type != "Mul" or len(mul.inputs) != 2 or mul.attrs.activation.kind != "none":
            continue
        for gate_name, x in (mul.inputs, mul.inputs[::-1]):
            gate = made_by.get(gate_name)
            if (gate is not None and gate.type == HARD_SIGMOID and gate.inputs[0] == x
                    and only_reader(graph, gate_name, reading) is mul
                    and np.float32(gate.attrs.alpha) == HARD_SWISH_ALPHA
                    and np.float32(gate.attrs.beta) == HARD_SWISH_BETA):
                graph.ops[graph.ops.index(mul)] = Op(mul.index, mul.name, "HardSwish", [x], list(mul.outputs),
                                                     NoAttrs(), origin=mul.origin)
                graph.ops.remove(gate)
                break
    return remove_unused(graph)


def lower_hard_sigmoid(graph: Graph) -> Graph:
    ops = []
    for op in graph.ops:
        ops.extend(_as_depthwise(graph, op) if op.type == HARD_SIGMOID else [op])
    graph.ops = ops
    renumber(graph)
    return remove_unused(graph)


def _as_depthwise(graph: Graph, op: Op) -> list[Op]:
    x, y = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    channels = x.shape[-1]
    base = graph.origin.get(y.name, y.name)
    w = add_tensor(graph, f"{base}_alpha", f"{base}_alpha", shape=(1, 1, 1, channels), dtype="float32",
                   data=np.full((1, 1, 1, channels), np.float32(op.attrs.alpha), np.float32))
    b = add_tensor(graph, f"{base}_beta", f"{base}_beta", shape=(channels,), dtype="float32",
                   data=np.full((channels,), np.float32(op.attrs.beta), np.float32))
    attrs = Conv2DAttrs(activation=Activation("clamp", 0.0, 1.0))
    if len(x.shape) == 4:
        return [Op(op.index, op.name, "DepthwiseConv2D", [x.name, w, b], [y.name], attrs, origin=op.origin)]
    shape4 = (x.shape[0], 1, 1, channels)
    x4 = add_tensor(graph, f"{base}_in_nhwc", None, shape=shape4, dtype="float32")
    y4 = add_tensor(graph, f"{base}_nhwc", None, shape=shape4, dtype="float32")
    return [Op(op.index, f"{op.name}_to_nhwc", "Reshape", [x.name], [x4], NoAttrs(), origin=op.origin),
            Op(op.index, op.name, "DepthwiseConv2D", [x4, w, b], [y4], attrs, origin=op.origin),
            Op(op.index, f"{op.name}_from_nhwc", "Reshape", [y4], [y.name], NoAttrs(), origin=op.origin)]
