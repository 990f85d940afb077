"""What each kernel choice of a layer costs: instructions and flash, per candidate (the flash budget's input).

Instructions are measured where a tuning database has the layer (`tune` records every candidate's QEMU count
and, since flash became the tuner's second objective, its one-layer library's flash); otherwise estimated from
each variant's `estimate` in the variant registry (templates/kernels/variants.toml): instructions per MAC on the
DSP cores (QEMU counts of MobileNetV1 layers on Cortex-M4) and the code bytes of one kernel. Flash is the candidate's
constant tables (exact: computed as the kernel would store them) plus that code estimate. Estimates only rank
candidates; flash_budget.py measures the real library and corrects itself where they were off.
"""
from __future__ import annotations

from dataclasses import dataclass

from .ir import Graph, Op
from .ops import op_macs
from .targets import Target
from .tuning import layer_key

# (instructions per MAC, code bytes of one kernel): each variant's is its registry entry's `estimate`
# (templates/kernels/variants.toml); the portable kernel's is here. A variant without one (MVE, x86, M3 tiles)
# takes UNLISTED, the layer's default ranked first.
PORTABLE_ESTIMATE = (10.4, 430)
UNLISTED = (2.0, 2000)
DEFAULT = "default"     # the candidate of the layer's default schedule ({}: the preferred variant)


@dataclass(frozen=True)
class Candidate:
    kernel: str              # a variant name, "portable", or DEFAULT
    instructions: float
    flash: int               # bytes: constants + code (an estimate, or the tuner's one-layer library)
    measured: bool           # instructions (and flash) from the tuning database

    @property
    def schedule(self) -> dict:
        return {} if self.kernel == DEFAULT else {"kernel": self.kernel}


def is_default(graph: Graph, op: Op, target: Target, schedule: dict) -> bool:
    """Whether a templates schedule is the layer's default: {} or {"kernel": <the variant the default gets>}."""
    from .backends.templates import kernel_used
    return set(schedule) <= {"kernel"} and schedule.get("kernel") in (None, kernel_used(graph, op, target))


def estimate(kernel: str) -> tuple[float, int] | None:
    """(instructions per MAC, code bytes) of a variant name or "portable"; None where none is recorded."""
    from .backends.templates.simd import PORTABLE, registry
    if kernel == PORTABLE:
        return PORTABLE_ESTIMATE
    variant = registry.get(kernel)
    return None if variant is None else variant.estimate


def _estimate(graph: Graph, op: Op, kernel: str, default_name: str, constants: int) -> tuple[float, int]:
    """constants: the bytes of the candidate's constant tables (generate.kernel_options)."""
    known = estimate(default_name if kernel == DEFAULT else kernel)
    per_mac, code = known or UNLISTED
    if kernel == DEFAULT and known is None:
        per_mac = min(UNLISTED[0], 1.0)    # unlisted: the preferred one first
    return per_mac * max(op_macs(graph, op), 1), constants + code


def layer_candidates(graph: Graph, op: Op, target: Target, records: list[dict]) -> list[Candidate]:
    """Every kernel choice of `op` (the default first, then each variant that applies), with its instructions and
    flash. `records`: the tuning records that apply to this model, target and backend (tuning_select)."""
    from .backends.templates import kernel_options, kernel_used
    default_name = kernel_used(graph, op, target)
    constants = kernel_options(graph, op, target)       # each choice selected once, for its constants too
    constants[DEFAULT] = constants[default_name]
    names = [DEFAULT] + [k for k in constants if k not in (default_name, DEFAULT)]
    key = layer_key(graph, op)
    by_schedule = {}
    for r in records:
        if r["key"] == key and r.get("ok") and r.get("cost") is not None:
            by_schedule[r["schedule"].get("kernel", DEFAULT)] = r
    # The default schedule's record stands for its variant too (and the reverse), the same code either way.
    if default_name in by_schedule and DEFAULT not in by_schedule:
        by_schedule[DEFAULT] = by_schedule[default_name]
    # Measured flash only where every candidate of the layer has it: one estimator per layer, so that its
    # constant part cancels against the measured library (flash_budget.py).
    flash_measured = all("flash" in by_schedule.get(n, {}) for n in names)
    out = []
    for name in names:
        instructions, flash = _estimate(graph, op, name, default_name, constants[name])
        record = by_schedule.get(name)
        if record is not None:
            instructions = float(record["cost"])
        if flash_measured:
            flash = int(by_schedule[name]["flash"])
        out.append(Candidate(name, instructions, flash, record is not None))
    return out
