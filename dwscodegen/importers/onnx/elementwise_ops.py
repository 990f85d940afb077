"""Elementwise ops and activations: Add, Mul, Relu, Clip, Sigmoid, HardSigmoid, HardSwish, Softmax."""
from __future__ import annotations

import numpy as np

from ...ir import AddAttrs, MulAttrs, NoAttrs, SoftmaxAttrs
from ...passes.source_ops import CLAMP, HARD_SIGMOID, ClampAttrs, HardSigmoidAttrs


def _binary(t, node, op_type: str, attrs) -> None:
    """Two operands broadcast NumPy-style; a constant operand is broadcast into the activation's layout."""
    acts = [n for n in node.input if not t.is_static(n)]
    shapes = [t.shape_of(n) for n in acts]
    rank = len(shapes[0])
    if any(len(s) != rank for s in shapes):
        raise t.fail(f"operands {[list(s) for s in shapes]} have different ranks; broadcasting between "
                     "activations of different rank is not supported (NCHW and NHWC align their dimensions "
                     "differently)")
    for n in node.input:
        if t.is_static(n):
            if t.values[n].ndim > rank:
                raise t.fail(f"constant operand '{n}' {list(t.values[n].shape)} has more dimensions than the "
                             f"activation {list(shapes[0])}")
            shapes.append((1,) * (rank - t.values[n].ndim) + t.values[n].shape)
    try:
        out = tuple(int(d) for d in np.broadcast_shapes(*shapes))
    except ValueError:
        raise t.fail(f"shapes {[list(s) for s in shapes]} do not broadcast") from None
    t.emit(node, op_type, [t.elementwise_operand(n, rank) for n in node.input], out, attrs)


def add(t, node) -> None:
    _binary(t, node, "Add", AddAttrs())


def mul(t, node) -> None:
    _binary(t, node, "Mul", MulAttrs())


def _unary(t, node, op_type: str, attrs=None) -> None:
    x = node.input[0]
    t.emit(node, op_type, [t.act(x)], t.shape_of(x), NoAttrs() if attrs is None else attrs)


def relu(t, node) -> None:
    _unary(t, node, "Relu")


def clip_bounds(t, node) -> tuple[float | None, float | None]:
    if t.opset < 11:
        a = t.attrs(node)
        low, high = a.get("min"), a.get("max")
    else:
        low, high = (float(t.static(n, what)) if n else None
                     for n, what in ((t.optional_input(node, 1), "Clip min"), (t.optional_input(node, 2), "Clip max")))
    return None if low is None else float(np.float32(low)), None if high is None else float(np.float32(high))


def clip(t, node) -> None:
    """Relu6 / Relu where the bounds are those; any other clamp is fused into the op before it, or an error."""
    low, high = clip_bounds(t, node)
    if low == 0.0 and high == 6.0:
        _unary(t, node, "Relu6")
    elif low == 0.0 and high is None:
        _unary(t, node, "Relu")
    else:
        _unary(t, node, CLAMP, ClampAttrs(low, high))


def sigmoid(t, node) -> None:
    _unary(t, node, "Logistic")


def hard_swish(t, node) -> None:
    _unary(t, node, "HardSwish")


def hard_sigmoid(t, node) -> None:
    a = t.attrs(node)
    _unary(t, node, HARD_SIGMOID, HardSigmoidAttrs(alpha=float(a.get("alpha", 0.2)), beta=float(a.get("beta", 0.5))))


def softmax(t, node) -> None:
    s = t.shape_of(node.input[0])
    axis = t.attrs(node).get("axis", -1 if t.opset >= 13 else 1)
    axis = axis + len(s) if axis < 0 else axis
    ok = (len(s) == 2 and axis == 1) or (len(s) == 4 and axis == 1 and (t.opset >= 13 or s[2] * s[3] == 1))
    if not ok:
        raise t.fail(f"softmax over axis {axis} of a {len(s)}-D input is not supported; only the last axis of a "
                     "2-D input or the channel axis of a 4-D one")
    _unary(t, node, "Softmax", SoftmaxAttrs(beta=1.0))


HANDLERS = {"Add": add, "Mul": mul, "Relu": relu, "Clip": clip, "Sigmoid": sigmoid, "HardSwish": hard_swish,
            "HardSigmoid": hard_sigmoid, "Softmax": softmax}
