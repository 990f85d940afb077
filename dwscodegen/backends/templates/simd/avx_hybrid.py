"""Hybrid Conv2D for x86 (float32 activations, int8 weights: TFLite's dynamic-range quantization), see avx.py.

The kernel does what the portable conv2d_hybrid_f32 does, vectorized: it quantizes the input per run into a
static int8 buffer (symmetric for per-tensor weights, asymmetric with a nudged offset for per-channel ones,
exactly as TFLite), runs the int8 GEMM of avx_s8.py (the same templates, k.hybrid) and scales the int32 sums
back to float32 in TFLite's order of float operations. The run-time offset enters through where each
channel's sum starts, -(shift + offset) * sum(w) (shift = 128 for vpdpbusd's unsigned input, 0 on AVX2),
and through the padding taps of im2col patches, which read the offset and so add nothing.
"""
from __future__ import annotations

import numpy as np

from ....ir import Graph, Op
from ....qparams import hybrid_per_channel
from .avx_common import GEMM_TILES, Level, gemm_choice, template
from .avx_s8 import gemm_fits, gemm_shape, pack_gemm
from .avx_f32 import float_info
from .common import INT32_MAX


def _rows(values: np.ndarray, nvec: int, lanes: int, dtype) -> np.ndarray:
    out = np.zeros(nvec * lanes, dtype)
    out[:len(values)] = values
    return out.reshape(nvec, lanes)


def _names(level: Level) -> dict[str, tuple[str, ...]]:
    isa = level.s8_name
    tiles = GEMM_TILES["s8", isa]
    return dict(pointwise=tuple(f"pointwise_conv2d_hybrid_f32_{isa}_{t}" for t in tiles),
                conv=tuple(f"conv2d_hybrid_f32_{isa}_im2col_{t}" for t in tiles))


def variants(level: Level) -> tuple[str, ...]:
    return sum(_names(level).values(), ())


def select(level: Level, graph: Graph, op: Op, ctx: dict, kernel: str | None) -> tuple[str, dict] | None:
    info = float_info(graph, op, hybrid=True)
    if info is None or info.depthwise:
        return None
    w = graph.tensor(op.inputs[1])
    if np.any(np.asarray(w.quant.zero_point) != 0):
        return None
    name = gemm_choice(_names(level)["pointwise" if info.pointwise else "conv"], level.lanes, info.OC, kernel)
    if name is None:
        return None
    rows = info.weights.reshape(info.OC, -1)
    packed, kp, nvec = pack_gemm(level, rows)
    # Partial sums: the start, |(shift + offset) * sum(w)| <= 255 * sum|w|, plus up to 255 * sum|w| (unsigned
    # inputs) or 128 * sum|w| (int16 ones): inside int32 for any run-time offset.
    if not gemm_fits(level, info, name, kp) or np.any(510 * np.abs(rows).sum(axis=1) > INT32_MAX):
        return None
    lanes = level.lanes
    x = graph.tensor(op.inputs[0])
    out = dict(fn=ctx["fn"], title=ctx["title"], activation=ctx["activation"], act_low=ctx["act_low"],
               act_high=ctx["act_high"], isa=level.name, L=lanes, vnni=level.vnni, hybrid=True,
               per_channel=hybrid_per_channel(w.quant.scale), N=x.shape[1] * x.shape[2] * x.shape[3],
               H=info.H, W=info.W, C=info.C, OH=info.OH, OW=info.OW, OC=info.OC, KH=info.KH, KW=info.KW,
               SH=info.SH, SW=info.SW, DH=info.DH, DW=info.DW, PT=info.PT, PL=info.PL,
               weights=packed, wsum=_rows(rows.sum(axis=1), nvec, lanes, np.int32),
               scale=_rows(np.broadcast_to(w.quant.scale.astype(np.float32), (info.OC,)), nvec, lanes, np.float32),
               bias=_rows(info.bias, nvec, lanes, np.float32), constant_keys=("weights", "wsum", "scale", "bias"))
    out.update(gemm_shape(level, info, name, rows.shape[1], kp, nvec))
    return template(name), out
