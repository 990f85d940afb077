"""Which values a strided slice takes, as a box: per input dimension a start, a step and a count, plus the
shape the source op gives the result (TFLite's shrink_axis_mask drops dimensions, new_axis_mask adds them).

TFLite's STRIDED_SLICE (strided_slice_logic.h) means what NumPy basic indexing means: a masked begin or end
is open, a negative index counts from the end, an out-of-range bound is clamped, a shrunk axis takes the one
value at `begin`. So the box is computed from the equivalent NumPy index, and constant folding applies that
same index to the data.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Box:
    starts: tuple[int, ...]     # per input dimension
    steps: tuple[int, ...]
    counts: tuple[int, ...]
    shape: tuple[int, ...]      # the result's shape (counts, without shrunk axes, with new axes)
    index: tuple                # the NumPy index that selects it


def _bit(mask: int, i: int) -> bool:
    return bool(mask >> i & 1)


def strided_slice_box(shape: tuple[int, ...], begin, end, strides, options: dict) -> Box:
    """The box of TFLite STRIDED_SLICE on a tensor of `shape`. Raises ValueError with the reason when the
    slice is not one (a zero step, a shrunk index out of range, several ellipses)."""
    begin, end, strides = ([int(v) for v in a] for a in (begin, end, strides))
    if not len(begin) == len(end) == len(strides):
        raise ValueError(f"begin {begin}, end {end} and strides {strides} differ in length")
    masks = {k: int(options.get(k, 0)) for k in ("begin_mask", "end_mask", "shrink_axis_mask", "ellipsis_mask",
                                                   "new_axis_mask")}
    if bin(masks["ellipsis_mask"]).count("1") > 1:
        raise ValueError("more than one ellipsis")
    index: list = []
    for i, (b, e, s) in enumerate(zip(begin, end, strides)):
        if _bit(masks["ellipsis_mask"], i):
            index.append(Ellipsis)
        elif _bit(masks["new_axis_mask"], i):
            index.append(None)
        elif _bit(masks["shrink_axis_mask"], i):
            index.append(b)
        else:
            if s == 0:
                raise ValueError(f"stride 0 in dimension {i}")
            stop = b + e if options.get("offset") else e
            index.append(slice(None if _bit(masks["begin_mask"], i) else b,
                               None if _bit(masks["end_mask"], i) else stop, s))
    return box_of_index(shape, tuple(index))


def box_of_index(shape: tuple[int, ...], index: tuple) -> Box:
    """The box a NumPy basic index (ints, slices, None, one Ellipsis) selects from a tensor of `shape`."""
    consumed = sum(1 for k in index if k is not None and k is not Ellipsis)
    if consumed > len(shape):
        raise ValueError(f"{consumed} indexed dimensions for a rank-{len(shape)} tensor")
    if Ellipsis in index:
        at = index.index(Ellipsis)
        index = index[:at] + (slice(None),) * (len(shape) - consumed) + index[at + 1:]
    else:
        index = index + (slice(None),) * (len(shape) - consumed)
    starts, steps, counts, out = [], [], [], []
    dim = 0
    for k in index:
        if k is None:
            out.append(1)
            continue
        n = shape[dim]
        if isinstance(k, slice):
            start, stop, step = k.indices(n)
            count = len(range(start, stop, step))
            if count == 0:
                raise ValueError(f"dimension {dim} selects no values")
            out.append(count)
        else:
            start, step, count = k + n if k < 0 else k, 1, 1
            if not 0 <= start < n:
                raise ValueError(f"index {k} is out of range for dimension {dim} of size {n}")
        starts.append(start)
        steps.append(step)
        counts.append(count)
        dim += 1
    return Box(tuple(starts), tuple(steps), tuple(counts), tuple(out), index)
