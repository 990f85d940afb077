"""What a backend hands to the library assembler: one C kernel per op, under one name per op."""
from __future__ import annotations

from dataclasses import dataclass

from ..ir import Op
from .render import c_identifier


@dataclass(frozen=True)
class Kernel:
    """A static C function `fn(const T *in..., T *out)` plus the constants it reads, as source text."""
    op_index: int
    fn: str
    source: str
    const_bytes: int   # flash the kernel's constant arrays take


def kernel_name(op: Op) -> str:
    """The C name of op's kernel, the same on every backend (the library calls it by this name)."""
    return f"layer{op.index}_{c_identifier(op.name)}"
