"""float16 weights: a Dequantize of a float16 constant becomes the float32 constant it computes.

TFLite's float16-quantized models (MediaPipe's BlazeFace, `TFLiteConverter` with
`target_spec.supported_types = [tf.float16]`) store weights as float16 and dequantize them on the first run;
float16 -> float32 is exact, so the folded constant is what the interpreter computes with.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..ir import Graph
from .shape_source_ops import fail, rebuild


def fold_float16(graph: Graph) -> Graph:
    tensors = dict(graph.tensors)
    ops = []
    for op in graph.ops:
        x = graph.tensor(op.inputs[0]) if op.inputs else None
        if op.type != "Dequantize" or x is None or x.dtype != "float16":
            ops.append(op)
            continue
        y = graph.tensor(op.outputs[0])
        if not x.is_const:
            raise fail(graph, op, f"input '{x.name}' is a float16 activation; only float16 constants (weights) "
                                  "are supported, folded to float32 at import")
        if y.dtype != "float32" or y.shape != x.shape or op.outputs[0] in graph.outputs:
            raise fail(graph, op, f"float16 '{x.name}' {list(x.shape)} must dequantize to a float32 tensor of the "
                                  f"same shape that an op uses, got {y.dtype} {list(y.shape)}")
        tensors[y.name] = replace(y, data=x.data.astype(np.float32))
    return rebuild(graph, ops, tensors)
