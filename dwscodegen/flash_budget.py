"""`--optimize speed|balanced|size` under a flash budget: which kernel each layer gets.

- speed: every layer's fastest choice (the tuning database's best, else the preferred variant); the library
  must fit as it is.
- balanced (the default): the fewest instructions whose library fits the budget. If the speed choice fits, it is
  the speed choice, and so it is when no mix fits at all; otherwise a multiple-choice knapsack over every layer's candidates (variant_costs.py:
  instructions measured or estimated, flash from the constants' bytes plus code) picks, per layer, the variant
  mix with the fewest instructions that fits; the real library is then built and measured, and where the
  estimate was off the budget is tightened by the difference and solved again. A fit is only ever reported from
  the measured library.
- size: per layer, the fewest instructions among the candidates within SIZE_SLACK of the layer's smallest flash
  (int8 weights, SIMD where its code costs little); every layer's smallest where only that meets the budget.

Only the templates backend has kernel choices (the tvm road's schedules do not change the constants).
speed also takes the fastest arena plan the RAM budget allows (ram_budget.py); balanced and size the lowest.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .backends import Library, generate_library
from .footprint import Footprint, measure
from .ir import Graph, Op
from .ram_budget import fastest_plan
from .targets import Target
from .variant_costs import DEFAULT, Candidate, is_default, layer_candidates

OPTIMIZE = ("speed", "balanced", "size")
UNIT = 16           # bytes: the knapsack's flash resolution (candidates round up, so a solution never under-counts)
ROUNDS = 4          # build-measure-correct rounds before giving up on a mix the estimates said would fit
# --optimize size: per layer, the fastest candidate whose flash is within this fraction or this many bytes of the
# layer's smallest (the smallest is mostly the portable kernel, whose code is shortest, at 3-8x the instructions)
SIZE_SLACK = (0.10, 2048)


@dataclass
class Mix:
    """The chosen kernels and their library, measured."""
    optimize: str
    budget: int | None
    schedules: dict[int, dict]
    lib: Library
    footprint: Footprint
    chosen: dict[int, Candidate] = field(default_factory=dict)    # op index -> candidate (templates, solved)
    speed: dict[int, dict] = field(default_factory=dict)          # the speed choice it started from
    records: list[dict] | None = None                             # the tuning records it was costed with
    notes: list[str] = field(default_factory=list)
    plan_budget: int | None = None   # the arena budget its plan was traded under (ram_budget.py); None: the lowest

    @property
    def fits(self) -> bool:
        return self.budget is None or self.footprint.flash <= self.budget

    def instructions(self) -> float | None:
        return sum(c.instructions for c in self.chosen.values()) if self.chosen else None


def solve(layers: list[list[Candidate]], budget: int) -> list[int] | None:
    """Index of each layer's candidate with the fewest instructions in total whose flash sums to at most
    `budget` bytes; None if not even the smallest candidates fit. Of equal instruction counts, the least flash."""
    base = [min(c.flash for c in cands) for cands in layers]
    room = (budget - sum(base)) // UNIT
    if room < 0:
        return None
    inf = float("inf")
    best = np.full(room + 1, inf)
    best[0] = 0.0
    picks = []
    for cands, low in zip(layers, base):
        new = np.full(room + 1, inf)
        pick = np.zeros(room + 1, np.int16)
        for i, c in enumerate(cands):
            extra = -(-(c.flash - low) // UNIT)
            if extra > room:
                continue
            shifted = np.full(room + 1, inf)
            shifted[extra:] = best[:room + 1 - extra] + c.instructions
            better = shifted < new
            new[better], pick[better] = shifted[better], i
        best = new
        picks.append(pick)
    end = int(np.argmin(best))
    if not np.isfinite(best[end]):
        return None
    chosen = []
    for cands, low, pick in zip(reversed(layers), reversed(base), reversed(picks)):
        i = int(pick[end])
        chosen.append(i)
        end -= -(-(cands[i].flash - low) // UNIT)
    return chosen[::-1]


def _smallest(cands: list[Candidate]) -> int:
    return min(range(len(cands)), key=lambda i: (cands[i].flash, cands[i].instructions, i))


def _nearly_smallest(cands: list[Candidate]) -> int:
    """The fastest candidate within SIZE_SLACK of the layer's smallest flash."""
    low = min(c.flash for c in cands)
    limit = max(low * (1 + SIZE_SLACK[0]), low + SIZE_SLACK[1])
    return min((i for i, c in enumerate(cands) if c.flash <= limit), key=lambda i: (cands[i].instructions, i))


def _fastest(cands: list[Candidate]) -> int:
    return min(range(len(cands)), key=lambda i: (cands[i].instructions, i))


def _build(graph: Graph, target: Target, backend: str, schedules: dict[int, dict]) -> tuple[Library, Footprint]:
    lib = generate_library(graph, target, backend, schedules or None)
    return lib, measure(lib, target)


def has_choice(target: Target, optimize: str, budget: int | None) -> bool:
    """Whether `optimize` may pick other kernels than the speed choice: not for speed, nor without a budget."""
    return optimize == "size" or (optimize == "balanced" and (budget or target.flash_bytes) is not None)


