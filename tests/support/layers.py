"""Seeded single-layer graphs for tests: one conv-like op or one Add, int8 or float32.

Quantization parameters are chosen the way a calibrating quantizer would, so outputs use most of the
int8 range (saturating everything would make a bit-exact test weak).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dwscodegen.ir import (Activation, AddAttrs, Conv2DAttrs, Graph, Op, Quant, Tensor, conv_output_hw,
                           same_padding)
from dwscodegen.validate import validate


@dataclass(frozen=True)
class ConvCase:
    kind: str                      # "DepthwiseConv2D" | "Conv2D"
    in_shape: tuple[int, int, int, int]
    kernel: tuple[int, int]
    out_channels: int = 0          # Conv2D only
    multiplier: int = 1            # DepthwiseConv2D only
    stride: tuple[int, int] = (1, 1)
    dilation: tuple[int, int] = (1, 1)
    padding: object = "SAME"       # "SAME" | "VALID" | (top, bottom, left, right)
    activation: str = "none"       # none | relu | relu6 | clamp
    per_channel: bool = True
    bias: bool = True
    in_zp: int = -7
    out_zp: int = 5

    def id(self) -> str:
        pad = self.padding if isinstance(self.padding, str) else "x".join(map(str, self.padding))
        return (f"{self.kind[:2]}-{'x'.join(map(str, self.in_shape[1:]))}-k{self.kernel[0]}x{self.kernel[1]}"
                f"-s{self.stride[0]}{self.stride[1]}-d{self.dilation[0]}{self.dilation[1]}-{pad}"
                f"-m{self.multiplier}-oc{self.out_channels}-{self.activation}"
                f"{'-pc' if self.per_channel else ''}{'' if self.bias else '-nobias'}")


def resolve_padding(case: ConvCase) -> tuple[int, int, int, int]:
    if case.padding == "VALID":
        return (0, 0, 0, 0)
    if case.padding == "SAME":
        return (same_padding(case.in_shape[1], case.kernel[0], case.stride[0], case.dilation[0])
                + same_padding(case.in_shape[2], case.kernel[1], case.stride[1], case.dilation[1]))
    return tuple(case.padding)


def _activation(kind: str) -> Activation:
    """relu_n1_to_1 is TFLite's name for clamp [-1, 1]; plain "clamp" tests odd bounds."""
    bounds = {"clamp": (-1.5, 2.5), "relu_n1_to_1": (-1.0, 1.0)}
    return Activation("clamp", *bounds[kind]) if kind in bounds else Activation(kind)


def conv_graph(case: ConvCase, dtype: str, seed: int = 0) -> Graph:
    rng = np.random.default_rng(seed)
    n, h, w, c = case.in_shape
    kh, kw = case.kernel
    dw = case.kind == "DepthwiseConv2D"
    oc = c * case.multiplier if dw else case.out_channels
    w_shape = (1, kh, kw, oc) if dw else (oc, kh, kw, c)
    attrs = Conv2DAttrs(stride=case.stride, dilation=case.dilation, pad=resolve_padding(case),
                        depth_multiplier=case.multiplier if dw else 1, activation=_activation(case.activation))
    oh, ow = conv_output_hw((h, w), (kh, kw), attrs)
    taps = kh * kw * (1 if dw else c)
    x = Tensor("x", case.in_shape, dtype)
    y = Tensor("y", (n, oh, ow, oc), dtype)
    if dtype == "float32":
        wt = Tensor("w", w_shape, dtype, data=rng.normal(0, 1 / np.sqrt(taps), w_shape).astype(np.float32))
        b = Tensor("b", (oc,), dtype, data=rng.normal(0, 0.2, oc).astype(np.float32))
    else:
        axis = 3 if dw else 0
        n_scales = oc if case.per_channel else 1
        w_scale = np.float32(rng.uniform(0.002, 0.02, n_scales)).astype(np.float64)
        in_scale = float(np.float32(rng.uniform(0.01, 0.05)))
        # Spread of the int32 accumulator, to pick an output scale that uses the int8 range.
        acc_std = np.sqrt(taps) * 74 * 64 * float(np.mean(w_scale)) * in_scale
        out_scale = float(np.float32(acc_std / 40))
        x.quant = Quant(np.array([in_scale]), np.array([case.in_zp], np.int32))
        y.quant = Quant(np.array([out_scale]), np.array([case.out_zp], np.int32))
        wt = Tensor("w", w_shape, "int8", data=rng.integers(-127, 128, w_shape, dtype=np.int8),
                    quant=Quant(w_scale, np.zeros(n_scales, np.int32), axis if case.per_channel else None))
        b = Tensor("b", (oc,), "int32", data=rng.integers(-3000, 3000, oc, dtype=np.int32))
    inputs = ["x", "w", "b"] if case.bias else ["x", "w"]
    tensors = {t.name: t for t in (x, wt, b, y)}
    op = Op(0, "layer", case.kind, inputs, ["y"], attrs)
    return validate(Graph("layer_under_test", tensors, [op], ["x"], ["y"], source="<test>"))


def add_graph(shape: tuple[int, ...], dtype: str, activation: str = "none", seed: int = 0) -> Graph:
    rng = np.random.default_rng(seed)
    tensors = {n: Tensor(n, shape, dtype) for n in ("a", "b", "y")}
    if dtype == "int8":
        for name, zp in (("a", -3), ("b", 11), ("y", -20)):
            scale = float(np.float32(rng.uniform(0.01, 0.1)))
            tensors[name].quant = Quant(np.array([scale]), np.array([zp], np.int32))
    op = Op(0, "add", "Add", ["a", "b"], ["y"], AddAttrs(_activation(activation)))
    return validate(Graph("add_under_test", tensors, [op], ["a", "b"], ["y"], source="<test>"))


