"""Checks of single tensors and of an op's one input and output, shared by the per-op checks of validate.py
and validate_ops.py."""
from __future__ import annotations

import numpy as np

from .ir import Graph, Op, Tensor


def check_quant_values(t: Tensor, fail) -> None:
    q = t.quant
    if len(q.scale) != len(q.zero_point):
        raise fail(f"tensor '{t.name}': quant has {len(q.scale)} scales but {len(q.zero_point)} zero points")
    if not np.all(np.isfinite(q.scale)) or np.any(q.scale <= 0):
        raise fail(f"tensor '{t.name}': quant scales must be finite and > 0")
    if np.any(q.zero_point < -128) or np.any(q.zero_point > 127):
        raise fail(f"tensor '{t.name}': int8 zero points must be in [-128, 127]")


def check_filter_quant(w: Tensor, channel_axis: int, out_c: int, where: str, fail) -> None:
    q = w.quant
    if q is None:
        raise fail(f"{where}: int8 filter '{w.name}' has no quant parameters")
    check_quant_values(w, fail)
    if np.any(q.zero_point != 0):
        raise fail(f"{where}: filter '{w.name}' must be symmetric (zero_point 0), as TFLite requires")
    if q.per_channel:
        if q.axis != channel_axis or len(q.scale) != out_c:
            raise fail(f"{where}: per-channel filter quant must be along axis {channel_axis} with {out_c} "
                       f"scales, got axis {q.axis} with {len(q.scale)}")
    elif len(q.scale) != 1:
        raise fail(f"{where}: filter '{w.name}' has {len(q.scale)} scales but no quant axis")


def single_input(graph: Graph, op: Op, fail) -> tuple[Tensor, Tensor]:
    if len(op.inputs) != 1:
        raise fail(f"{op.where()}: expects exactly one input, got {len(op.inputs)}")
    x, y = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    if x.is_const:
        raise fail(f"{op.where()}: input '{x.name}' must be an activation, not a constant")
    return x, y


def check_bias(graph: Graph, op: Op, dtype: str, channels: int, fail) -> None:
    """A conv's optional third input: a constant of the accumulator's type (int32 for int8), one per output channel."""
    if len(op.inputs) != 3:
        return
    b = graph.tensor(op.inputs[2])
    bias_dtype = "int32" if dtype == "int8" else "float32"
    if not b.is_const or b.shape != (channels,) or b.dtype != bias_dtype:
        raise fail(f"{op.where()}: bias '{b.name}' must be a constant {bias_dtype} tensor of shape [{channels}], "
                   f"got {b.dtype} {list(b.shape)}")


def same_quant(op: Op, x: Tensor, y: Tensor, fail) -> None:
    """TFLite's int8 pooling and reshape keep the input's quantization; anything else is a different op."""
    if x.quant is not None and (x.quant.scale[0] != y.quant.scale[0] or x.quant.zero_point[0] != y.quant.zero_point[0]):
        raise fail(f"{op.where()}: int8 input and output quantization must be equal "
                   f"(scale {x.quant.scale[0]:g}/{y.quant.scale[0]:g}, zero point "
                   f"{x.quant.zero_point[0]}/{y.quant.zero_point[0]})")
