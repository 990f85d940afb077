"""Armv8.1-M MVE (Helium) variants (feature `mve`: Cortex-M55).

- Pointwise and im2col convolution: VMLADAVA (16 int8 products summed into a scalar per instruction) over a
  register tile of 2 output pixels x 4 output channels; the 4 channel sums of a pixel are requantized as one
  vector.
- Depthwise: 8 channels per step as int16 lanes (VLDRB.S16), VMULLB/VMULLT against pre-widened int16
  weights into even/odd int32 accumulators, requantized as vectors and narrowed back in channel order
  (VQMOVNB/VQMOVNT undo the even/odd split).

Requantization (vector): y = VQRDMULH(acc << left, m) is TFLite's SaturatingRoundingDoublingHighMul exactly;
VRSHL by -e adds 2^(e-1) before its arithmetic shift, so VRSHL(y + s + zp * 2^e, -e) with s = acc >> 31 is
RoundingDivideByPOT(y, e) + zp (see common.py); channels with e = 0 mask s off.
"""
from __future__ import annotations

import numpy as np

from . import registry
from .common import STACK_BUDGET, ConvInfo, DepthwiseRegions, RequantPlan, ceil_to, depthwise_regions, plan_layer
from .tiles import TAP_CHUNK, lane_channels, tap_note, tap_plan, tile_plan



def requant_vectors(info: ConvInfo, plan: RequantPlan) -> tuple[list[str], dict[str, np.ndarray]]:
    """Per-channel int32 requantization vectors the kernels read, by name, in the order they are stored."""
    if plan.mode == "onnx":
        return ["scale"], {"scale": plan.multiplier}
    e = plan.rshift
    vec = {"m": plan.multiplier, "czp": plan.out_zp * (np.int64(1) << e), "nege": -e}
    names = ["m", "czp", "nege"]
    if np.any(plan.lshift > 0):
        vec["left"] = plan.lshift
        names.append("left")
    if np.any(e == 0) and np.any(e > 0):
        vec["smask"] = np.where(e > 0, -1, 0)
        names.append("smask")
    return names, vec


def plan_layer_mve(info: ConvInfo) -> tuple[ConvInfo, RequantPlan] | None:
    """The layer (constant channels folded) and its plan; None where MVE's vector form is not exact."""
    planned = plan_layer(info, prescale_doubling=False, weight_limit=None)
    if planned is None:
        return None
    info, plan = planned
    e, left = plan.rshift, plan.lshift
    if np.any(e > 30):
        return None
    # |acc << left| and |y + s + zp * 2^e| must stay inside int32 (VSHL and VADD wrap).
    a_bound = info.partial_bound() << left
    czp = np.abs(plan.out_zp) * (np.int64(1) << e)
    if np.any(a_bound + czp + 2 > (1 << 31) - 1):
        return None
    return info, plan


def _common(info: ConvInfo, ctx: dict, plan: RequantPlan) -> dict:
    e = plan.rshift
    mode = plan.mode if plan.mode == "onnx" else "round" if np.all(e >= 1) else "noround" if np.all(e == 0) else "mixed"
    return dict(rq_mode=mode, fn=ctx["fn"], title=ctx["title"], activation=ctx["activation"],
                H=info.H, W=info.W, C=info.C, OH=info.OH, OW=info.OW, OC=info.OC, KH=info.KH, KW=info.KW,
                SH=info.SH, SW=info.SW, DH=info.DH, DW=info.DW, PT=info.PT, PL=info.PL,
                input_zero_point=-info.in_offset, output_offset=info.out_offset,
                act_min=info.act_min, act_max=info.act_max)