# The layer matrix every backend is verified on (tests/test_layer_matrix.py).
DW, CONV = "DepthwiseConv2D", "Conv2D"
MATRIX = [
    ConvCase(DW, (1, 8, 8, 8), (3, 3)),
    ConvCase(DW, (1, 8, 8, 8), (3, 3), stride=(2, 2), activation="relu6"),
    ConvCase(DW, (1, 7, 5, 3), (3, 3), activation="relu"),
    ConvCase(DW, (1, 7, 5, 3), (3, 3), padding="VALID", stride=(2, 1)),
    ConvCase(DW, (1, 9, 9, 4), (3, 3), dilation=(2, 2), activation="relu6"),
    ConvCase(DW, (1, 7, 5, 3), (3, 3), multiplier=2, stride=(2, 2)),
    ConvCase(DW, (1, 6, 6, 5), (5, 5), padding=(2, 1, 0, 3), activation="clamp"),
    ConvCase(DW, (1, 5, 5, 4), (3, 3), padding=(3, 0, 0, 3), bias=False, per_channel=False, in_zp=-128),
    ConvCase(DW, (1, 10, 4, 2), (4, 2), dilation=(2, 3), padding="SAME", multiplier=3),
    ConvCase(CONV, (1, 8, 8, 8), (1, 1), out_channels=16, activation="relu6"),
    ConvCase(CONV, (1, 9, 7, 6), (1, 1), out_channels=5, stride=(2, 2)),
    ConvCase(CONV, (1, 7, 5, 3), (3, 3), out_channels=4, stride=(2, 2), activation="relu"),
    ConvCase(CONV, (1, 49, 10, 1), (10, 4), out_channels=8, stride=(2, 2), activation="relu"),
    ConvCase(CONV, (1, 8, 8, 4), (3, 3), out_channels=6, dilation=(2, 2), padding="VALID", per_channel=False),
    ConvCase(CONV, (1, 6, 6, 3), (1, 1), out_channels=4, padding=(1, 0, 1, 0), activation="clamp"),
]


def random_conv_case(rng, batches=(1,), max_channels: int = 24) -> ConvCase:
    """A seeded random conv-like layer for fuzz tests: depthwise or conv (half of them 1x1), odd sizes, strides,
    dilations, padding, activations, zero points and per-tensor or per-channel weights."""
    kind = "DepthwiseConv2D" if rng.random() < 0.4 else "Conv2D"
    k = (1, 1) if kind == "Conv2D" and rng.random() < 0.5 else tuple(int(v) for v in rng.choice([1, 2, 3, 5], 2))
    stride = tuple(int(v) for v in rng.choice([1, 2], 2))
    dilation = (1, 1) if rng.random() < 0.7 else (2, 2)
    shape = (int(rng.choice(batches)), int(rng.integers(1, 10)), int(rng.integers(1, 10)),
             int(rng.integers(1, max_channels)))
    padding = ["SAME", "VALID"][int(rng.integers(0, 2))]
    if shape[1] < (k[0] - 1) * dilation[0] + 1 or shape[2] < (k[1] - 1) * dilation[1] + 1:
        padding = "SAME"
    return ConvCase(kind, shape, k, out_channels=int(rng.integers(1, 20)) if kind == "Conv2D" else 0, stride=stride,
                    dilation=dilation, padding=padding, activation=str(rng.choice(["none", "relu", "relu6", "clamp"])),
                    per_channel=bool(rng.random() < 0.7), in_zp=int(rng.integers(-128, 128)),
                    out_zp=int(rng.integers(-128, 128)))


def assert_verified(report) -> None:
    """A verify report that matched its oracle, or the outputs and the first layer that differ."""
    assert report.ok, [c.summary() for c in report.comparisons] + [report.first_bad_layer]


def with_constant_channels(case: ConvCase, seed: int = 9):
    """The case's graph with some output channels made constant the way trained models have them: all-zero
    weights with a converter-made weight scale that gives a right shift of 24 to 31 and a bias near +-2^30
    (dead channels), and one channel with live weights but a multiplier that rounds to 0 (shift below -31)."""
    graph = conv_graph(case, "int8", seed=seed)
    rng = np.random.default_rng(seed)
    x, w, y, b = graph.tensor("x"), graph.tensor("w"), graph.tensor("y"), graph.tensor("b")
    oc = y.shape[3]
    dead = rng.choice(oc, max(2, oc // 5), replace=False)
    ratio = float(np.float32(x.quant.scale[0])) / float(np.float32(y.quant.scale[0]))
    scales = np.array(w.quant.scale, np.float64)
    for i, c in enumerate(dead):
        shift = -24 - i % 8
        scales[c] = float(np.float32(0.7 * 2.0 ** shift / ratio))
        if case.kind == "DepthwiseConv2D":
            w.data[..., c] = 0
        else:
            w.data[c] = 0
        b.data[c] = (1 if i % 2 else -1) * ((1 << 30) - int(rng.integers(0, 1 << 20)))
    live = [c for c in range(oc) if c not in set(dead)]
    scales[live[0]] = float(np.float32(1e-12 / ratio))
    w.quant = Quant(scales, w.quant.zero_point, w.quant.axis)
    return graph, dead, live[0]
