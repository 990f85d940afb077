"""What the generated C and the file system can hold, refused at validation rather than as overflowing C or an
OSError: name lengths, tensor sizes the 32-bit index type addresses, activation bounds that quantize into int32."""
from __future__ import annotations

import math

import numpy as np

from .ir import Graph, Op

MAX_NAME = 64               # the graph name names the files and prefixes every identifier of the C API


MAX_TENSOR_BYTES = 2**31 - 1  # generated C indexes tensors and the arena with int (32 bits on every target)


def check_limits(graph: Graph, fail) -> None:
    """What the generated C and the file system can hold: refused here, not as overflowing C or OSError."""
    if len(graph.name) > MAX_NAME:
        raise fail(f"graph name '{graph.name[:24]}...' has {len(graph.name)} characters, at most {MAX_NAME} "
                   "(it names <name>.h/<name>.c and prefixes the C API); set a shorter name (JSON 'name', or "
                   "rename the model file)")
    for t in graph.tensors.values():
        nbytes = math.prod(t.shape) * np.dtype(t.dtype).itemsize    # Python ints: no int64 wrap-around
        if nbytes > MAX_TENSOR_BYTES:
            raise fail(f"tensor '{t.name}' {list(t.shape)} {t.dtype} is {nbytes:,} bytes; the generated C indexes "
                       f"tensors with 32-bit int, so at most {MAX_TENSOR_BYTES:,} bytes per tensor")


def check_activation_bounds(graph: Graph, op: Op, dtype: str, fail) -> None:
    """A fused activation bound must quantize into int32, as TFLite checks when it prepares the op
    (no_integer_overflow_from_quantization); the C would otherwise compare with a wrapped bound."""
    activation = getattr(op.attrs, "activation", None)
    y = graph.tensor(op.outputs[0])
    if activation is None or dtype != "int8" or y.quant is None:
        return
    scale, zero_point = np.float32(y.quant.scale[0]), int(y.quant.zero_point[0])
    for bound in activation.bounds():
        if bound is None:
            continue
        real = float(np.float32(bound) / scale)
        q = zero_point + round(real) if math.isfinite(real) else real
        if not -2**31 <= q <= 2**31 - 1:
            raise fail(f"{op.where()}: activation {activation.label()} bound {bound:g} at output scale {scale:g} "
                       f"quantizes to {q:.3g}, outside int32 (TFLite refuses this too); the output scale is "
                       "implausibly small")
