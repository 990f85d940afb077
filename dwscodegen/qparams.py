"""Integer parameters of each int8 op, derived once from the graph's float scales as TFLite does.

The NumPy reference and every C backend read these same numbers, so the two can only disagree in
the arithmetic itself, which is what verification is there to catch.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import math
from typing import Sequence

from .ir import Graph, Op
from .quant import INT32_MAX, activation_range_int8, quantize_multiplier

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
    count = int(np.prod([x.shape[a] for a in op.attrs.axes]))
    return mean_params(*scale_zp(graph, op.inputs[0]), *scale_zp(graph, op.outputs[0]), count)


def relu_qparams(graph: Graph, op: Op) -> RequantizeParams:
    return relu_params(op.type.lower(), *scale_zp(graph, op.inputs[0]), *scale_zp(graph, op.outputs[0]))


def concat_qparams(graph: Graph, op: Op) -> list[RequantizeParams]:
    return concat_params([scale_zp(graph, n) for n in op.inputs], *scale_zp(graph, op.outputs[0]))


# --- facts of an op's quantization -------------------------------------------------------------

def is_hybrid(graph: Graph, op: Op) -> bool:
    """float32 activations with an int8 filter: TFLite's dynamic-range quantized convolution."""
    return (op.type in ("Conv2D", "DepthwiseConv2D") and graph.op_dtype(op) == "float32"
            and graph.tensor(op.inputs[1]).dtype == "int8")


def onnx_requant_scales(graph: Graph, op: Op) -> np.ndarray:
    """float32 per output channel, as onnxruntime's QLinearConv / QGemm / QLinearMatMul compute them:
    x_scale * w_scale[c] / y_scale, in float32 arithmetic (product first)."""
    x, w, y = (graph.tensor(n).quant for n in (op.inputs[0], op.inputs[1], op.outputs[0]))
    channels = graph.tensor(op.outputs[0]).shape[-1]
    w_scales = np.broadcast_to(w.scale.astype(np.float32), (channels,))
    return (np.float32(x.scale[0]) * w_scales / np.float32(y.scale[0])).astype(np.float32)


def hybrid_per_channel(filter_scales: np.ndarray) -> bool:
    """Hybrid conv: per-channel filter scales that differ (TFLite's EvalHybridPerChannel path)."""
    scales = np.asarray(filter_scales, np.float32).reshape(-1)
    return scales.size > 1 and bool(np.any(scales != scales[0]))


# --- parameters at array level (shared by the reference and both backends) --------------------

@dataclass(frozen=True)
class RequantizeParams:
    """out = clamp(MultiplyByQuantizedMultiplier(q - input_zero_point, multiplier, shift)
                    + output_zero_point, act_min, act_max)"""
    input_zero_point: int
    output_zero_point: int
    multiplier: int
    shift: int
    act_min: int = -128
    act_max: int = 127

    @property
    def identity(self) -> bool:
        """Same scale and zero point and no clamping: a copy."""
        return (self.multiplier == 1 << 30 and self.shift == 1 and self.input_zero_point == self.output_zero_point
                and self.act_min == -128 and self.act_max == 127)


def requantize_params(input_scale: float, input_zero_point: int, output_scale: float,
                      output_zero_point: int) -> RequantizeParams:
    """QUANTIZE int8 -> int8 (quantize.cc Prepare): double division of the float32 scales."""
    m, s = quantize_multiplier(float(np.float32(input_scale)) / float(np.float32(output_scale)))
    return RequantizeParams(int(input_zero_point), int(output_zero_point), m, s)


def relu_params(kind: str, input_scale: float, input_zero_point: int, output_scale: float,
                output_zero_point: int) -> RequantizeParams:
    """kind: "relu" or "relu6" (also "relu_n1_to_1"). ReluPrepare divides the scales in float32."""
    low, high = {"relu": (0.0, None), "relu6": (0.0, 6.0), "relu_n1_to_1": (-1.0, 1.0)}[kind]
    m, s = quantize_multiplier(float(np.float32(input_scale) / np.float32(output_scale)))
    act_min, act_max = activation_range_int8(low, high, output_scale, int(output_zero_point))
    return RequantizeParams(int(input_zero_point), int(output_zero_point), m, s, act_min, act_max)


@dataclass(frozen=True)
class FullyConnectedParams:
    input_offset: int            # -input zero point
    weights_offset: int          # -weights zero point (0 for per-channel)
    output_offset: int           # output zero point
    scale: np.ndarray            # float64 [O]: input_scale * weight_scale / output_scale
    act_min: int
    act_max: int


def fully_connected_params(input_scale: float, input_zero_point: int, weight_scales, weight_zero_point: int,
                           output_scale: float, output_zero_point: int, num_outputs: int,
                           act_low: float | None = None, act_high: float | None = None) -> FullyConnectedParams:
    """weight_scales: one value (per-tensor) or `num_outputs` values (per-channel)."""
    ws = np.asarray(weight_scales, dtype=np.float32).reshape(-1)
    per_channel = ws.size > 1
    if per_channel and ws.size != num_outputs:
        raise ValueError(f"{ws.size} weight scales for {num_outputs} outputs")
    in_s, out_s = float(np.float32(input_scale)), float(np.float32(output_scale))
    scale = np.array([in_s * float(s) / out_s for s in np.broadcast_to(ws, (num_outputs,))], dtype=np.float64)
    act_min, act_max = activation_range_int8(act_low, act_high, out_s, int(output_zero_point))
    return FullyConnectedParams(
        input_offset=-int(input_zero_point), weights_offset=0 if per_channel else -int(weight_zero_point),
        output_offset=int(output_zero_point), scale=scale, act_min=act_min, act_max=act_max)


