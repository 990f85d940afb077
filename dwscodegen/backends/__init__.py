"""Backends turn a validated Graph into C kernels; `library` wraps them into one C library.

Two roads with one contract (kernel.Kernel): `templates/` (Jinja C kernels, with per-target SIMD variants
in templates/simd/) and `tvm/` (TE computes and s_tir schedules lowered to plain C). The TVM road is
imported only when asked for, so the templates road never loads TVM.
"""
from __future__ import annotations

from ..errors import DwsError
from ..ir import Graph
from ..targets import Target
from .library import Library, assemble

BACKENDS = ("templates", "tvm")


def generate_library(graph: Graph, target: Target, backend: str = "templates",
                     schedules: dict[int, dict] | None = None, arena_budget: int | None = None) -> Library:
    """`schedules` maps op index -> schedule parameters (from tuning): for templates the kernel variant,
    for tvm the loop schedule knobs. arena_budget: take the fastest arena plan within it (ram_budget.py), not
    the lowest."""
    if backend == "templates":
        from .templates import generate_kernels
        from .templates.generate import row_kernels
        rendered: dict = {}   # the one-row kernels the chains the planner tries share
        return assemble(graph, generate_kernels(graph, target, schedules), backend, target,
                        row_kernels=lambda fusion: row_kernels(graph, target, fusion, schedules, rendered),
                        arena_budget=arena_budget)
    if backend == "tvm":
        from .tvm import generate_kernels
        from .tvm.backend import row_kernels as tvm_row_kernels
        # The same row fusions as templates: the tvm road renders each fused layer's one-row graphs through its
        # own kernels (TIR functions of those shapes). Its kernels declare no overlap, so there is no in place,
        # and no scratch (TVM keeps its temporaries local), so the planner need not build every chain it tries.
        return assemble(graph, generate_kernels(graph, target, schedules), backend, target,
                        row_kernels=lambda fusion: tvm_row_kernels(graph, target, fusion, schedules),
                        row_scratch=lambda fusion: 0, arena_budget=arena_budget)
    raise DwsError(f"unknown backend '{backend}'; available: {', '.join(BACKENDS)}")
