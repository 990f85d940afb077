"""Armv7E-M / Armv8-M DSP variants (feature `dsp`: Cortex-M4, M7, M33): SMLAD on int16 pairs.

Weights are constants, so they are reordered, sign-extended to int16 and scaled (by the power of two of the
requantization plan) here, in the lane order SXTB16 produces from four input bytes: word 2g holds
(w[4g], w[4g+2]) and word 2g+1 holds (w[4g+1], w[4g+3]). The input offset is always folded into the bias:
padding taps either read the input zero point (im2col patches, so (x + offset) * w = 0) or are skipped
with a bias that only folds the taps that are read (depthwise regions).
"""
from __future__ import annotations

import numpy as np

from . import registry
from .common import STACK_BUDGET, ConvInfo, DepthwiseRegions, RequantPlan, ceil_to, depthwise_regions, plan_layer
from .planar import pairs_plan
from .tiles import TAP_CHUNK, lane_channels, tap_note, tap_plan, tile_plan

INT16_LIMIT = 32767


def pack_pairs(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Two int16 lanes per int32 word: lo in bits 0..15, hi in 16..31 (little-endian halfwords)."""
    word = (lo.astype(np.int64) & 0xFFFF) | ((hi.astype(np.int64) & 0xFFFF) << 16)
    return np.where(word >= 1 << 31, word - (1 << 32), word).astype(np.int32)


def sxtb16_rows(rows: np.ndarray) -> np.ndarray:
    """[N][K] int values -> [N][K4 / 2] words in SXTB16 lane order (K padded with zeros to K4)."""
    n, k = rows.shape
    k4 = ceil_to(k, 4)
    padded = np.zeros((n, k4), np.int64)
    padded[:, :k] = rows
    groups = padded.reshape(n, k4 // 4, 4)
    even = pack_pairs(groups[:, :, 0], groups[:, :, 2])
    odd = pack_pairs(groups[:, :, 1], groups[:, :, 3])
    return np.stack([even, odd], axis=2).reshape(n, k4 // 2)


def requant_records(info: ConvInfo, plan: RequantPlan, order: np.ndarray | None = None) -> np.ndarray:
    """Per-channel requantization words read by <fn>_requantize(acc, rq): round (m, rc, e), mixed (m, rc, e,
    sign mask: -1 where e >= 1), noround (m, rc), generic (m, shift), onnx (the float32 scale's bits). `order`
    lists the channel of each record (-1: padding, all zero)."""
    idx = np.arange(info.OC) if order is None else order
    if plan.mode == "onnx":
        cols = [plan.multiplier]
    elif plan.mode == "round":
        cols = [plan.multiplier, plan.rc, plan.rshift]
    elif plan.mode == "mixed":
        cols = [plan.multiplier, plan.rc, plan.rshift, np.where(plan.rshift > 0, -1, 0)]
    elif plan.mode == "noround":
        cols = [plan.multiplier, plan.rc]
    else:
        cols = [plan.multiplier, info.shift]
    table = np.stack(cols, axis=1)
    return np.where(idx[:, None] >= 0, table[np.maximum(idx, 0)], 0).astype(np.int64)


def requant_context(info: ConvInfo, plan: RequantPlan) -> dict:
    return dict(rq_mode=plan.mode, output_offset=info.out_offset, act_min=info.act_min, act_max=info.act_max,
                RQW={"round": 3, "mixed": 4, "onnx": 1}.get(plan.mode, 2))


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
               K=k, K4=ceil_to(k, 4), NW=words.shape[1], NPIX=info.OH * info.OW, RS=packed.shape[1],
               input_zero_point=-info.in_offset, weights=packed.astype(np.int32))
    out.update(requant_context(info, plan))
    out["constant_keys"] = ("weights",)
    return out


def depthwise_words(info: ConvInfo, plan: RequantPlan) -> np.ndarray:
    """int32 [group of 4 channels][tap][2]: the scaled weights as int16 pairs, the even lanes (c, c+2) then the
    odd lanes (c+1, c+3) of each tap (channels padded with zeros to a whole group)."""
    c4 = ceil_to(info.C, 4)
    taps = info.KH * info.KW
    wp = np.zeros((taps, c4), np.int64)
    wp[:, :info.C] = info.weights.reshape(taps, info.OC) * plan.scale[None, :]
    g = wp.reshape(taps, c4 // 4, 4).transpose(1, 0, 2)                 # [group][tap][4]
    return np.stack([pack_pairs(g[:, :, 0], g[:, :, 2]), pack_pairs(g[:, :, 1], g[:, :, 3])], axis=2)


def depthwise_blocks(info: ConvInfo, plan: RequantPlan) -> np.ndarray:
    """int64 [group of 4 channels][4 * RQW + 2 * taps]: the group's requantization records, then its weight
    words (depthwise_words), so that one pointer walks all of a group's constants."""
    c4 = ceil_to(info.C, 4)
    order = np.arange(c4)
    records = requant_records(info, plan, np.where(order < info.C, order, -1)).reshape(c4 // 4, -1)
    return np.concatenate([records, depthwise_words(info, plan).reshape(c4 // 4, -1)], axis=1)


def _depthwise(info: ConvInfo, ctx: dict, plan: RequantPlan) -> dict | None:
    planned = depthwise_regions(info)
    if planned is None:
        return None
    c4 = ceil_to(info.C, 4)
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
    return out


def _depthwise_padded(info: ConvInfo, ctx: dict, plan: RequantPlan) -> dict | None:
    """Any depthwise layer, through a padded copy of each tile's input window (simd/tiles.py). An even
    multiplier gives output channels 4g, 4g + 1 one input channel and 4g + 2, 4g + 3 another: one buffer word
    per pixel (SMLAxy picks the halves); otherwise one word for the even and one for the odd lanes."""
    pair = info.MULT % 2 == 0
    pix = 1 if pair else 2
    tiles = tile_plan(info, 4 * pix)
    if tiles is None:
        return None
    g4 = -(-info.OC // 4)
    taps = info.KH * info.KW
    w = np.zeros((taps, 4 * g4), np.int64)
    w[:, :info.OC] = info.weights.reshape(taps, info.OC) * plan.scale[None, :]
    g = w.reshape(taps, g4, 4).transpose(1, 0, 2)                        # [group][tap][lane]
    (a, b), (c, e) = ((0, 1), (2, 3)) if pair else ((0, 2), (1, 3))
    words = np.stack([pack_pairs(g[:, :, a], g[:, :, b]), pack_pairs(g[:, :, c], g[:, :, e])], axis=2)
    order = np.arange(4 * g4)
    records = requant_records(info, plan, np.where(order < info.OC, order, -1)).reshape(g4, -1)
    bias = np.zeros(4 * g4, np.int64)
    bias[:info.OC] = (info.bias + info.in_offset * info.weight_sum()) * plan.scale
    zp = np.int64(-info.in_offset)
    out = dict(fn=ctx["fn"], title=ctx["title"], activation=ctx["activation"],
               H=info.H, W=info.W, C=info.C, OH=info.OH, OW=info.OW, OC=info.OC, KH=info.KH, KW=info.KW,
               SH=info.SH, SW=info.SW, DH=info.DH, DW=info.DW, PT=info.PT, PL=info.PL, MULT=info.MULT, TAPS=taps,
               pair=pair, PIX=pix, ROW=tiles.COLS * pix, WT=2, T="int32_t", WTYPE="int32_t", ROWPTR=False,
               WSTREAM=False, TAP_CHUNK=TAP_CHUNK, taps=tap_plan(info.KH, info.KW), tap_note=tap_note(info.KH, info.KW),
               input_zero_point=int(zp), FILL=int(pack_pairs(zp, zp)),
               lane_exprs=[f"(4 * g + {j}) / {info.MULT}" if j else f"4 * g / {info.MULT}" for j in range(4)],
               group_lanes=lane_channels(info, 4),
               params=np.concatenate([bias.reshape(g4, 4), records], axis=1).astype(np.int32),
               weights=words.reshape(g4, -1).astype(np.int32), **tiles.context(info))
    out.update(requant_context(info, plan))
    out["constant_keys"] = ("params", "weights")
    return out


def _depthwise_pairs(info: ConvInfo, ctx: dict, plan: RequantPlan) -> dict | None:
    """Any depthwise layer whose kernel rows (columns for Kx1) have at most 2 * planar.MAX_PAIRS taps: one
    channel at a time, taps in pairs (simd/planar.py)."""
    pp = pairs_plan(info)
    if pp is None:
        return None
    w = info.weights.reshape(info.KH, info.KW, info.OC) * plan.scale[None, None, :]
    w = w.transpose(2, 1, 0) if pp.transposed else w.transpose(2, 0, 1)      # [channel][row B][tap along A]
    padded = np.zeros((info.OC, pp.B.K, 2 * pp.PAIRS), np.int64)
    padded[:, :, :pp.A.K] = w
    words = pack_pairs(padded[:, :, 0::2], padded[:, :, 1::2]).reshape(info.OC, -1)
    out = dict(fn=ctx["fn"], title=ctx["title"], activation=ctx["activation"],
               H=info.H, W=info.W, C=info.C, OH=info.OH, OW=info.OW, OC=info.OC, KH=info.KH, KW=info.KW,
               SH=info.SH, SW=info.SW, DH=info.DH, DW=info.DW, PT=info.PT, PL=info.PL, MULT=info.MULT,
               input_zero_point=-info.in_offset, weights=words.astype(np.int32),
               bias=((info.bias + info.in_offset * info.weight_sum()) * plan.scale).astype(np.int32),
               rq=requant_records(info, plan).astype(np.int32), **pp.context())
    out.update(requant_context(info, plan))
    out["constant_keys"] = ("bias", "rq", "weights")
    return out


def _depthwise_preference(info: ConvInfo) -> tuple[str, ...]:
    """The depthwise variants, preferred first, from the QEMU counts of benchmarks/depthwise_matrix.py: taps in
    pairs for 1xK / Kx1 kernels; the region kernel where it applies, except with at most 4 channel groups and a
    dilated or over-3x3 window (gcc unrolls the few channel groups completely, and spills); else the padded one."""
    if (info.KH == 1) != (info.KW == 1):
        return PAIRS, PADDED, REGIONS
    if info.C <= 16 and (info.DH > 1 or info.DW > 1 or info.KH * info.KW > 9):
        return PADDED, REGIONS, PAIRS
    return REGIONS, PADDED, PAIRS


REGIONS, PADDED, PAIRS = ("depthwise_conv2d_s8_dsp_4c", "depthwise_conv2d_s8_dsp_padded_4c",
                          "depthwise_conv2d_s8_dsp_pairs_1c")
DEPTHWISE = {REGIONS: _depthwise, PADDED: _depthwise_padded, PAIRS: _depthwise_pairs}


def gemm_fits(variant: registry.Variant, info: ConvInfo) -> bool:
    """Whether the tile's widened patches (and, for im2col, the int8 patch they are built from) fit STACK_BUDGET."""
    k = info.KH * info.KW * info.C
    return variant.pixels * 2 * ceil_to(k, 4) + (0 if info.pointwise else k) <= STACK_BUDGET


def pick(info: ConvInfo, ctx: dict, kernel: str | None, weights: str, weight_limit: int | None,
         gemm, depthwise: dict) -> tuple[str, dict] | None:
    """The preferred DSP variant storing `weights` (int16 / int8), or exactly `kernel` when it applies: gemm(info,
    ctx, plan, rows) builds the GEMM variants' context, depthwise maps the depthwise variants to their builders
    (ordered by _depthwise_preference where they have several)."""
    planned = plan_layer(info, prescale_doubling=True, weight_limit=weight_limit)
    if planned is None:
        return None
    info, plan = planned
    if info.depthwise:
        for name in [n for n in _depthwise_preference(info) if n in depthwise] or list(depthwise):
            if kernel in (None, name):
                built = depthwise[name](info, ctx, plan)
                if built is not None:
                    return name, built
        return None
    for variant in registry.family("dsp", "pointwise_conv2d" if info.pointwise else "conv2d", weights=weights):
        if (kernel == variant.name or (kernel is None and variant.default)) and gemm_fits(variant, info):
            return variant.name, gemm(info, ctx, plan, info.weights.reshape(info.OC, -1))
    return None


def select(info: ConvInfo, ctx: dict, kernel: str | None = None) -> tuple[str, dict] | None:
    """The preferred int16-weight variant, or exactly `kernel` (one of them) when it applies."""
    return pick(info, ctx, kernel, "int16", INT16_LIMIT, _gemm_common, DEPTHWISE)
