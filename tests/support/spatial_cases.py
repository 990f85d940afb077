"""Single-op .tflite cases of the spatial ops (resize, transpose convolution, hybrid depthwise, MEAN over
other axes), each a (name, op, inputs, outputs, options) built with tflite_builder; seeded."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .tflite_builder import TensorSpec, build_single_op_model
from .tflite_cases import act


@dataclass(frozen=True)
class SpatialCase:
    name: str
    op: str
    inputs: tuple
    outputs: tuple
    options: dict

    def model(self) -> bytes:
        return build_single_op_model(self.op, list(self.inputs), list(self.outputs), dict(self.options))


# (input N, H, W, C), output (OH, OW), align_corners, half_pixel_centers: upscale 2x / 3x, non-integer
# ratios, downscale, 1x1, batch 2
RESIZES = [((1, 4, 4, 3), (8, 8), False, False), ((2, 3, 5, 2), (9, 15), False, True),
           ((1, 3, 5, 4), (7, 4), True, False), ((1, 5, 6, 3), (7, 9), False, True),
           ((2, 9, 7, 2), (4, 3), False, False), ((1, 6, 4, 5), (1, 1), True, False),
           ((1, 1, 1, 3), (3, 2), False, True), ((3, 2, 3, 2), (5, 4), False, True)]


def resize_cases(dtype: str) -> list[SpatialCase]:
    cases = []
    for op in ("RESIZE_BILINEAR", "RESIZE_NEAREST_NEIGHBOR"):
        for shape, (oh, ow), align, half in RESIZES:
            x = act("x", shape, dtype, 0.05, -3)
            y = act("y", (shape[0], oh, ow, shape[3]), dtype, 0.05, -3)
            name = f"{op.lower()}_{dtype}_n{shape[0]}_{shape[1]}x{shape[2]}_to_{oh}x{ow}_a{int(align)}_h{int(half)}"
            cases.append(SpatialCase(name, op, (x,), (y,), dict(size=[oh, ow], align_corners=align,
                                                                 half_pixel_centers=half)))
    return cases


# (N, H, W, IC), OC, (KH, KW), (SH, SW), padding, activation, bias
TRANSPOSE_CONVS = [((1, 3, 4, 3), 4, (3, 3), (2, 2), "SAME", "NONE", True),
                   ((2, 3, 4, 2), 3, (3, 3), (2, 2), "VALID", "RELU", False),
                   ((1, 4, 3, 3), 5, (2, 3), (1, 1), "SAME", "RELU6", True),
                   ((1, 3, 3, 2), 4, (4, 4), (3, 3), "SAME", "NONE", True),
                   ((1, 2, 5, 3), 2, (3, 1), (3, 2), "VALID", "NONE", True),
                   ((1, 5, 4, 2), 3, (1, 1), (2, 2), "VALID", "NONE", True),   # 1x1 stride 2: rows only bias reaches
                   ((3, 2, 2, 2), 2, (2, 2), (2, 2), "SAME", "RELU", True)]


def _tconv_out(shape, k, s, padding):
    if padding == "SAME" or k[0] < s[0]:
        return shape[1] * s[0], shape[2] * s[1]
    return (shape[1] - 1) * s[0] + k[0], (shape[2] - 1) * s[1] + k[1]


def transpose_conv_cases(dtype: str, seed: int = 7) -> list[SpatialCase]:
    rng = np.random.default_rng(seed)
    cases = []
    for shape, oc, k, s, padding, activation, has_bias in TRANSPOSE_CONVS:
        oh, ow = _tconv_out(shape, k, s, padding)
        wshape = (oc, *k, shape[3])
        if dtype == "int8":
            w = TensorSpec("w", wshape, "int8", data=rng.integers(-127, 128, wshape, dtype=np.int8),
                           scale=[float(v) for v in rng.uniform(0.002, 0.02, oc)], zero_point=[0] * oc)
            b = TensorSpec("b", (oc,), "int32", data=rng.integers(-2000, 2000, oc, dtype=np.int32))
        else:
            w = TensorSpec("w", wshape, "float32", data=rng.normal(0, 0.3, wshape).astype(np.float32))
            b = TensorSpec("b", (oc,), "float32", data=rng.normal(0, 0.1, oc).astype(np.float32))
        x = act("x", shape, dtype, 0.05, -3)
        y = act("y", (shape[0], oh, ow, oc), dtype, 0.08, 4)
        name = (f"transpose_conv_{dtype}_n{shape[0]}_{shape[1]}x{shape[2]}_k{k[0]}x{k[1]}_s{s[0]}x{s[1]}_"
                f"{padding.lower()}_{activation.lower()}{'' if has_bias else '_nobias'}")
        cases.append(SpatialCase(name, "TRANSPOSE_CONV", (x, w, b if has_bias else None), (y,),
                                 dict(padding=padding, stride_h=s[0], stride_w=s[1], fused_activation=activation)))
    return cases


def hybrid_depthwise_cases(seed: int = 3) -> list[SpatialCase]:
    """float32 activations, int8 filter: per-channel scales, equal scales, multiplier 2, batch 2."""
    rng = np.random.default_rng(seed)
    cases = []
    for shape, mult, stride, padding, activation, equal in [((2, 6, 5, 3), 1, 2, "SAME", "RELU6", False),
                                                             ((1, 7, 7, 4), 2, 1, "VALID", "NONE", False),
                                                             ((1, 5, 6, 2), 1, 1, "SAME", "RELU", True),
                                                             ((3, 4, 4, 2), 1, 1, "SAME", "NONE", False)]:
        oc = shape[3] * mult
        scales = [0.01] * oc if equal else [float(v) for v in rng.uniform(0.002, 0.02, oc)]
        w = TensorSpec("w", (1, 3, 3, oc), "int8", data=rng.integers(-127, 128, (1, 3, 3, oc), dtype=np.int8),
                       scale=scales, zero_point=[0] * oc, quantized_dimension=3)
        b = TensorSpec("b", (oc,), "float32", data=rng.normal(0, 0.1, oc).astype(np.float32))
        oh, ow = ((-(-shape[1] // stride), -(-shape[2] // stride)) if padding == "SAME"
                  else ((shape[1] - 3) // stride + 1, (shape[2] - 3) // stride + 1))
        name = f"hybrid_depthwise_n{shape[0]}_m{mult}_s{stride}_{padding.lower()}{'_equal_scales' if equal else ''}"
        cases.append(SpatialCase(name, "DEPTHWISE_CONV_2D", (act("x", shape, "float32"), w, b),
                                 (act("y", (shape[0], oh, ow, oc), "float32"),),
                                 dict(padding=padding, stride_h=stride, stride_w=stride, fused_activation=activation,
                                      depth_multiplier=mult)))
    return cases


# input shape, axes, keep_dims
MEANS = [((2, 5, 3, 6), [1, 2], True), ((1, 7, 9, 4), [1, 2], False), ((2, 5, 3, 6), [1], True),
         ((1, 5, 3, 6), [2], False), ((2, 4, 3, 5), [3], True), ((1, 4, 3, 5), [-1], False),
         ((2, 4, 3, 5), [1, 2, 3], True), ((1, 1, 1, 8), [1, 2], True)]


def mean_cases(dtype: str) -> list[SpatialCase]:
    cases = []
    for shape, axes, keep in MEANS:
        resolved = sorted(a % len(shape) for a in axes)
        out = [1 if i in resolved else d for i, d in enumerate(shape)] if keep else [
            d for i, d in enumerate(shape) if i not in resolved]
        name = f"mean_{dtype}_{'x'.join(map(str, shape))}_axes{''.join(map(str, resolved))}_k{int(keep)}"
        cases.append(SpatialCase(name, "MEAN", (act("x", shape, dtype, 0.05, -3),),
                                 (act("y", tuple(out), dtype, 0.02, 1),), dict(axis=axes, keep_dims=keep)))
    return cases
