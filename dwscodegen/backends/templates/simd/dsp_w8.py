"""DSP variants that keep the weights int8 in flash (half the constants of dsp.py's pre-widened int16 weights):
the entries of templates/kernels/variants.toml with isa dsp and weights int8 (never the default).

The weights stay in their natural byte order (a GEMM row padded with zeros to a multiple of 4); the kernels
load four bytes and make the two int16 pairs at run time with SXTB16 (bytes 0, 2) and SXTB16 ROR #8 (bytes 1,
3), which is exactly the lane order dsp.py gives the widened input, so the SMLAD / SMLABB / SMLATT pairs line up
as CMSIS-NN's do. An int8 weight cannot carry the requantization's power of two as dsp.py's pre-scaled int16
ones do, so the accumulator (bias with the input offset folded in, unscaled) is multiplied by it per channel
just before the requantization: `scale` in each channel's record (a compile-time constant where every channel
has the same one). The plan is the same exact one (plan_layer with no weight limit: its bound checks the
scaled accumulator), so these kernels compute what dsp.py's do, bit for bit.
"""
from __future__ import annotations

import numpy as np

from . import dsp
from . import registry
from .common import STACK_BUDGET, ConvInfo, DepthwiseRegions, RequantPlan, ceil_to, depthwise_regions



def _scale_context(plan: RequantPlan) -> dict:
    """SCALE: the one power of two of every channel (a constant in the C), or None (a word per record)."""
    uniform = bool(np.all(plan.scale == plan.scale[0]))
    return dict(SCALE=int(plan.scale[0]) if uniform else None)


def int8_rows(rows: np.ndarray) -> np.ndarray:
    """[N][K] int8 weights -> [N][K4] (zero padded to whole words of four bytes)."""
    n, k = rows.shape
    out = np.zeros((n, ceil_to(k, 4)), np.int8)
    out[:, :k] = rows
    return out


def _gemm(info: ConvInfo, ctx: dict, plan: RequantPlan, rows: np.ndarray) -> dict:
    """Per output channel: `params` [bias, requantization words (RQW), scale] and `weights` [K4] int8."""
    k = rows.shape[1]
    folded = info.bias + info.in_offset * rows.sum(axis=1)
    params = np.concatenate([folded[:, None], dsp.requant_records(info, plan), plan.scale[:, None]], axis=1)
    k4 = ceil_to(k, 4)
    out = dict(fn=ctx["fn"], title=ctx["title"], activation=ctx["activation"],
               H=info.H, W=info.W, C=info.C, OH=info.OH, OW=info.OW, OC=info.OC, KH=info.KH, KW=info.KW,
               SH=info.SH, SW=info.SW, DH=info.DH, DW=info.DW, PT=info.PT, PL=info.PL,
               K=k, K4=k4, NW=k4 // 2, NPIX=info.OH * info.OW, RS=params.shape[1],
               input_zero_point=-info.in_offset, params=params.astype(np.int32), weights=int8_rows(rows))
    out.update(dsp.requant_context(info, plan), **_scale_context(plan))
    out["constant_keys"] = ("params", "weights")
    return out


def _depthwise(info: ConvInfo, ctx: dict, plan: RequantPlan) -> dict | None:
    """dsp.py's region kernel with int8 weights: per group of 4 channels, `params` [4 requantization records,
    4 scales] and `weights` [tap][4 channels] int8 (one word per tap: SXTB16 gives lanes (c, c+2), its ROR #8
    form (c+1, c+3), as from the input word). The kernel loops over channel groups outside the regions and
    widens a group's weights once into int16 pairs in its scratch (2 * taps words), so its inner loop is dsp.py's
    (widening per tap and pixel cost it 1.25-1.37x dsp.py's instructions on M4; now 0.98-1.04x on M4 and
    M7: benchmarks/results/loop_order.md)."""
    taps = info.KH * info.KW
    planned = depthwise_regions(info)
    if planned is None or 2 * taps * 4 > STACK_BUDGET:          # the widened weights of one group
        return None
    c4 = ceil_to(info.C, 4)
    order = np.arange(c4)
    live = np.where(order < info.C, order, -1)
    records = dsp.requant_records(info, plan, live).reshape(c4 // 4, -1)
    scales = np.where(live >= 0, plan.scale[np.maximum(live, 0)], 0).reshape(c4 // 4, 4)
    w = np.zeros((taps, c4), np.int8)
    w[:, :info.C] = info.weights.reshape(taps, info.OC)
    biases = np.zeros((len(planned.windows), c4), np.int64)
    for i, window in enumerate(planned.windows):
        biases[i, :info.C] = DepthwiseRegions.folded_bias(info, window)
    out = dict(fn=ctx["fn"], title=ctx["title"], activation=ctx["activation"],
               H=info.H, W=info.W, C=info.C, C4=c4, OH=info.OH, OW=info.OW, OC=info.OC, KH=info.KH, KW=info.KW,
               SH=info.SH, SW=info.SW, DH=info.DH, DW=info.DW, PT=info.PT, PL=info.PL, TAPS=taps,
               params=np.concatenate([records, scales], axis=1).astype(np.int32),
               weights=w.reshape(taps, c4 // 4, 4).transpose(1, 0, 2).reshape(c4 // 4, 4 * taps),
               bias=biases.astype(np.int32), regions=planned.regions)
    out.update(dsp.requant_context(info, plan), **_scale_context(plan))
    out["PS"] = out["params"].shape[1]
    out["constant_keys"] = ("params", "weights", "bias")
    return out


W8_DEPTHWISE = "depthwise_conv2d_s8_dsp_w8_4c"


def select(info: ConvInfo, ctx: dict, kernel: str | None = None) -> tuple[str, dict] | None:
    """dsp.select (the int16-weight variants, the default), or exactly one of the int8-weight variants."""
    variant = registry.get(kernel) if kernel else None
    if variant is None or variant.weights != "int8":
        return dsp.select(info, ctx, kernel)
    # no weight limit: an int8 weight does not carry the plan's power of two (the accumulator does)
    return dsp.pick(info, ctx, kernel, "int8", None, _gemm, {W8_DEPTHWISE: _depthwise})
