"""Integer parameters of each int8 op, derived once from the graph's float scales as TFLite does.

The NumPy reference and every C backend read these same numbers, so the two can only disagree in
the arithmetic itself, which is what verification is there to catch.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .ir import Graph, Op
from .quant import activation_range_int8, quantize_multiplier
from .reference.elementwise import RequantizeParams, relu_params
from .reference.fully_connected import FullyConnectedParams, fully_connected_params
from .reference.pool import MeanParams, mean_params
from .reference.shape_ops import concat_params
from .reference.softmax import SoftmaxParams, softmax_params

ADD_LEFT_SHIFT = 20   # tflite's headroom for int8 Add


@dataclass(frozen=True)
class ConvQParams:
    input_offset: int              # -input zero point
    output_offset: int             # output zero point
    multiplier: np.ndarray         # int32 per output channel
    shift: np.ndarray              # int32 per output channel (positive = left)
    act_min: int
    act_max: int


@dataclass(frozen=True)
class AddQParams:
    input1_offset: int
    input2_offset: int
    output_offset: int
    left_shift: int
    input1_multiplier: int
    input1_shift: int
    input2_multiplier: int
    input2_shift: int
    output_multiplier: int
    output_shift: int
    act_min: int
    act_max: int


def f32(x) -> float:
    """Scales are float32 in TFLite; widen exactly to double as its C++ does."""
    return float(np.float32(x))


def conv_qparams(graph: Graph, op: Op) -> ConvQParams:
    x, w = graph.tensor(op.inputs[0]), graph.tensor(op.inputs[1])
    y = graph.tensor(op.outputs[0])
    out_channels = y.shape[3]
    w_scales = np.broadcast_to(w.quant.scale, (out_channels,))
    in_scale, out_scale = f32(x.quant.scale[0]), f32(y.quant.scale[0])
    pairs = [quantize_multiplier(in_scale * f32(s) / out_scale) for s in w_scales]
    low, high = op.attrs.activation.bounds()
    act_min, act_max = activation_range_int8(low, high, out_scale, int(y.quant.zero_point[0]))
    return ConvQParams(
        input_offset=-int(x.quant.zero_point[0]),
        output_offset=int(y.quant.zero_point[0]),
        multiplier=np.array([m for m, _ in pairs], dtype=np.int32),
        shift=np.array([s for _, s in pairs], dtype=np.int32),
        act_min=act_min, act_max=act_max)


def add_qparams(graph: Graph, op: Op) -> AddQParams:
    a, b = graph.tensor(op.inputs[0]), graph.tensor(op.inputs[1])
    y = graph.tensor(op.outputs[0])
    sa, sb, sy = f32(a.quant.scale[0]), f32(b.quant.scale[0]), f32(y.quant.scale[0])
    twice_max = 2.0 * max(sa, sb)
    m1, s1 = quantize_multiplier(sa / twice_max)
    m2, s2 = quantize_multiplier(sb / twice_max)
    mo, so = quantize_multiplier(twice_max / f32((1 << ADD_LEFT_SHIFT) * np.float32(sy)))
    low, high = op.attrs.activation.bounds()
    act_min, act_max = activation_range_int8(low, high, sy, int(y.quant.zero_point[0]))
    return AddQParams(
        input1_offset=-int(a.quant.zero_point[0]), input2_offset=-int(b.quant.zero_point[0]),
        output_offset=int(y.quant.zero_point[0]), left_shift=ADD_LEFT_SHIFT,
        input1_multiplier=m1, input1_shift=s1, input2_multiplier=m2, input2_shift=s2,
        output_multiplier=mo, output_shift=so, act_min=act_min, act_max=act_max)


def scale_zp(graph: Graph, name: str) -> tuple[float, int]:
    """(float32 scale widened to double, zero point) of a per-tensor quantized tensor."""
    q = graph.tensor(name).quant
    return f32(q.scale[0]), int(q.zero_point[0])


def output_activation_range(graph: Graph, op: Op) -> tuple[int, int]:
    """int8 clamp bounds of an op's fused activation, in its output's quantization."""
    low, high = op.attrs.activation.bounds()
    return activation_range_int8(low, high, *scale_zp(graph, op.outputs[0]))


def fully_connected_qparams(graph: Graph, op: Op) -> FullyConnectedParams:
    w = graph.tensor(op.inputs[1])
    low, high = op.attrs.activation.bounds()
    return fully_connected_params(*scale_zp(graph, op.inputs[0]), w.quant.scale, int(w.quant.zero_point[0]),
                                  *scale_zp(graph, op.outputs[0]), w.shape[0], low, high)


def softmax_qparams(graph: Graph, op: Op) -> SoftmaxParams:
    return softmax_params(scale_zp(graph, op.inputs[0])[0], op.attrs.beta)


def mean_qparams(graph: Graph, op: Op) -> MeanParams:
    x = graph.tensor(op.inputs[0])
    return mean_params(*scale_zp(graph, op.inputs[0]), *scale_zp(graph, op.outputs[0]), x.shape[1] * x.shape[2])


def relu_qparams(graph: Graph, op: Op) -> RequantizeParams:
    return relu_params(op.type.lower(), *scale_zp(graph, op.inputs[0]), *scale_zp(graph, op.outputs[0]))


def concat_qparams(graph: Graph, op: Op) -> list[RequantizeParams]:
    return concat_params([scale_zp(graph, n) for n in op.inputs], *scale_zp(graph, op.outputs[0]))
