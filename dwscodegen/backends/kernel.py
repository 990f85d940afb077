"""What a backend hands to the library assembler: one C kernel per op, under one name per op."""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

from ..ir import Graph, Op
from .render import c_identifier


@dataclass(frozen=True)
class Kernel:
    """A static C function `fn(const T *in..., T *out[, void *scratch])` plus the constants it reads, as source text."""
    op_index: int
    fn: str
    source: str
    const_bytes: int   # flash the kernel's constant arrays take
    # > 1: `fn` computes one image of a batch of `images` (the op treats every image alike and on its
    # own); the library calls it once per image, each activation pointer advanced by its tensor's
    # size / images. 1: `fn` computes the whole tensors, whatever their batch.
    images: int = 1
    # (activation input, lag): `fn` may run with its output placed `lag` bytes below that input, overlapping it
    # (it writes in a declared order and never reads input bytes it has overwritten; overlap.py). Inputs not
    # listed must not overlap the output.
    overlap: tuple[tuple[str, int], ...] = ()
    # bytes of scratch `fn` works in (im2col patches, padded tiles, widened rows), 0 for none: it then takes it as
    # a last parameter `void *restrict scratch`, at least `scratch_align` aligned, and the planner places it in
    # the arena, live only during the call (planner.scratch_item). The rule of what is scratch: a buffer whose
    # size grows with the layer (render.scratch_view declares it in the template); a fixed array of at most one
    # vector register (<= 64 bytes: a lane shuffle, a partial load) stays a local array, as registers would.
    # The tvm road declares none: its TIR temporaries are local arrays its lowering bounds (tvm/lower.py).
    scratch: int = 0
    scratch_align: int = 1


def entry_signature(fn: str) -> re.Pattern:
    """The kernel `fn`'s entry point in its source: groups (`static void fn(`, its parameters)."""
    return re.compile(rf"^(static (?:inline )?void {re.escape(fn)}\()([^)]*)\)", re.M)


def with_scratch(kernel: Kernel, scratch: int, align: int) -> Kernel:
    """The kernel taking `scratch` bytes of scratch (its views declared by render.scratch_view) as its last
    parameter; unchanged without scratch."""
    if not scratch:
        return kernel
    source = entry_signature(kernel.fn).sub(lambda m: f"{m[1]}{m[2]}, void *restrict scratch)", kernel.source, count=1)
    if source == kernel.source:
        raise AssertionError(f"{kernel.fn}: no entry point to add the scratch parameter to")
    return dataclasses.replace(kernel, source=source, scratch=scratch, scratch_align=align)


def kernel_name(op: Op) -> str:
    """The C name of op's kernel, the same on every backend (the library calls it by this name)."""
    return f"layer{op.index}_{c_identifier(op.name)}"


def operand_names(graph: Graph, op: Op) -> list[str]:
    """C names of a two-operand elementwise op's operands, the same on every backend: `a, b` for two
    activations (PRelu: `input, alpha`), `input` for an activation beside a constant, and the constant's
    array `<fn>_constant` (PRelu: `<fn>_alpha`)."""
    const = [graph.tensor(n).is_const for n in op.inputs]
    names = ["input", "alpha"] if op.type == "PRelu" else ["a", "b"] if not any(const) else ["input", "input"]
    return [f"{kernel_name(op)}_{'alpha' if op.type == 'PRelu' else 'constant'}" if c else n
            for n, c in zip(names, const)]
