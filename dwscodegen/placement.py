"""Where each item of an arena plan goes: greedy first fit (lowest free offset, as TFLite Micro's greedy planner)
tried in a few orders, the smallest end kept; in-place pairs as forbidden intervals shifted by their lag; moved
outputs as an item of their own live only during their producer (planner.py decides what is placed, live when,
in place or moved; this module only where)."""
from __future__ import annotations

import bisect

from .ir import Graph

ALIGN = 16   # bytes; keeps every tensor ready for 128-bit SIMD loads


def with_moves(graph: Graph, live: dict[str, tuple[int, int]], pairs: dict[tuple[str, str], int],
                outputs: set[str]) -> tuple[int, dict[str, int], dict[str, int]]:
    """The plan where each of `outputs` is written at a place of its own (an item `<name>@made`, live only
    during its producer) and moved to its offset afterwards: (bytes, offsets, the moves that move)."""
    made = {y: f"{y}@made" for y in sorted(outputs)}
    split = dict(live)
    for y, item in made.items():
        split[item] = (live[y][0], live[y][0] + 1)
        split[y] = (live[y][0] + 1, live[y][1])
    items = {item: y for y, item in made.items()}
    offsets = _best(graph, split, {(x, made.get(y, y)): lag for (x, y), lag in pairs.items()}, items)
    relocated = {y: offsets.pop(item) for y, item in made.items()}
    size = max(end(graph, offsets, {}), end(graph, relocated, {}))
    return size, offsets, {y: o for y, o in relocated.items() if o != offsets[y]}


def _best(graph: Graph, live: dict[str, tuple[int, int]], pairs: dict[tuple[str, str], int],
          made: dict[str, str]) -> dict[str, int]:
    sizes = {n: _nbytes(graph, n, made) for n in live}   # looked up per pair of items by every placement
    orders = [sorted(live, key=lambda n: (-sizes[n], live[n][0], n))]
    if pairs:
        orders.append(sorted(live, key=lambda n: (-live[n][0], -sizes[n], n)))
        orders.append(sorted(live, key=lambda n: (live[n][0], -sizes[n], n)))
    together = _live_together(live, made)
    plans = [_first_fit(sizes, together, pairs, order) for order in orders]
    if pairs:
        plans += [_first_fit(sizes, together, pairs, order, two_sided=True) for order in orders]
    return min(plans, key=lambda p: (end(graph, p, made), plans.index(p)))


def _live_together(live: dict[str, tuple[int, int]], made: dict[str, str]) -> dict[str, set[str]]:
    """Per item, the items live at a step with it that may not share its bytes (all but its moved copy, made:
    item -> tensor); the same for every order a placement tries, so found once (a sweep by first step)."""
    copies = {frozenset((i, y)) for i, y in made.items()}
    together: dict[str, set[str]] = {n: set() for n in live}
    by_first = sorted(live, key=lambda n: live[n][0])
    for i, a in enumerate(by_first):
        for b in by_first[i + 1:]:
            if live[b][0] > live[a][1]:
                break
            if frozenset((a, b)) not in copies:
                together[a].add(b)
                together[b].add(a)
    return together


def _nbytes(graph: Graph, item: str, made: dict[str, str]) -> int:
    return graph.tensor(made.get(item, item)).nbytes


def _first_fit(sizes: dict[str, int], together: dict[str, set[str]], pairs: dict[tuple[str, str], int],
               order: list[str], two_sided: bool = False) -> dict[str, int]:
    """Each item (sizes: its bytes) at the lowest aligned offset clear of every item live with it (together;
    an output moved afterwards is free to overlap where it is written, planner._with_moves)."""
    offsets: dict[str, int] = {}
    low = high = 0   # the extent of what is placed
    for name in order:
        size = sizes[name]
        forbidden = []   # open intervals of offsets `name` may not take
        for other in together[name]:
            at = offsets.get(other)
            if at is None:
                continue
            end = at + sizes[other]
            if (other, name) in pairs:     # name is the output: at or below other - lag, or above it
                forbidden.append((at - pairs[(other, name)], end))
            elif (name, other) in pairs:   # name is the input: other must trail it by the lag
                forbidden.append((at - size, at + pairs[(name, other)]))
            else:
                forbidden.append((at - size, end))
        if two_sided:
            # anywhere, below 0 too, where the extent of what is placed grows least (then nearest 0)
            edges = {0, low, (high - size) // ALIGN * ALIGN, *(align(hi) for _, hi in forbidden),
                     *(lo // ALIGN * ALIGN for lo, _ in forbidden)}
            blocked = _union(forbidden)
            fits = [o for o in edges if not _inside(blocked, o)]
            at = min(fits, key=lambda o: (max(high, o + size) - min(low, o), abs(o), o))
        else:
            at, moved = 0, True
            while moved:
                moved = False
                for lo, hi in forbidden:
                    if lo < at < hi:
                        at, moved = align(hi), True
        low, high = (min(low, at), max(high, at + size)) if offsets else (at, at + size)
        offsets[name] = at
    if two_sided:
        return {n: o - low for n, o in offsets.items()}
    return offsets


def _union(intervals: list[tuple[int, int]]) -> tuple[list[int], list[int]]:
    """Open intervals merged where they overlap (touching ones stay apart: their common end is free), as the
    sorted starts and ends."""
    los: list[int] = []
    his: list[int] = []
    for lo, hi in sorted(intervals):
        if lo >= hi:
            continue
        if his and lo < his[-1]:
            his[-1] = max(his[-1], hi)
        else:
            los.append(lo)
            his.append(hi)
    return los, his


def _inside(blocked: tuple[list[int], list[int]], o: int) -> bool:
    los, his = blocked
    i = bisect.bisect_left(los, o) - 1   # the last interval starting below o
    return i >= 0 and o < his[i]


def end(graph: Graph, offsets: dict[str, int], made: dict[str, str]) -> int:
    return max((o + _nbytes(graph, n, made) for n, o in offsets.items()), default=0)


def align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN
