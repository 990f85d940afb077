"""One single-op .tflite case per supported TFLite operator (built with the tflite flatbuffer builder)."""
from __future__ import annotations

import numpy as np

from .tflite_builder import TensorSpec

RNG_SEED = 5


def act(name, shape, dtype, scale=0.05, zp=-3):
    return TensorSpec(name, shape, dtype, scale=scale if dtype == "int8" else None,
                      zero_point=zp if dtype == "int8" else None)


def conv_weights(rng, shape, dtype, axis):
    if dtype == "float32":
        return TensorSpec("w", shape, "float32", data=rng.normal(0, 0.3, shape).astype(np.float32))
    scales = [float(s) for s in rng.uniform(0.002, 0.02, shape[axis])]
    return TensorSpec("w", shape, "int8", data=rng.integers(-127, 128, shape, dtype=np.int8), scale=scales,
                      zero_point=[0] * shape[axis], quantized_dimension=axis)


def bias(rng, n, dtype):
    if dtype == "float32":
        return TensorSpec("b", (n,), "float32", data=rng.normal(0, 0.1, n).astype(np.float32))
    return TensorSpec("b", (n,), "int32", data=rng.integers(-2000, 2000, n, dtype=np.int32))


def single_op(op, dtype, rng):
    """(op name, inputs, outputs, options) for one case of each op."""
    s8 = dtype == "int8"
    if op == "CONV_2D":
        return (op, [act("x", (1, 9, 7, 3), dtype), conv_weights(rng, (5, 3, 3, 3), dtype, 0), bias(rng, 5, dtype)],
                [act("y", (1, 5, 4, 5), dtype, 0.08, 4)], dict(padding="SAME", stride_h=2, stride_w=2,
                                                               fused_activation="RELU6"))
    if op == "DEPTHWISE_CONV_2D":
        return (op, [act("x", (1, 8, 8, 4), dtype), conv_weights(rng, (1, 3, 3, 8), dtype, 3), bias(rng, 8, dtype)],
                [act("y", (1, 4, 4, 8), dtype, 0.02, 2)], dict(padding="VALID", dilation_h=2, dilation_w=2,
                                                               depth_multiplier=2))
    if op == "ADD":
        return (op, [act("a", (1, 4, 5, 6), dtype), act("c", (1, 4, 5, 6), dtype, 0.03, 7)],
                [act("y", (1, 4, 5, 6), dtype, 0.07, -1)], dict(fused_activation="RELU"))
    if op in ("AVERAGE_POOL_2D", "MAX_POOL_2D"):
        return (op, [act("x", (1, 7, 6, 5), dtype)], [act("y", (1, 4, 3, 5), dtype)],
                dict(padding="SAME", stride_h=2, stride_w=2, filter_h=3, filter_w=3))
    if op == "FULLY_CONNECTED":
        w = rng.normal(0, 0.2, (6, 20)).astype(np.float32) if not s8 else rng.integers(-127, 128, (6, 20), dtype=np.int8)
        return (op, [act("x", (2, 20), dtype), TensorSpec("w", (6, 20), dtype, data=w, scale=0.01 if s8 else None,
                                                          zero_point=0 if s8 else None), bias(rng, 6, dtype)],
                [act("y", (2, 6), dtype, 0.1, 3)], {})
    if op == "SOFTMAX":
        return (op, [act("x", (1, 12), dtype, 0.15, 5)], [act("y", (1, 12), dtype, 1 / 256, -128)], {})
    if op == "RESHAPE":
        return (op, [act("x", (1, 2, 3, 4), dtype)], [act("y", (1, 24), dtype)], dict(new_shape=[1, 24]))
    if op == "MEAN":
        return (op, [act("x", (1, 5, 3, 6), dtype)], [act("y", (1, 1, 1, 6), dtype, 0.02, 1)],
                dict(axis=[1, 2], keep_dims=True))
    if op == "PAD":
        return (op, [act("x", (1, 3, 4, 2), dtype)], [act("y", (1, 5, 7, 2), dtype)],
                dict(paddings=[[0, 0], [1, 1], [2, 1], [0, 0]]))
    if op == "CONCATENATION":
        return (op, [act("a", (1, 3, 3, 2), dtype), act("c", (1, 3, 3, 5), dtype)], [act("y", (1, 3, 3, 7), dtype)],
                dict(axis=3))
    if op in ("RELU", "RELU6"):
        return (op, [act("x", (1, 4, 4, 3), dtype, 0.05, -3)], [act("y", (1, 4, 4, 3), dtype, 0.03, -128)], {})
    if op == "MUL":     # squeeze-excite: a per-channel vector times every pixel
        return (op, [act("a", (1, 1, 1, 6), dtype, 0.004, -128), act("c", (1, 4, 5, 6), dtype, 0.03, 7)],
                [act("y", (1, 4, 5, 6), dtype, 0.002, -5)], dict(fused_activation="RELU6"))
    if op in ("MAXIMUM", "MINIMUM"):
        return (op, [act("a", (1, 4, 5, 6), dtype), act("c", (1, 4, 5, 1), dtype)], [act("y", (1, 4, 5, 6), dtype)], {})
    if op in ("HARD_SWISH", "LOGISTIC", "TANH", "LEAKY_RELU"):
        out_q = {"LOGISTIC": (1 / 256, -128), "TANH": (1 / 128, 0)}.get(op, (0.04, -20))
        return (op, [act("x", (2, 4, 4, 3), dtype, 0.06, -7)], [act("y", (2, 4, 4, 3), dtype, *out_q)],
                dict(alpha=0.2) if op == "LEAKY_RELU" else {})
    if op == "PRELU":
        alpha = rng.integers(-128, 128, 3, dtype=np.int8) if s8 else rng.uniform(-0.5, 0.5, 3).astype(np.float32)
        alpha = TensorSpec("alpha", (1, 1, 3), dtype, data=alpha, scale=0.004 if s8 else None,
                           zero_point=0 if s8 else None)
        return (op, [act("x", (1, 4, 4, 3), dtype), alpha], [act("y", (1, 4, 4, 3), dtype, 0.03, 10)], {})
    raise AssertionError(op)


OPS = ["CONV_2D", "DEPTHWISE_CONV_2D", "ADD", "AVERAGE_POOL_2D", "MAX_POOL_2D", "FULLY_CONNECTED", "SOFTMAX",
       "RESHAPE", "MEAN", "PAD", "CONCATENATION", "RELU", "RELU6",
       "MUL", "MAXIMUM", "MINIMUM", "HARD_SWISH", "LOGISTIC", "TANH", "LEAKY_RELU", "PRELU"]
