"""float32 Conv2D / DepthwiseConv2D variants for x86 (see avx.py): vector micro-kernels, weights packed here.

- Pointwise: a register-blocked GEMM, P pixels x NV vectors of L output channels per tile, the pixel's input
  broadcast against one weight vector per output-channel vector.
- Convolution: the same GEMM over im2col patches gathered per tile (padding taps read 0.0f).
- Depthwise: L channels per vector, every tap unrolled over the output regions with the same in-bounds taps
  (common.depthwise_regions), so no tap is bounds-checked and padding costs nothing.
Every output is summed as TFLite's reference kernels sum it: from 0, product by product in [ky][kx][c] order,
each a multiply then an add (no fused multiply-add: on AVX-512 the separate add costs next to nothing, the adds
run beside the multiplies), the bias last. So the result is the interpreter's to the bit, which matters beyond
tolerance where a hybrid convolution follows: it quantizes its input, and a last-bit difference there can move a
value across a rounding boundary and the output by a whole quantization step.
"""
from __future__ import annotations

import numpy as np

from ....ir import Graph, Op
from ....qparams import is_hybrid
from .avx_common import GEMM_TILES, Level, gemm_choice, template, wanted
from .avx_s8 import STACK_BUDGET, tile_of
from .common import ConvInfo, depthwise_regions


def float_info(graph: Graph, op: Op, hybrid: bool = False) -> ConvInfo | None:
    """The layer's geometry, float bias and weights (float32; int64 of the int8 filter where `hybrid`) in a
    ConvInfo, its quantization fields unused (zero). None unless op is a float32 conv, hybrid as asked."""
    if (op.type not in ("Conv2D", "DepthwiseConv2D") or graph.op_dtype(op) != "float32"
            or is_hybrid(graph, op) != hybrid):
        return None
    x, w, y = graph.tensor(op.inputs[0]), graph.tensor(op.inputs[1]), graph.tensor(op.outputs[0])
    a = op.attrs
    oc = y.shape[3]
    depthwise = op.type == "DepthwiseConv2D"
    bias = (graph.tensor(op.inputs[2]).data.astype(np.float32) if len(op.inputs) > 2 and op.inputs[2]
            else np.zeros(oc, np.float32))
    weights = w.data.astype(np.int64 if hybrid else np.float32)
    weights = weights.reshape(w.shape[1], w.shape[2], oc) if depthwise else weights.reshape(oc, w.shape[1], w.shape[2], -1)
    pt, pb, pl, pr = a.pad
    zeros = np.zeros(oc, np.int64)
    return ConvInfo(
        depthwise=depthwise, H=x.shape[1], W=x.shape[2], C=x.shape[3], OH=y.shape[1], OW=y.shape[2], OC=oc,
        KH=w.shape[1], KW=w.shape[2], SH=a.stride[0], SW=a.stride[1], DH=a.dilation[0], DW=a.dilation[1],
        PT=pt, PB=pb, PL=pl, PR=pr, MULT=a.depth_multiplier if depthwise else 1, weights=weights, bias=bias,
        in_offset=0, out_offset=0, multiplier=zeros, shift=zeros, act_min=0, act_max=0)


def _common(level: Level, info: ConvInfo, ctx: dict) -> dict:
    return dict(fn=ctx["fn"], title=ctx["title"], activation=ctx["activation"], act_low=ctx["act_low"],
                act_high=ctx["act_high"], isa=level.name, L=level.lanes, H=info.H, W=info.W, C=info.C,
                OH=info.OH, OW=info.OW, OC=info.OC, KH=info.KH, KW=info.KW, SH=info.SH, SW=info.SW, DH=info.DH,
                DW=info.DW, PT=info.PT, PL=info.PL)


def gemm(level: Level, info: ConvInfo, ctx: dict, name: str) -> tuple[str, dict] | None:
    rows = info.weights.reshape(info.OC, -1)               # [OC][K], [ky][kx][c] order
    k = rows.shape[1]
    lanes = level.lanes
    nvec = -(-info.OC // lanes)
    pixels, nv = tile_of(name, lanes)
    if not info.pointwise and pixels * k * 4 > STACK_BUDGET:
        return None
    padded = np.zeros((nvec * lanes, k), np.float32)
    padded[:info.OC] = rows
    packed = padded.reshape(nvec, lanes, k).transpose(0, 2, 1).reshape(nvec, -1)    # [vector][k][lane]
    bias = np.zeros(nvec * lanes, np.float32)
    bias[:info.OC] = info.bias
    out = _common(level, info, ctx)
    out.update(K=k, NPIX=info.OH * info.OW, NVEC=nvec, P=pixels, NV=min(nv, nvec), direct=info.pointwise,
               weights=packed, bias=bias.reshape(nvec, lanes), constant_keys=("weights", "bias"))
    return template(name), out


def depthwise(level: Level, info: ConvInfo, ctx: dict, name: str) -> tuple[str, dict] | None:
    planned = depthwise_regions(info)
    if planned is None:
        return None
    lanes = level.lanes
    cv = -(-info.C // lanes)
    taps = info.KH * info.KW
    w = np.zeros((taps, cv * lanes), np.float32)
    w[:, :info.C] = info.weights.reshape(taps, info.OC)
    bias = np.zeros(cv * lanes, np.float32)
    bias[:info.C] = info.bias
    out = _common(level, info, ctx)
    out.update(CV=cv, TAPS=taps, weights=w, bias=bias, regions=planned.regions, constant_keys=("weights", "bias"))
    return template(name), out


def _names(level: Level) -> dict[str, tuple[str, ...]]:
    isa = level.name
    tiles = GEMM_TILES["f32", isa]
    return dict(pointwise=tuple(f"pointwise_conv2d_f32_{isa}_{t}" for t in tiles),
                conv=tuple(f"conv2d_f32_{isa}_im2col_{t}" for t in tiles),
                depthwise=(f"depthwise_conv2d_f32_{isa}_{level.lanes}c",))


def variants(level: Level) -> tuple[str, ...]:
    return sum(_names(level).values(), ())


def select(level: Level, graph: Graph, op: Op, ctx: dict, kernel: str | None) -> tuple[str, dict] | None:
    info = float_info(graph, op)
    if info is None:
        return None
    names = _names(level)
    if info.depthwise:
        return depthwise(level, info, ctx, names["depthwise"][0]) if wanted(names["depthwise"][0], kernel) else None
    name = gemm_choice(names["pointwise" if info.pointwise else "conv"], level.lanes, info.OC, kernel)
    return None if name is None else gemm(level, info, ctx, name)
