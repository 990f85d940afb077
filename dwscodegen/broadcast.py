"""NumPy-style broadcasting of elementwise operands, as TFLite's CalculateShapeForBroadcast does it (shapes
aligned at the right; each dimension equal, or 1 on one side), and the loop nest a kernel runs over it.

The loop nest merges neighbouring dimensions in which every operand either spans the dimension or is
broadcast along it (TFLite's ReduceDimensionsForBroadcast does the same), and drops dimensions of size 1:
equal shapes become one flat loop, a squeeze-excite [1,1,1,C] x [1,H,W,C] two (pixels, then channels), a
scalar times a tensor one loop with stride 0 for the scalar. Validation, the NumPy reference and both
backends read broadcasting from here.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence


def broadcast_shape(*shapes: Sequence[int]) -> tuple[int, ...] | None:
    """The broadcast result of `shapes`, or None if they do not broadcast."""
    rank = max(len(s) for s in shapes)
    padded = [(1,) * (rank - len(s)) + tuple(s) for s in shapes]
    out = []
    for dims in zip(*padded):
        sizes = {d for d in dims if d != 1}
        if len(sizes) > 1:
            return None
        out.append(sizes.pop() if sizes else 1)
    return tuple(out)


@dataclass(frozen=True)
class Loop:
    extent: int
    strides: tuple[int, ...]   # per operand, in elements; 0: the operand is broadcast along this loop
    out_stride: int


def loop_nest(shapes: Sequence[Sequence[int]], out_shape: Sequence[int]) -> list[Loop]:
    """Loops over the (contiguous) output, outermost first, with each operand's element stride."""
    rank = len(out_shape)
    padded = [(1,) * (rank - len(s)) + tuple(s) for s in shapes]
    groups: list[list] = []            # [extent, which operands span it]
    for d, extent in enumerate(out_shape):
        if extent == 1:
            continue
        spans = tuple(s[d] != 1 for s in padded)
        if groups and groups[-1][1] == spans:
            groups[-1][0] *= extent
        else:
            groups.append([extent, spans])
    if not groups:
        groups = [[1, tuple(True for _ in shapes)]]
    loops = []
    strides, out_stride = [1] * len(shapes), 1
    for extent, spans in reversed(groups):
        loops.append(Loop(extent, tuple(s if span else 0 for s, span in zip(strides, spans)), out_stride))
        strides = [s * extent if span else s for s, span in zip(strides, spans)]
        out_stride *= extent
    return loops[::-1]
