"""Single conv layers with requant "onnx" (onnxruntime's float32 epilogue), for the SIMD variant tests: the layer
matrix's graphs with that requantization, and adversarial ones whose quantization makes a wrong epilogue show.

styles:
  plain   the case's graph as calibrated by tests/support/layers.conv_graph
  ties    power-of-two scales with x_scale * w_scale / y_scale = 1/16 exactly and small weights and biases: one
          accumulator in sixteen lands on a half, where round half to even (onnxruntime) and half away part
  big     |acc| > 2^28, where int32 -> float32 itself rounds (to multiples of 32 or 64): biases of (k + 1/2) * 2^23
          per channel, scale 2^-23 exactly and one +-1 weight per channel, so the rounded accumulator often lands
          exactly on the half (a conversion that truncates, or an exact one, then rounds the other way)
  extreme dead channels (all-zero weights, weight scale 1e-9, bias +-2^30), a channel with a huge scale (every
          output saturates) and one with a tiny one (every output is the zero point)
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from dwscodegen.ir import Graph, Op, Quant
from dwscodegen.ops import OPS
from dwscodegen.validate import validate

QDQ_MODEL = Path(__file__).resolve().parents[2] / "examples" / "mbv2_small_qdq.onnx"


def qdq_model_convs() -> tuple[Graph, list[Op]]:
    """The ONNX QDQ example and its int8 conv layers, every one requantized as onnxruntime does."""
    from dwscodegen.importers import load_model
    graph = load_model(QDQ_MODEL)
    convs = [op for op in graph.ops if OPS[op.type].kind == "conv" and graph.op_dtype(op) == "int8"]
    assert convs and all(op.attrs.requant == "onnx" for op in convs)
    return graph, convs

from .layers import ConvCase, conv_graph

STYLES = ("plain", "ties", "big", "extreme")


def _channel_axis(graph: Graph) -> tuple[int, int]:
    """(axis of the output channels in the weights, their number)."""
    op = graph.ops[0]
    w = graph.tensor(op.inputs[1])
    axis = 3 if op.type == "DepthwiseConv2D" else 0
    return axis, w.shape[axis]


def _set_scales(graph: Graph, x_scale: float, w_scale, y_scale: float) -> None:
    op = graph.ops[0]
    x, w, y = (graph.tensor(n) for n in (op.inputs[0], op.inputs[1], op.outputs[0]))
    axis, oc = _channel_axis(graph)
    ws = np.broadcast_to(np.asarray(w_scale, np.float64), (oc,)).copy()
    x.quant = Quant(np.array([x_scale]), x.quant.zero_point)
    y.quant = Quant(np.array([y_scale]), y.quant.zero_point)
    w.quant = Quant(ws, np.zeros(oc, np.int32), axis)


def onnx_requant_graph(case: ConvCase, style: str = "plain", seed: int = 0) -> Graph:
    graph = conv_graph(case, "int8", seed)
    op = graph.ops[0]
    op.attrs.requant = "onnx"
    rng = np.random.default_rng(seed + 100)
    w = graph.tensor(op.inputs[1])
    axis, oc = _channel_axis(graph)
    has_bias = len(op.inputs) > 2
    bias = graph.tensor(op.inputs[2]) if has_bias else None
    if style == "ties":
        w.data = rng.integers(-1, 2, w.shape).astype(np.int8)
        _set_scales(graph, 2.0 ** -4, 2.0 ** -6, 2.0 ** -6)
        if bias is not None:
            bias.data = rng.integers(-64, 64, oc).astype(np.int32)
    elif style == "big":
        data = np.zeros(w.shape, np.int8)
        per_channel = np.moveaxis(data, axis, 0).reshape(oc, -1)         # a view: one tap per channel
        per_channel[np.arange(oc), rng.integers(0, per_channel.shape[1], oc)] = rng.choice([-1, 1], oc)
        w.data = data
        _set_scales(graph, 2.0 ** -12, 2.0 ** -15, 2.0 ** -4)
        if bias is not None:
            half_steps = rng.integers(-60, 60, oc) * 2 + 1                # (k + 1/2) * 2^23, k in [-60, 60)
            bias.data = (half_steps * (1 << 22)).astype(np.int32)
    elif style == "extreme":
        data = np.moveaxis(w.data.copy(), axis, 0)
        dead = np.arange(oc) % 3 == 1
        data[dead] = 0
        w.data = np.ascontiguousarray(np.moveaxis(data, 0, axis))
        ws = np.broadcast_to(w.quant.scale, (oc,)).copy()
        ws[dead] = 1e-9
        ws[0] = 1e3                     # every output saturates
        if oc > 2:
            ws[2] = 1e-40               # a subnormal scale: every output is the zero point
        w.quant = Quant(ws, np.zeros(oc, np.int32), axis)
        if bias is not None:
            bias.data = np.where(dead, rng.choice([-1, 1], oc) * (1 << 30), bias.data).astype(np.int32)
    elif style != "plain":
        raise ValueError(f"unknown style {style!r}; known: {', '.join(STYLES)}")
    return validate(graph)
