"""Static activation arena: liveness-based placement so tensors with disjoint lifetimes share memory.

Graph inputs and outputs live in the caller's buffers, constants in flash; only intermediate tensors
are placed. Greedy by size (largest first, lowest free offset), as TFLite Micro's greedy planner does.
"""
from __future__ import annotations

from dataclasses import dataclass

from .ir import Graph

ALIGN = 16   # bytes; keeps every tensor ready for 128-bit SIMD loads


@dataclass(frozen=True)
class ArenaPlan:
    offsets: dict[str, int]   # tensor name -> byte offset in the arena
    size: int                 # bytes

    def offset(self, name: str) -> int | None:
        return self.offsets.get(name)


def lifetimes(graph: Graph) -> dict[str, tuple[int, int]]:
    """First and last op index at which each intermediate tensor must hold its value."""
    span: dict[str, list[int]] = {}
    for op in graph.ops:
        for name in op.inputs:
            if name in span:
                span[name][1] = op.index
        out = op.outputs[0]
        if out not in graph.outputs:
            span[out] = [op.index, op.index]
    return {name: (a, b) for name, (a, b) in span.items()}


def plan_arena(graph: Graph) -> ArenaPlan:
    live = lifetimes(graph)
    order = sorted(live, key=lambda n: (-graph.tensor(n).nbytes, live[n][0], n))
    placed: list[tuple[int, int, int, int]] = []   # (offset, end, first, last)
    offsets: dict[str, int] = {}
    for name in order:
        first, last = live[name]
        size = graph.tensor(name).nbytes
        clashes = sorted((o, e) for o, e, f, l in placed if f <= last and first <= l)
        offset = 0
        for o, e in clashes:
            if offset + size <= o:
                break
            offset = max(offset, _align(e))
        offsets[name] = offset
        placed.append((offset, offset + size, first, last))
    size = max((e for _, e, _, _ in placed), default=0)
    return ArenaPlan(offsets=dict(sorted(offsets.items())), size=_align(size))


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN
