"""Static nodes: ONNX nodes whose outputs are known at import, because all their inputs are constants or
because they only read a shape (Shape, Size). Exporters write them for shape arithmetic (torch's legacy
exporter turns `x.view(x.size(0), -1)` into Shape -> Gather -> Unsqueeze -> Concat -> Reshape) and for
casts of constants. Each is evaluated once, when the translator reaches it, with onnx's reference
implementation (onnx.reference, the ONNX semantics of every standard op), recorded as a Static op, and
folded by passes.fold_constants.

DequantizeLinear of a constant is not static here: its integer data is what QDQ folding needs.
"""
from __future__ import annotations

import numpy as np

from ...passes.source_ops import STATIC, StaticAttrs

NONDETERMINISTIC = ("RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Multinomial",
                    "Bernoulli")
SHAPE_READERS = ("Shape", "Size")
NOT_STATIC = ("DequantizeLinear", "Identity", "Dropout") + NONDETERMINISTIC


def is_static(node, known) -> bool:
    """`known`: names with static values (or, for the scan before translation, names that will have them)."""
    if node.domain not in ("", "ai.onnx") or node.op_type in NOT_STATIC:
        return False
    if node.op_type in SHAPE_READERS:
        return True
    return all(not name or name in known for name in node.input)


def translate_static(t, node) -> None:
    """Evaluate `node` and record it as a Static op whose outputs are its values."""
    values = _evaluate(t, node)
    for name in node.output:
        if name in t.graph_outputs:
            raise t.fail("produces a graph output that is a constant; a constant cannot be an output")
    inputs = [_static_input(t, n) for n in node.input if n]
    outputs = [t.new_tensor(name, np.shape(v), np.asarray(v).dtype.name) for name, v in zip(node.output, values)]
    for name, value in zip(node.output, values):
        t.values[name] = np.asarray(value)
    t.add_op(node, STATIC, inputs, outputs, StaticAttrs(label=node.op_type, values=tuple(map(np.asarray, values))))


def _static_input(t, name: str) -> str:
    """The IR tensor a Static op reads: the activation (Shape, Size) or the constant, in ONNX layout."""
    if name in t.ir:
        return t.ir[name]
    if name in t.ir_constants:
        return t.ir_constants[name]
    value = t.values[name]
    ir_name = t.new_tensor(name, value.shape, value.dtype.name, data=value)
    t.ir_constants[name] = ir_name
    return ir_name


def _evaluate(t, node) -> list[np.ndarray]:
    if node.op_type in SHAPE_READERS:
        shape = t.shape_of(node.input[0]) if node.input[0] not in t.values else t.values[node.input[0]].shape
        if node.op_type == "Size":
            return [np.array(int(np.prod(shape, dtype=np.int64)), np.int64)]
        a = t.attrs(node)
        start, end = a.get("start", 0), a.get("end", None)
        return [np.array(shape[start:end], np.int64)]
    from onnx.reference import (
        ReferenceEvaluator,  # imported lazily: only models with static nodes need it
    )
    feeds = {name: t.values[name] for name in node.input if name}
    try:
        return list(ReferenceEvaluator(node, opsets={"": t.opset}).run(None, feeds))
    except Exception as exc:   # the reference implementation rejects the node (bad attribute, shape, ...)
        raise t.fail(f"cannot evaluate this node of constants ({type(exc).__name__}: {exc})") from None
