"""Activation fusion: a Relu, Relu6 or Clamp that is the only reader of a float op with a fused-activation
field (convolutions, fully connected, Add, Mul, pools) becomes that field, and the op writes the
activation's output. Only float ops: fusing into an int8 op would also change its output quantization."""
from __future__ import annotations

from ..ir import Activation, Graph, Op
from .graph_edit import only_reader, readers, remove_unused
from .source_ops import CLAMP, SOURCE_OP_TYPES


def _activation(op: Op) -> Activation | None:
    if op.type == "Relu":
        return Activation("relu")
    if op.type == "Relu6":
        return Activation("relu6")
    if op.type == CLAMP and op.attrs.low is not None and op.attrs.high is not None:
        return Activation("clamp", op.attrs.low, op.attrs.high)
    return None


def fuse_activations(graph: Graph) -> Graph:
    reading = readers(graph)
    for op in list(graph.ops):
        if (op.type in SOURCE_OP_TYPES or not hasattr(op.attrs, "activation") or op.attrs.activation.kind != "none"
                or graph.op_dtype(op) != "float32"):
            continue
        nxt = only_reader(graph, op.outputs[0], reading)
        act = _activation(nxt) if nxt is not None and nxt.inputs[0] == op.outputs[0] else None
        if act is None:
            continue
        op.attrs.activation = act
        op.outputs = list(nxt.outputs)
        graph.ops.remove(nxt)
    return remove_unused(graph)
