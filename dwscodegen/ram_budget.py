"""`--optimize speed` under a RAM budget: the fastest arena plan whose library fits, instead of the lowest.

The default plan (planner.plan_arena) is the lowest arena whose only extra instructions are row copies; its row
fusions cost 0.3-3 % more instructions on the models they fuse. `balanced` and `size` keep it: a part's RAM is
shared with the application around the model, and a few percent of instructions are not worth tens of KiB of
it. `speed` spends the RAM budget (--ram, default: the target's part) on instructions instead: the planner drops
or shortens chains while the arena stays within what the budget leaves (planner.fastest_within), and where the
budget holds it keeps every output apart from its inputs (no layer in place: every kernel keeps `restrict`,
which in place costs the MVE and DSP conv kernels 4-6 % on KWS).

The budget is of the whole RAM (static data + arena + stack bound, footprint.py). The arena's share is first the
budget less the library's other static data; where the chosen plan's library measures over the budget (its
stack bound), the share shrinks by the difference and the plan is chosen again, up to ROUNDS times. A plan is only ever taken from a measured library that fits, RAM and flash;
otherwise the lowest plan stays.
"""
from __future__ import annotations

from .backends import Library, generate_library
from .footprint import Footprint, measure
from .planner import plan_cost
from .targets import Target

ROUNDS = 4


def fastest_plan(graph, target: Target, backend: str, schedules: dict[int, dict], lib: Library, fp: Footprint,
                 ram: int | None, flash: int | None) -> tuple[Library, Footprint, int | None, str | None]:
    """The library of the fastest plan within `ram` bytes (default: the target's part) beside `lib`, the lowest
    plan's, and its footprint: (library, footprint, the arena budget it was planned under or None when it is
    `lib`, a note for the report)."""
    budget = ram if ram is not None else target.ram_bytes
    plan = lib.plan
    if budget is None or fp.ram > budget or not (plan.fusions or plan.overlaps or plan.moves):
        return lib, fp, None, None
    # optimistic first (no stack: a plan's stack bound is only known from its compiled library), then the
    # arena's share shrinks by what each measured library is over
    arena = budget - (fp.data + fp.bss - lib.arena_bytes)
    for _ in range(ROUNDS):
        trial = generate_library(graph, target, backend, schedules or None, arena_budget=arena)
        if trial.plan == lib.plan:
            return lib, fp, None, None
        measured = measure(trial, target)
        # flash as speed has it: the library must fit as it is (a lowest plan over the flash budget fails anyway)
        if measured.ram <= budget and (flash is None or measured.flash <= flash or fp.flash > flash):
            saved = plan_cost(graph, lib.plan) - plan_cost(graph, trial.plan)
            changes = []
            if trial.plan.fusions != plan.fusions:
                changes.append(f"{len(trial.plan.fusions)} row-fused chain(s) instead of {len(plan.fusions)}")
            if plan.overlaps and not trial.plan.overlaps:
                changes.append("every output apart from its inputs (no layer in place)")
            note = (f"--optimize speed: RAM budget {budget:,} B, so the arena is {trial.arena_bytes:,} B instead of "
                    f"the lowest {lib.arena_bytes:,} B, with {' and '.join(changes) or 'another placement'} (about "
                    f"{max(saved, 0):,} fewer instructions estimated; --optimize balanced takes the lowest)")
            return trial, measured, arena, note
        arena = trial.arena_bytes - (measured.ram - budget)   # under this plan's arena, or it comes back
    return lib, fp, None, None
