"""A FullyConnected without bias whose only reader is an Add of a constant vector (ONNX MatMul + Add, as
torch writes nn.Linear at some opsets) becomes one FullyConnected with that bias."""
from __future__ import annotations

import numpy as np

from ..ir import Graph
from .graph_edit import only_reader, readers, remove_unused


def fuse_bias(graph: Graph) -> Graph:
    reading = readers(graph)
    for fc in list(graph.ops):
        if fc.type != "FullyConnected" or len(fc.inputs) != 2 or graph.op_dtype(fc) != "float32":
            continue
        add = only_reader(graph, fc.outputs[0], reading)
        if add is None or add.type != "Add" or add.attrs.activation.kind != "none":
            continue
        other = next((n for n in add.inputs if n != fc.outputs[0]), None)
        units = graph.tensor(fc.inputs[1]).shape[0]
        bias = graph.tensor(other) if other is not None else None
        if (bias is None or not bias.is_const or bias.dtype != "float32" or bias.size != units
                or len(reading[other]) != 1):
            continue
        bias.data = np.ascontiguousarray(bias.data.reshape(units))
        bias.shape = (units,)
        fc.inputs.append(other)
        fc.outputs = list(add.outputs)
        graph.ops.remove(add)
    return remove_unused(graph)