def gemm_weights(info: ConvInfo, qb: int) -> np.ndarray:
    """int8 [block of qb channels][16-byte chunk][channel in block][16]: the weights in [ky][kx][c] order,
    zero-padded to whole vectors and blocks, in the order the tiles read them."""
    rows = info.weights.reshape(info.OC, -1)
    k = rows.shape[1]
    k16 = ceil_to(k, 16)
    blocks_n = -(-info.OC // qb)
    weights = np.zeros((blocks_n * qb, k16), np.int8)
    weights[:info.OC, :k] = rows
    return weights.reshape(blocks_n, qb, k16 // 16, 16).transpose(0, 2, 1, 3)


def _gemm(info: ConvInfo, ctx: dict, plan: RequantPlan, qb: int) -> dict:
    """qb: output channels per tile (one requantization vector, lanes qb..3 unused)."""
    rows = info.weights.reshape(info.OC, -1)
    k = rows.shape[1]
    k16 = ceil_to(k, 16)
    ocb = ceil_to(info.OC, qb)
    blocks_n = ocb // qb
    weights = gemm_weights(info, qb).reshape(blocks_n, -1)
    names, vec = requant_vectors(info, plan)
    folded = info.bias + info.in_offset * rows.sum(axis=1)
    table = np.zeros((len(names) + 1, blocks_n, 4), np.int64)
    lanes = np.zeros((len(names) + 1, ocb), np.int64)
    lanes[0, :info.OC] = folded
    for i, name in enumerate(names):
        lanes[i + 1, :info.OC] = vec[name]
    table[:, :, :qb] = lanes.reshape(len(names) + 1, blocks_n, qb)
    # [block][bias, then each vector][4 lanes]
    blocks = table.transpose(1, 0, 2).reshape(blocks_n, -1)
    out = _common(info, ctx, plan)
    out.update(K=k, K16=k16, NPIX=info.OH * info.OW, weights=weights, rq=blocks.astype(np.int32), QB=qb,
               vectors=["bias"] + names, NV=len(names) + 1, constant_keys=("weights", "rq"))
    return out


# Lane order of the depthwise accumulators: even channels of a group of 8, then odd ones (VMULLB / VMULLT).
LANE_CHANNELS = np.concatenate([np.arange(0, 8, 2), np.arange(1, 8, 2)])


def depthwise_weights(info: ConvInfo) -> np.ndarray:
    """int16 [group of 8 channels][tap][8], channels padded with zeros to a whole group."""
    c8 = ceil_to(info.C, 8)
    taps = info.KH * info.KW
    padded = np.zeros((taps, c8), np.int64)
    padded[:, :info.C] = info.weights.reshape(taps, info.OC)
    return padded.reshape(taps, c8 // 8, 8).transpose(1, 0, 2).astype(np.int16)


def lane_order(info: ConvInfo, per_channel: np.ndarray) -> np.ndarray:
    """[group][8]: per-channel values (padded to whole groups) in the accumulators' lane order."""
    c8 = ceil_to(info.C, 8)
    p = np.zeros(c8, np.int64)
    p[:info.C] = per_channel
    return p.reshape(c8 // 8, 8)[:, LANE_CHANNELS]


def _depthwise(info: ConvInfo, ctx: dict, plan: RequantPlan) -> dict | None:
    planned = depthwise_regions(info)
    if planned is None:
        return None
    c8 = ceil_to(info.C, 8)
    taps = info.KH * info.KW
    wp = depthwise_weights(info)

    def permuted(per_channel: np.ndarray) -> np.ndarray:
        return lane_order(info, per_channel)

    names, vec = requant_vectors(info, plan)
    rq = np.stack([permuted(vec[n]) for n in names], axis=1).reshape(c8 // 8, -1)   # [group][vector][8]
    biases = [permuted(DepthwiseRegions.folded_bias(info, window)).reshape(-1) for window in planned.windows]
    out = _common(info, ctx, plan)
    out.update(C8=c8, TAPS=taps, weights=wp.reshape(c8 // 8, -1), rq=rq.astype(np.int32), vectors=names,
               bias=np.stack(biases).astype(np.int32), regions=planned.regions, constant_keys=("weights", "rq", "bias"))
    return out


def _depthwise_padded(info: ConvInfo, ctx: dict, plan: RequantPlan) -> dict | None:
    """Any depthwise layer, through a padded copy of each tile's input window (simd/tiles.py)."""
    tiles = tile_plan(info, 16)
    if tiles is None:
        return None
    g8 = -(-info.OC // 8)
    taps = info.KH * info.KW
    w = np.zeros((taps, 8 * g8), np.int64)
    w[:, :info.OC] = info.weights.reshape(taps, info.OC)
    weights = w.reshape(taps, g8, 8).transpose(1, 0, 2).reshape(g8, -1).astype(np.int16)   # [group][tap][8]
    perm = np.concatenate([np.arange(0, 8, 2), np.arange(1, 8, 2)])

    def permuted(per_channel: np.ndarray) -> np.ndarray:
        p = np.zeros(8 * g8, np.int64)
        p[:info.OC] = per_channel
        return p.reshape(g8, 8)[:, perm]                           # [group][8]

    names, vec = requant_vectors(info, plan)
    bias = info.bias + info.in_offset * info.weight_sum()
    rq = np.stack([permuted(bias)] + [permuted(vec[n]) for n in names], axis=1).reshape(g8, -1)
    out = _common(info, ctx, plan)
    out.update(MULT=info.MULT, TAPS=taps, **tiles.context(info), PIX=8, ROW=tiles.COLS * 8, WT=8, ROWPTR=True, WSTREAM=True,
               T="int16_t", WTYPE="int16_t", TAP_CHUNK=TAP_CHUNK, taps=tap_plan(info.KH, info.KW),
               tap_note=tap_note(info.KH, info.KW), lanes=lane_channels(info, 8),
               weights=weights, rq=rq.astype(np.int32), vectors=names, constant_keys=("weights", "rq"))
    return out


REGIONS, PADDED = "depthwise_conv2d_s8_mve_8c", "depthwise_conv2d_s8_mve_padded_8c"
DEPTHWISE = {REGIONS: _depthwise, PADDED: _depthwise_padded}      # preferred first


def select(info: ConvInfo, ctx: dict, kernel: str | None = None) -> tuple[str, dict] | None:
    """The preferred variant, or exactly `kernel` (an MVE variant of the registry) when it applies."""
    planned = plan_layer_mve(info)
    if planned is None:
        return None
    info, plan = planned
    if info.depthwise:
        for name, build in DEPTHWISE.items():
            if kernel in (None, name):
                built = build(info, ctx, plan)
                if built is not None:
                    return name, built
        return None
    k16 = ceil_to(info.KH * info.KW * info.C, 16)
    for variant in registry.family("mve", "pointwise_conv2d" if info.pointwise else "conv2d"):
        fits = info.pointwise or variant.pixels * k16 <= STACK_BUDGET
        if fits and (kernel == variant.name or (kernel is None and variant.default)):
            return variant.name, _gemm(info, ctx, plan, variant.tile[1])
    return None
