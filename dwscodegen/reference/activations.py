"""HARD_SWISH, LOGISTIC, TANH and LEAKY_RELU, float32 and int8 (TFLite semantics).

int8: each is a function of one int8 value, computed once for all 256 inputs (int8_elementwise.py,
TFLite's own recipe for each op) and looked up. float32 in float64, the more accurate side of every
comparison: x * relu6(x + 3) / 6, 1 / (1 + e^-x), tanh, x > 0 ? x : alpha * x.
"""
from __future__ import annotations

import numpy as np


def lookup_int8(q: np.ndarray, table: np.ndarray) -> np.ndarray:
    return table[np.asarray(q, dtype=np.int64) + 128].astype(np.int8)


def hard_swish_f32(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    return x * np.clip(x + 3.0, 0.0, 6.0) / 6.0


def logistic_f32(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-x.astype(np.float64)))


def tanh_f32(x: np.ndarray) -> np.ndarray:
    return np.tanh(x.astype(np.float64))


def leaky_relu_f32(x: np.ndarray, alpha: float) -> np.ndarray:
    x = x.astype(np.float64)
    return np.where(x > 0, x, x * float(np.float32(alpha)))
