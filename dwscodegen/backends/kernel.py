"""What a backend hands to the library assembler: one C kernel per op."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Kernel:
    """A static C function `fn(const T *in..., T *out)` plus the constants it reads, as source text."""
    op_index: int
    fn: str
    source: str
    const_bytes: int   # flash the kernel's constant arrays take
