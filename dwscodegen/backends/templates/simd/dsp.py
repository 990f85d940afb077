"""Armv7E-M / Armv8-M DSP variants (feature `dsp`: Cortex-M4, M7, M33): SMLAD on int16 pairs.

Weights are constants, so they are reordered, sign-extended to int16 and scaled (by the power of two of the
requantization plan) here, in the lane order SXTB16 produces from four input bytes: word 2g holds
(w[4g], w[4g+2]) and word 2g+1 holds (w[4g+1], w[4g+3]). The input offset is always folded into the bias:
padding taps either read the input zero point (im2col patches, so (x + offset) * w = 0) or are skipped
with a bias that only folds the taps that are read (depthwise regions).
"""
from __future__ import annotations

import numpy as np

from .common import STACK_BUDGET, ConvInfo, DepthwiseRegions, RequantPlan, depthwise_regions, requant_plan

INT16_LIMIT = 32767


def pack_pairs(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Two int16 lanes per int32 word: lo in bits 0..15, hi in 16..31 (little-endian halfwords)."""
    word = (lo.astype(np.int64) & 0xFFFF) | ((hi.astype(np.int64) & 0xFFFF) << 16)
    return np.where(word >= 1 << 31, word - (1 << 32), word).astype(np.int32)


def sxtb16_rows(rows: np.ndarray) -> np.ndarray:
    """[N][K] int values -> [N][K4 / 2] words in SXTB16 lane order (K padded with zeros to K4)."""
    n, k = rows.shape
    k4 = -(-k // 4) * 4
    padded = np.zeros((n, k4), np.int64)
    padded[:, :k] = rows
    groups = padded.reshape(n, k4 // 4, 4)
    even = pack_pairs(groups[:, :, 0], groups[:, :, 2])
    odd = pack_pairs(groups[:, :, 1], groups[:, :, 3])
    return np.stack([even, odd], axis=2).reshape(n, k4 // 2)


def requant_records(info: ConvInfo, plan: RequantPlan, order: np.ndarray | None = None) -> np.ndarray:
    """Per-channel requantization words read by <fn>_requantize(acc, rq): round (m, rc, e), noround (m, rc),
    generic (m, shift). `order` lists the channel of each record (-1: padding, all zero)."""
    idx = np.arange(info.OC) if order is None else order
    if plan.mode == "round":
        cols = [plan.multiplier, plan.rc, plan.rshift]
    elif plan.mode == "noround":
        cols = [plan.multiplier, plan.rc]
    else:
        cols = [plan.multiplier, info.shift]
    table = np.stack(cols, axis=1)
    return np.where(idx[:, None] >= 0, table[np.maximum(idx, 0)], 0).astype(np.int64)


def requant_context(info: ConvInfo, plan: RequantPlan) -> dict:
    return dict(rq_mode=plan.mode, output_offset=info.out_offset, act_min=info.act_min, act_max=info.act_max,
                RQW=3 if plan.mode == "round" else 2)


def _gemm_common(info: ConvInfo, ctx: dict, plan: RequantPlan, rows: np.ndarray) -> dict:
    """rows: [OC][K] int weights in patch order. Each output channel's constants are one row of
    `weights`: [bias, requantization words (RQW), NW weight words]."""
    scale = plan.scale
    k = rows.shape[1]
    folded = (info.bias + info.in_offset * rows.sum(axis=1)) * scale
    words = sxtb16_rows(rows * scale[:, None])
    packed = np.concatenate([folded[:, None], requant_records(info, plan), words], axis=1)
    out = dict(fn=ctx["fn"], title=ctx["title"], activation=ctx["activation"],
               H=info.H, W=info.W, C=info.C, OH=info.OH, OW=info.OW, OC=info.OC, KH=info.KH, KW=info.KW,
               SH=info.SH, SW=info.SW, DH=info.DH, DW=info.DW, PT=info.PT, PL=info.PL,
               K=k, K4=-(-k // 4) * 4, NW=words.shape[1], NPIX=info.OH * info.OW, RS=packed.shape[1],
               input_zero_point=-info.in_offset, weights=packed.astype(np.int32))
    out.update(requant_context(info, plan))
    out["constant_keys"] = ("weights",)
    return out


def depthwise_words(info: ConvInfo, plan: RequantPlan) -> np.ndarray:
    """int32 [group of 4 channels][tap][2]: the scaled weights as int16 pairs, the even lanes (c, c+2) then the
    odd lanes (c+1, c+3) of each tap (channels padded with zeros to a whole group)."""
    c4 = -(-info.C // 4) * 4
    taps = info.KH * info.KW
    wp = np.zeros((taps, c4), np.int64)
    wp[:, :info.C] = info.weights.reshape(taps, info.OC) * plan.scale[None, :]
    g = wp.reshape(taps, c4 // 4, 4).transpose(1, 0, 2)                 # [group][tap][4]
    return np.stack([pack_pairs(g[:, :, 0], g[:, :, 2]), pack_pairs(g[:, :, 1], g[:, :, 3])], axis=2)


def depthwise_blocks(info: ConvInfo, plan: RequantPlan) -> np.ndarray:
    """int64 [group of 4 channels][4 * RQW + 2 * taps]: the group's requantization records, then its weight
    words (depthwise_words), so that one pointer walks all of a group's constants."""
    c4 = -(-info.C // 4) * 4
    order = np.arange(c4)
    records = requant_records(info, plan, np.where(order < info.C, order, -1)).reshape(c4 // 4, -1)
    return np.concatenate([records, depthwise_words(info, plan).reshape(c4 // 4, -1)], axis=1)


def _depthwise(info: ConvInfo, ctx: dict, plan: RequantPlan) -> tuple[str, dict] | None:
    planned = depthwise_regions(info)
    if planned is None:
        return None
    c4 = -(-info.C // 4) * 4
    taps = info.KH * info.KW
    scale = plan.scale
    blocks = depthwise_blocks(info, plan)
    biases = np.zeros((len(planned.windows), c4), np.int64)
    for i, window in enumerate(planned.windows):
        biases[i, :info.C] = DepthwiseRegions.folded_bias(info, window) * scale
    out = dict(fn=ctx["fn"], title=ctx["title"], activation=ctx["activation"],
               H=info.H, W=info.W, C=info.C, C4=c4, OH=info.OH, OW=info.OW, OC=info.OC, KH=info.KH, KW=info.KW,
               SH=info.SH, SW=info.SW, DH=info.DH, DW=info.DW, PT=info.PT, PL=info.PL, TAPS=taps,
               weights=blocks.astype(np.int32), BS=blocks.shape[1],
               bias=biases.astype(np.int32), regions=planned.regions)
    out.update(requant_context(info, plan))
    out["constant_keys"] = ("weights", "bias")
    return "kernels/depthwise_conv2d_s8_dsp_4c.c.j2", out


VARIANTS = ("pointwise_conv2d_s8_dsp_4x2", "pointwise_conv2d_s8_dsp_1x2", "conv2d_s8_dsp_im2col_2x2",
            "conv2d_s8_dsp_im2col_1x2", "depthwise_conv2d_s8_dsp_4c")


def select(info: ConvInfo, ctx: dict, kernel: str | None = None) -> tuple[str, dict] | None:
    """The preferred variant, or exactly `kernel` (a name from VARIANTS) when it applies."""
    plan = requant_plan(info, prescale_doubling=True, weight_limit=INT16_LIMIT)
    if plan is None:
        return None
    if info.depthwise:
        chosen = _depthwise(info, ctx, plan)
        return chosen if kernel is None or (chosen and chosen[0] == f"kernels/{kernel}.c.j2") else None
    rows = info.weights.reshape(info.OC, -1)
    patch = 2 * (-(-rows.shape[1] // 4) * 4)         # bytes of one widened patch
    if info.pointwise:
        tiles = [(4, "pointwise_conv2d_s8_dsp_4x2"), (1, "pointwise_conv2d_s8_dsp_1x2")]
        extra = 0
    else:
        tiles = [(2, "conv2d_s8_dsp_im2col_2x2"), (1, "conv2d_s8_dsp_im2col_1x2")]
        extra = rows.shape[1]                        # the int8 patch the widened one is built from
    for pixels, name in tiles:
        if pixels * patch + extra <= STACK_BUDGET and kernel in (None, name):
            return f"kernels/{name}.c.j2", _gemm_common(info, ctx, plan, rows)
    return None