def folded_bias(weights: np.ndarray, bias: np.ndarray | None, params: FullyConnectedParams) -> np.ndarray:
    """bias + input_offset * sum_k(w + weights_offset), int32 with wrap-around: what the C kernel
    (templates/kernels/fully_connected_s8.c.j2) starts each accumulator from, so that its inner loop
    is sum_k (w + weights_offset) * x. Equal to TFLite's accumulator modulo 2^32, hence bit-exact."""
    w = np.asarray(weights, dtype=np.int64) + params.weights_offset
    b = np.zeros(w.shape[0], dtype=np.int64) if bias is None else np.asarray(bias, dtype=np.int64)
    folded = b + params.input_offset * w.sum(axis=1)
    return (((folded + (1 << 31)) % (1 << 32)) - (1 << 31)).astype(np.int32)


@dataclass(frozen=True)
class MeanParams:
    input_zero_point: int
    output_zero_point: int
    count: int               # elements averaged per output (H * W)
    multiplier: int          # input/output scale with 1/count folded in, as QuantizedMeanOrSum does
    shift: int


def mean_params(input_scale: float, input_zero_point: int, output_scale: float, output_zero_point: int,
                count: int) -> MeanParams:
    """PrepareMeanOrSum (QuantizeMultiplier of input_scale / output_scale in double) followed by
    QuantizedMeanOrSum's folding of 1/count into that multiplier."""
    multiplier, shift = quantize_multiplier(float(np.float32(input_scale)) / float(np.float32(output_scale)))
    fold = 63 - (64 - int(count).bit_length())           # 63 - CountLeadingZeros(uint64 count)
    fold = min(fold, 32, 31 + shift)
    multiplier = (multiplier << fold) // count           # int64 division of non-negatives
    return MeanParams(int(input_zero_point), int(output_zero_point), int(count), int(multiplier), int(shift - fold))


def concat_params(input_qparams: Sequence[tuple[float, int]], output_scale: float,
                  output_zero_point: int) -> list[RequantizeParams]:
    """One requantization per input ((scale, zero point) each); an identity one is a plain copy."""
    return [requantize_params(s, z, output_scale, output_zero_point) for s, z in input_qparams]


SCALED_DIFF_INTEGER_BITS = 5      # Q5.26 input to exp()


@dataclass(frozen=True)
class SoftmaxParams:
    input_multiplier: int     # Q31 multiplier of beta * input_scale * 2^(31-5), capped
    input_left_shift: int     # TFLite's left shift (>= 0); negative: a right shift (beyond TFLite's limit 1)
    diff_min: int             # input differences below this contribute exactly 0


def softmax_input_multiplier(input_scale: float, beta: float) -> float:
    """beta * input_scale * 2^26 as PreprocessSoftmaxScaling computes it (float32 scale and beta
    widened to double; double rounding build, so the cap is 2^31 - 1)."""
    scale, b = float(np.float32(input_scale)), float(np.float32(beta))
    return min(b * scale * float(1 << (31 - SCALED_DIFF_INTEGER_BITS)), float((1 << 31) - 1))


def softmax_params(input_scale: float, beta: float) -> SoftmaxParams:
    """PreprocessSoftmaxScaling + CalculateInputRadius, as TFLite's Prepare; for beta * input_scale
    <= 2^-26, where TFLite aborts, the continuation described in the module docstring."""
    multiplier, shift = quantize_multiplier(softmax_input_multiplier(input_scale, beta))
    radius = calculate_input_radius(SCALED_DIFF_INTEGER_BITS, shift)
    return SoftmaxParams(multiplier, shift, -min(radius, INT32_MAX))


def calculate_input_radius(input_integer_bits: int, input_left_shift: int, total_signed_bits: int = 31) -> int:
    max_input_rescaled = math.ldexp(1.0 * ((1 << input_integer_bits) - 1),
                                    total_signed_bits - input_integer_bits - input_left_shift)   # exact
    return int(math.floor(max_input_rescaled))


def fold_input_offset(graph: Graph, op: Op, bias: np.ndarray, input_offset: int) -> tuple[np.ndarray, int]:
    """(bias, input offset) a conv kernel accumulates with. Without padding every tap reads a real input, so
    sum((x + off) * w) = sum(x * w) + off * sum(w) per output channel: the offset folds into the int64 bias
    (returned with offset 0) whenever the folded bias still fits int32. Otherwise both are returned as given."""
    if tuple(op.attrs.pad) != (0, 0, 0, 0) or not input_offset:
        return bias, input_offset
    w = graph.tensor(op.inputs[1]).data.astype(np.int64)
    oc = graph.tensor(op.outputs[0]).shape[3]
    per_channel = w.reshape(-1, oc).sum(axis=0) if op.type == "DepthwiseConv2D" else w.reshape(oc, -1).sum(axis=1)
    folded = np.asarray(bias, dtype=np.int64) + input_offset * per_channel
    return (folded, 0) if np.abs(folded).max() < 2**31 else (bias, input_offset)
