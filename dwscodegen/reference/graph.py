"""Run a whole graph with the NumPy reference kernels."""
from __future__ import annotations

import numpy as np

from ..ir import DTYPES, Graph
from .ops import KERNELS


def run_graph(graph: Graph, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Values of every activation tensor (graph inputs and every op output), by name.

    Float outputs are returned as float32, as the generated C produces them; the comparison tolerance
    accounts for that rounding.
    """
    values = {name: np.asarray(inputs[name]) for name in graph.inputs}
    for op in graph.ops:
        args = [values[name] for name in op.inputs if not graph.tensor(name).is_const]
        out = KERNELS[op.type](graph, op, *args)
        y = graph.tensor(op.outputs[0])
        values[y.name] = np.asarray(out).reshape(y.shape).astype(DTYPES[y.dtype])
    return values
