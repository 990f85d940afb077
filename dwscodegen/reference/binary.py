"""ADD, MUL, MAXIMUM, MINIMUM and PRELU with NumPy broadcasting, float32 and int8 (TFLite semantics; the int8
arithmetic is int8_elementwise.py's, which the backends' tables share).

int8 code paths matched (BUILTIN_REF; broadcasting only changes which elements meet, never the arithmetic):
  * ADD: reference_integer_ops::Add / BroadcastAdd6DSlow: both inputs rescaled to twice the larger
    input scale with 20 bits of headroom, summed, requantized (qparams.add_qparams);
  * MUL: reference_integer_ops::Mul / BroadcastMul6DSlow: MultiplyByQuantizedMultiplier of the product
    of the offset inputs by input1_scale * input2_scale / output_scale (qparams.mul_qparams);
  * MAXIMUM / MINIMUM: MaximumMinimumBroadcastSlow compares the raw int8 values (validation requires
    one quantization for inputs and output, which makes that the real maximum);
  * PRELU: reference_ops::Prelu / BroadcastPrelu4DSlow (qparams.prelu_qparams).
"""
from __future__ import annotations

import numpy as np

from ..int8_elementwise import add_int8, maximum, minimum, mul_int8, prelu_int8

__all__ = ["add_int8", "mul_int8", "maximum", "minimum", "prelu_int8", "prelu_f32"]


def prelu_f32(x: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    return np.where(x >= 0, x, x * alpha)
