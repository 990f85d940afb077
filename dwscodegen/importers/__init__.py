"""Model files in, validated Graph out. One module per format; this picks by file extension."""
from __future__ import annotations

from pathlib import Path

from ..errors import DwsError
from ..ir import Graph
from ..passes.fuse_tables import fuse_tables
from ..validate import validate
from .json_graph import load_json_graph
from .onnx import load_onnx
from .tflite_model import load_tflite

LOADERS = {".json": load_json_graph, ".tflite": load_tflite, ".onnx": load_onnx}


def load_model(path) -> Graph:
    path = Path(path)
    if not path.exists():
        raise DwsError(f"{path}: no such file")
    loader = LOADERS.get(path.suffix.lower())
    if loader is None:
        raise DwsError(f"{path}: unsupported model format '{path.suffix}'; supported: {', '.join(LOADERS)}")
    # every format's int8 elementwise chains of one tensor run as one table (passes/fuse_tables.py)
    return validate(fuse_tables(validate(loader(path))))
