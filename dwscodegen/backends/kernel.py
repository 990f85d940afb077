"""What a backend hands to the library assembler: one C kernel per op, under one name per op."""
from __future__ import annotations

from dataclasses import dataclass

from ..ir import Graph, Op
from .render import c_identifier


@dataclass(frozen=True)
class Kernel:
    """A static C function `fn(const T *in..., T *out)` plus the constants it reads, as source text."""
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
