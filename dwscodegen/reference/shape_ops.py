"""PAD, CONCATENATION and RESHAPE: float32 and int8 (TFLite semantics), array level.

int8 code paths matched (BUILTIN_REF):
  * PAD (constant): reference_ops::Pad with the output zero point as the pad value (TFLite
    requires input and output quantization to be equal);
  * CONCATENATION: reference_ops::Concatenation, a copy. TFLite's int8 kernel rejects inputs whose
    scale or zero point differ from the output's; what a converter emits instead is an int8->int8
    QUANTIZE (reference_ops::Requantize) of each such input in front of the concatenation, and that
    is what `concat_params`/`concatenation_int8` compute for them. The result is bit-exact with
    that TFLite QUANTIZE + CONCATENATION pair.
  * RESHAPE: a copy.
  * Slice (STRIDED_SLICE of an activation, SPLIT): reference_ops::StridedSlice / Split, a copy of the
    values at begin + i * stride in every dimension; int8 input and output share one quantization.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ..qparams import RequantizeParams
from .elementwise import requantize_int8


def pad(x: np.ndarray, paddings, value=0) -> np.ndarray:
    """paddings: [(before, after)] per dimension (NHWC). float32: value 0; int8: the zero point."""
    x = np.asarray(x)
    paddings = [tuple(int(v) for v in p) for p in paddings]
    if len(paddings) != x.ndim or any(v < 0 for p in paddings for v in p):
        raise ValueError(f"paddings {paddings} do not fit a rank-{x.ndim} tensor")
    return np.pad(x, paddings, constant_values=np.asarray(value, dtype=x.dtype))


def pad_f32(x: np.ndarray, paddings) -> np.ndarray:
    return pad(np.asarray(x, dtype=np.float32), paddings, 0.0)


def pad_int8(x: np.ndarray, paddings, zero_point: int) -> np.ndarray:
    return pad(np.asarray(x, dtype=np.int8), paddings, int(zero_point))


def concatenation_f32(inputs: Sequence[np.ndarray], axis: int = -1) -> np.ndarray:
    return np.concatenate([np.asarray(x, dtype=np.float32) for x in inputs], axis=axis)


def concatenation_int8(inputs: Sequence[np.ndarray], params: Sequence[RequantizeParams], axis: int = -1) -> np.ndarray:
    if len(inputs) != len(params):
        raise ValueError(f"{len(inputs)} inputs, {len(params)} requantization params")
    parts = [np.asarray(x, dtype=np.int8) if p.identity else requantize_int8(x, p) for x, p in zip(inputs, params)]
    return np.concatenate(parts, axis=axis)


def reshape(x: np.ndarray, shape) -> np.ndarray:
    return np.asarray(x).reshape(tuple(int(d) for d in shape))


def slice_values(x: np.ndarray, begin, strides, shape) -> np.ndarray:
    """output[i0, i1, ...] = x[begin0 + i0 * strides0, begin1 + i1 * strides1, ...], output of `shape`."""
    x = np.asarray(x)
    index = np.ix_(*(b + s * np.arange(n) for b, s, n in zip(begin, strides, shape)))
    return x[index]
