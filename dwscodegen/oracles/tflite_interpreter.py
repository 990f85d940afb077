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


def custom_ops(model_path: Path) -> list[str]:
    """The CUSTOM operator codes of a .tflite file: BUILTIN_REF has no kernel for any of them (MediaPipe's
    Convolution2DTransposeBias, for one, is implemented only by its XNNPACK and GPU delegates)."""
    import tflite
    try:
        model = tflite.Model.GetRootAsModel(Path(model_path).read_bytes(), 0)
        codes = [model.OperatorCodes(i) for i in range(model.OperatorCodesLength())]
    except Exception:   # unreadable: the importer has already said why
        return []
    custom = tflite.BuiltinOperator.CUSTOM
    return [(c.CustomCode() or b"").decode(errors="replace") for c in codes
            if max(c.BuiltinCode(), c.DeprecatedBuiltinCode()) == custom]


def run_tflite(model_path: Path, graph: Graph, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every tensor of `graph` that the interpreter kept, keyed by IR name (intermediates included)."""
    custom = custom_ops(model_path)
    if custom:
        raise DwsError(f"{model_path}: the TFLite interpreter has no kernel for the custom operator(s) "
                       f"{', '.join(custom)}; verify against the NumPy reference instead (--oracle numpy)")
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
