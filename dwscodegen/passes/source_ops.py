"""Ops an importer may put into a graph for a pass to rewrite. They are not IR ops (not in ir.OP_TYPES): the
passes fold or replace them, and whatever is left of them is an error naming its source node (see leftovers),
so validation and the backends never see one."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..ir import OP_TYPES, Graph, Op

STATIC = "Static"              # a source node computing constants (shape arithmetic, casts): fold_constants
CLAMP = "Clamp"                # a standalone clamp the IR has no op for: fuse_activations
HARD_SIGMOID = "HardSigmoid"   # max(0, min(1, alpha * x + beta)): hard_sigmoid
SOURCE_OP_TYPES = (STATIC, CLAMP, HARD_SIGMOID)


@dataclass
class StaticAttrs:
    """A node whose outputs the importer computed from constants (its consumers may need a value to know
    their own shapes, so it evaluates as it reads); `values` are those outputs, in order."""
    label: str                                   # the source op type, e.g. "Gather"
    values: tuple[np.ndarray, ...] = ()


@dataclass
class ClampAttrs:
    """Clamp to [low, high]; None: unbounded on that side (only a two-sided clamp has an IR activation)."""
    low: float | None = None
    high: float | None = None


@dataclass
class HardSigmoidAttrs:
    alpha: float = 0.2
    beta: float = 0.5


def leftovers(graph: Graph) -> list[Op]:
    """Ops that are not IR ops (source ops no pass removed, or IR op types this build does not have yet)."""
    return [op for op in graph.ops if op.type not in OP_TYPES]
