"""QDQ folding: Dequantize -> float op -> Quantize groups (onnxruntime's QuantFormat.QDQ) into int8 ops.

A float op whose activation inputs are all Dequantize outputs and whose only reader is a Quantize becomes
one int8 op from the int8 tensors behind the Dequantize ops to the Quantize's output (qdq_lowering has
the int8 form of each op type, or says there is none for the model's quantization: then the op stays
float between the Dequantize and Quantize ops, which is what the file literally says). Convolutions and
fully connected layers get `requant` (the importer says whose arithmetic the file means: "onnx" is
onnxruntime's float32 scale with rounding half to even).

Afterwards, a Dequantize of a constant that no int8 op took (weights of an op that stays float) is
folded into the float constant it computes, and each Dequantize of an activation that is still needed is
placed right before its first reader, so its float copy lives no longer than it must.
"""
from __future__ import annotations

import numpy as np

from ..ir import Graph, Op
from .graph_edit import only_reader, producers, readers, remove_unused
from .qdq_lowering import lower_int8
from .source_ops import SOURCE_OP_TYPES


def fold_qdq(graph: Graph, requant: str) -> Graph:
    reading, made_by = readers(graph), producers(graph)

    def int8_source(name: str) -> str | None:
        op = made_by.get(name)
        if op is not None and op.type == "Dequantize" and not graph.tensor(op.inputs[0]).is_const:
            return op.inputs[0]
        return None

    def is_dequantized_constant(name: str) -> bool:
        op = made_by.get(name)
        return op is not None and op.type == "Dequantize" and graph.tensor(op.inputs[0]).is_const

    ops: list[Op] = []
    folded: set[int] = set()             # ids of Quantize ops that became part of an int8 op
    for op in graph.ops:
        if id(op) in folded:
            continue
        quantize = only_reader(graph, op.outputs[0], reading)
        acts = [n for n in op.inputs if not graph.tensor(n).is_const and not is_dequantized_constant(n)]
        sources = {n: int8_source(n) for n in acts}
        lowered = None
        if (op.type not in ("Quantize", "Dequantize") + SOURCE_OP_TYPES and graph.op_dtype(op) == "float32"
                and acts and all(sources.values()) and quantize is not None and quantize.type == "Quantize"):
            lowered = lower_int8(graph, op, sources, quantize.outputs[0], requant, made_by)
        if lowered is None:
            ops.append(op)
            continue
        ops.extend(lowered)
        folded.add(id(quantize))
    # The Dequantize ops of constants the int8 ops took are gone (their outputs are constants now); the rest
    # compute float constants for the ops that stay float.
    graph.ops = []
    for op in ops:
        if op.type == "Dequantize" and graph.tensor(op.inputs[0]).is_const:
            out = graph.tensor(op.outputs[0])
            if not out.is_const:
                out.data = _dequantize(graph.tensor(op.inputs[0]))
            continue
        graph.ops.append(op)
    remove_unused(graph)
    _place_dequantize_ops(graph)
    return remove_unused(graph)


def _dequantize(q) -> np.ndarray:
    """float32 (q - zero_point) * scale, per tensor or along the quantization axis, as DequantizeLinear."""
    shape = [1] * q.data.ndim
    if q.quant.axis is not None:
        shape[q.quant.axis] = q.quant.scale.size
    zp = q.quant.zero_point.astype(np.float32).reshape(shape)
    scale = q.quant.scale.astype(np.float32).reshape(shape)
    return np.ascontiguousarray(((q.data.astype(np.float32) - zp) * scale).astype(np.float32))


def _place_dequantize_ops(graph: Graph) -> None:
    """Each Dequantize of an activation right before the first op reading it (in the order that op reads its
    inputs); one that only feeds graph outputs goes last, in the order of the outputs."""
    pending = {op.outputs[0]: op for op in graph.ops
               if op.type == "Dequantize" and not graph.tensor(op.inputs[0]).is_const}
    placed = []
    for op in graph.ops:
        if op.outputs[0] in pending:
            continue
        placed.extend(pending.pop(n) for n in dict.fromkeys(op.inputs) if n in pending)
        placed.append(op)
    placed.extend(pending.pop(n) for n in dict.fromkeys(graph.outputs) if n in pending)
    graph.ops = placed