def choose(graph: Graph, target: Target, backend: str, optimize: str = "balanced", budget: int | None = None,
           tuned: dict[int, dict] | None = None, records: list[dict] | None = None, built: Mix | None = None,
           ram: int | None = None) -> Mix:
    """The kernels of every layer for `optimize` under `budget` bytes of flash (default: the target's part).
    tuned: the tuning database's best schedules (the speed choice); records: its records for this model. A tuned
    schedule naming the layer's default variant is the default schedule {} (one representation: Candidate.schedule).
    built: a Mix already built (e.g. the speed choice a fit error started from): a mix with its schedules reuses its
    library and footprint instead of building them again. ram: the RAM budget of speed's plan (default: the
    target's part)."""
    budget = budget if budget is not None else target.flash_bytes
    speed = {i: s for i, s in (tuned or {}).items() if not (backend == "templates" and is_default(graph, graph.ops[i], target, s))}
    mix = _choose(graph, target, backend, optimize, budget, speed, records, built)
    mix.records = records
    if optimize == "speed":
        mix.lib, mix.footprint, mix.plan_budget, note = fastest_plan(graph, target, backend, mix.schedules, mix.lib,
                                                                     mix.footprint, ram, budget)
        mix.notes += [note] if note else []
    return mix


def _choose(graph, target, backend, optimize, budget, speed, records, built) -> Mix:
    if not has_choice(target, optimize, budget):
        lib, fp = _built(graph, target, backend, speed, built)
        return Mix(optimize, budget, speed, lib, fp, speed=speed)
    ops: list[Op] = []
    layers: list[list[Candidate]] = []
    if backend == "templates":
        for op in graph.ops:
            cands = layer_candidates(graph, op, target, records or [])
            if len(cands) > 1:
                ops.append(op)
                layers.append(cands)
    start = [next((i for i, c in enumerate(cands) if c.schedule == speed.get(op.index, {})), _fastest(cands))
             for op, cands in zip(ops, layers)]
    if optimize == "size":
        mix = _mix(graph, target, backend, optimize, budget, speed, ops, layers, [_nearly_smallest(c) for c in layers],
                   built)
        if mix.fits:
            return mix
        smallest = _mix(graph, target, backend, optimize, budget, speed, ops, layers, [_smallest(c) for c in layers],
                        mix)     # often the same kernels: then the same library, not built twice
        if smallest.fits:
            smallest.notes.append("the budget leaves no slack: every layer on its smallest kernel")
            return smallest
        return mix
    first = _mix(graph, target, backend, optimize, budget, speed, ops, layers, start, built)
    if first.fits or not layers:
        return first
    mix, estimate = first, _flash(layers, start)
    for _ in range(ROUNDS):
        rest = mix.footprint.flash - estimate       # what the estimates leave out (other ops, run function)
        picks = solve(layers, budget - rest)
        if picks is None:
            # nothing fits: shrinking kernels would only make the library slower and still not fit, so the
            # speed choice stays (the fit error names what would help)
            smallest = rest + _flash(layers, [_smallest(cands) for cands in layers])
            first.notes.append(f"no mix of kernels fits the {budget:,} B budget (the smallest needs about "
                               f"{smallest:,} B); the fastest kernels are kept")
            return first
        mix = _mix(graph, target, backend, optimize, budget, speed, ops, layers, picks)
        if mix.fits:
            return mix
        estimate = _flash(layers, picks)
    mix.notes.append(f"the estimates missed the budget {ROUNDS} times; this is the last mix tried")
    return mix


def _flash(layers: list[list[Candidate]], picks: list[int]) -> int:
    return sum(cands[i].flash for cands, i in zip(layers, picks))


def _built(graph, target, backend, schedules, built: Mix | None) -> tuple[Library, Footprint]:
    """The library of `schedules` and its footprint: `built`'s where it has the same schedules, else built now."""
    if built is not None and built.schedules == schedules and built.plan_budget is None:
        return built.lib, built.footprint
    return _build(graph, target, backend, schedules)


def _mix(graph, target, backend, optimize, budget, speed, ops, layers, picks, built: Mix | None = None) -> Mix:
    schedules = dict(speed)
    chosen = {}
    for op, cands, i in zip(ops, layers, picks):
        chosen[op.index] = cands[i]
        if cands[i].kernel == DEFAULT:
            schedules.pop(op.index, None)
        else:
            schedules[op.index] = cands[i].schedule
    lib, fp = _built(graph, target, backend, schedules, built)
    return Mix(optimize, budget, schedules, lib, fp, chosen, speed=speed)


def smaller_layers(graph: Graph, target: Target, mix: Mix) -> list[tuple[Op, str, str]]:
    """(op, the speed choice, what it got instead) for every layer the budget moved off its fastest kernel."""
    from .backends.templates import kernel_used
    moved = []
    for op in graph.ops:
        if op.index not in mix.chosen:
            continue
        fastest = kernel_used(graph, op, target, mix.speed.get(op.index, {}).get("kernel"))
        got = kernel_used(graph, op, target, mix.schedules.get(op.index, {}).get("kernel"))
        if got != fastest:
            moved.append((op, fastest, got))
    return moved
