"""Backends turn a validated Graph into C kernels; `library` wraps them into one C library.

The TVM backend is imported only when asked for, so the templates road never loads TVM.
"""
from __future__ import annotations

from ..errors import DwsError
from ..ir import Graph
from ..targets import Target
from .library import Library, assemble

BACKENDS = ("templates", "tvm")


def generate_library(graph: Graph, target: Target, backend: str = "templates") -> Library:
    if backend == "templates":
        from .templates import generate_kernels
    elif backend == "tvm":
        from .tvm_backend import generate_kernels
    else:
        raise DwsError(f"unknown backend '{backend}'; available: {', '.join(BACKENDS)}")
    return assemble(graph, generate_kernels(graph, target), backend)
