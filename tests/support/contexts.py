"""The context the templates road really hands a kernel template, for kernel-level C tests: a single-op
.tflite model is built, imported and validated like any user's model, and its op's context is built by
dwscodegen.backends.templates.contexts, so the tests never restate what a backend computes."""
from __future__ import annotations

import tempfile
from pathlib import Path

from dwscodegen.backends.templates.contexts import KERNELS
from dwscodegen.importers import load_model

from .tflite_builder import build_single_op_model


def template_context(op: str, inputs: list, outputs: list, options: dict | None = None) -> dict:
    """Context of the one op of a single-op TFLite model (TensorSpecs as for build_single_op_model)."""
    with tempfile.TemporaryDirectory(prefix="dwscodegen-ctx-") as tmp:
        path = Path(tmp) / f"{op.lower()}.tflite"
        path.write_bytes(build_single_op_model(op, inputs, outputs, options or {}))
        graph = load_model(path)
    (ir_op,) = graph.ops
    return KERNELS[ir_op.type][1](graph, ir_op)
