"""ONNX is NCHW, the IR and the generated C are NHWC: the one place that says how shapes, axes and
constants move between the two. 4-D activations are [N, H, W, C] in the IR, everything else keeps its
ONNX layout; convolution weights get the layouts the IR's kernels read."""
from __future__ import annotations

import numpy as np

NCHW_TO_NHWC = (0, 2, 3, 1)
NHWC_TO_NCHW = (0, 3, 1, 2)
AXIS_NCHW_TO_NHWC = {0: 0, 1: 3, 2: 1, 3: 2}


def ir_shape(onnx_shape) -> tuple[int, ...]:
    shape = tuple(int(d) for d in onnx_shape)
    return tuple(shape[i] for i in NCHW_TO_NHWC) if len(shape) == 4 else shape


def onnx_shape(ir: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(ir[i] for i in NHWC_TO_NCHW) if len(ir) == 4 else tuple(ir)


def ir_axis(axis: int, rank: int) -> int:
    """A non-negative ONNX axis of a rank-`rank` tensor as an IR axis."""
    return AXIS_NCHW_TO_NHWC[axis] if rank == 4 else axis


def conv_weights(kind: str, w: np.ndarray) -> np.ndarray:
    """Conv OIHW -> [O, KH, KW, I]; depthwise [C*m, 1, KH, KW] -> [1, KH, KW, C*m];
    ConvTranspose [I, O, KH, KW] -> [O, KH, KW, I]."""
    perm = {"DepthwiseConv2D": (1, 2, 3, 0), "TransposeConv2D": (1, 2, 3, 0)}.get(kind, (0, 2, 3, 1))
    return np.ascontiguousarray(w.transpose(perm))


def conv_weight_axis(kind: str, axis: int) -> int:
    """Where ONNX weight axis `axis` lands in conv_weights' layout."""
    perm = {"DepthwiseConv2D": (1, 2, 3, 0), "TransposeConv2D": (1, 2, 3, 0)}.get(kind, (0, 2, 3, 1))
    return perm.index(axis)


def broadcast_constant(value: np.ndarray, rank: int) -> np.ndarray:
    """A constant operand of an elementwise op with a rank-`rank` activation, in IR layout: NumPy broadcasting
    aligns trailing dimensions, so a [C, 1, 1] constant against NCHW is [1, C, 1, 1], which is [1, 1, 1, C]
    against NHWC."""
    if value.ndim > rank:
        return value
    value = value.reshape((1,) * (rank - value.ndim) + value.shape)
    return np.ascontiguousarray(value.transpose(NCHW_TO_NHWC)) if rank == 4 else value
