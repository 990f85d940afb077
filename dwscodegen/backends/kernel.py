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
    # > 1: `fn` computes one image of a batch of `images` (the op treats every image alike and on its
    # own); the library calls it once per image, each activation pointer advanced by its tensor's
    # size / images. 1: `fn` computes the whole tensors, whatever their batch.
    images: int = 1


def kernel_name(op: Op) -> str:
    """The C name of op's kernel, the same on every backend (the library calls it by this name)."""
    return f"layer{op.index}_{c_identifier(op.name)}"
