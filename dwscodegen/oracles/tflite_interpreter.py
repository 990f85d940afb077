"""TFLite's interpreter with its reference kernels (BUILTIN_REF), run on the original .tflite file.

The default op resolver applies the XNNPACK delegate, which is not the reference; this never uses it.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DwsError
from ..ir import Graph


def available() -> bool:
    try:
        import ai_edge_litert.interpreter  # noqa: F401
    except ImportError:
        return False
    return True


def run_tflite(model_path: Path, graph: Graph, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every tensor of `graph` that the interpreter kept, keyed by IR name (intermediates included)."""
    try:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType
    except ImportError:
        raise DwsError("the TFLite oracle needs ai-edge-litert: pip install ai-edge-litert") from None
    interpreter = Interpreter(model_path=str(model_path), experimental_preserve_all_tensors=True,
                              experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    interpreter.allocate_tensors()
    index = {d["name"]: d["index"] for d in interpreter.get_tensor_details()}
    for name in graph.inputs:
        interpreter.set_tensor(index[graph.origin[name]], inputs[name].reshape(graph.tensor(name).shape))
    interpreter.invoke()
    values = {}
    for t in graph.activation_tensors():
        source = graph.origin.get(t.name)
        if source in index:
            values[t.name] = np.array(interpreter.get_tensor(index[source])).reshape(t.shape)
    return values
