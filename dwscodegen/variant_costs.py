"""What each kernel choice of a layer costs: instructions and flash, per candidate (the flash budget's input).

Instructions are measured where a tuning database has the layer (`tune` records every candidate's QEMU count
and, since flash became the tuner's second objective, its one-layer library's flash); otherwise estimated from
ESTIMATES below: instructions per MAC of each variant on the DSP cores (QEMU counts of MobileNetV1 layers on
Cortex-M4) and the code bytes of one kernel. Flash is the candidate's
constant tables (exact: computed as the kernel would store them) plus that code estimate. Estimates only rank
candidates; flash_budget.py measures the real library and corrects itself where they were off.
"""
from __future__ import annotations

from dataclasses import dataclass

from .ir import Graph, Op
from .ops import op_macs
from .targets import Target
from .tuning import layer_key

# variant -> (instructions per MAC, code bytes of one kernel): medians over the conv layers of MobileNetV1-0.25
# 96x96 int8 measured by `tune` on cortex-m4 (used for M7 and M33 as well; code: a one-layer library's flash
# less its constants). A variant not listed (MVE, x86, M3 tiles) takes UNLISTED, the layer's default ranked first.
ESTIMATES = {
    "portable": (10.4, 430),
    "pointwise_conv2d_s8_dsp_4x2": (1.20, 1570),
    "pointwise_conv2d_s8_dsp_1x2": (1.60, 440),
    "pointwise_conv2d_s8_dsp_w8_4x2": (1.55, 1900),
    "pointwise_conv2d_s8_dsp_w8_1x2": (1.93, 520),
    "conv2d_s8_dsp_im2col_2x2": (2.27, 1070),
    "conv2d_s8_dsp_im2col_1x2": (2.44, 790),
    "conv2d_s8_dsp_im2col_w8_2x2": (2.49, 1150),
    "conv2d_s8_dsp_im2col_w8_1x2": (2.91, 890),
    "depthwise_conv2d_s8_dsp_4c": (3.46, 3610),
    "depthwise_conv2d_s8_dsp_padded_4c": (3.78, 760),
    "depthwise_conv2d_s8_dsp_pairs_1c": (3.65, 480),
    "depthwise_conv2d_s8_dsp_w8_4c": (4.46, 4260),
}
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


def _estimate(graph: Graph, op: Op, target: Target, kernel: str, default_name: str) -> tuple[float, int]:
    from .backends.templates import kernel_constants
    per_mac, code = ESTIMATES.get(default_name if kernel == DEFAULT else kernel, UNLISTED)
    if kernel == DEFAULT and default_name not in ESTIMATES:
        per_mac = min(ESTIMATES.get(default_name, UNLISTED)[0], 1.0)    # unlisted: the preferred one first
    constants = kernel_constants(graph, op, target, None if kernel == DEFAULT else kernel)
    return per_mac * max(op_macs(graph, op), 1), constants + code


def layer_candidates(graph: Graph, op: Op, target: Target, records: list[dict]) -> list[Candidate]:
    """Every kernel choice of `op` (the default first, then each variant that applies), with its instructions and
    flash. `records`: the tuning records that apply to this model, target and backend (tuning_select)."""
    from .backends.templates import kernel_choices, kernel_used
    default_name = kernel_used(graph, op, target)
    names = [DEFAULT] + [k for k in kernel_choices(graph, op, target) if k != default_name]
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
        instructions, flash = _estimate(graph, op, target, name, default_name)
        record = by_schedule.get(name)
        if record is not None:
            instructions = float(record["cost"])
        if flash_measured:
            flash = int(by_schedule[name]["flash"])
        out.append(Candidate(name, instructions, flash, record is not None))
    return out
