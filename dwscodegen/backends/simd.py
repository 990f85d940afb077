"""Per-target SIMD kernel variants for the templates backend, chosen from the target's features.

`select` returns (template, context) for an op that has a faster variant on `target`, or None to keep
the portable kernel. Variants must compute exactly what the portable kernel computes.
"""
from __future__ import annotations

from ..ir import Graph, Op
from ..targets import Target


def select(graph: Graph, op: Op, target: Target, ctx: dict) -> tuple[str, dict] | None:
    del graph, op, target, ctx
    return None
