"""Register-tiled plain C variants for Arm cores without DSP or MVE (feature `thumb2`: Cortex-M3).

No intrinsics: the gain over the portable kernels is in the loop structure, which gcc turns into byte loads
with immediate offsets and one MLA per multiply-accumulate, and in the requantization.

- Pointwise and im2col convolution: a tile of P output pixels x Q output channels accumulates in registers,
  each input byte loaded once per tile and each weight once per pixel pair; weights are reordered at
  generation time to [channel block][k][Q] so the tile reads them with one pointer. A pointwise variant with
  `order = "channels"` (variants.toml) swaps the loops: channel blocks outer, every pixel inner.
- Depthwise: the output plane in regions whose taps inside the input are the same (common.depthwise_regions),
  every tap unrolled with constant offsets, the input offset folded into one bias per region.
- Requantization: the round / noround plans of common.requant_plan with the doubling and left shift applied
  to the accumulator (A = acc << (left + 1)), then hi32(A * m + 2^31 + (rc + s) * 2^32) >> e: one SMLAL and
  a shift instead of the portable 64-bit helper; the generic plan keeps the helper. Exact by the same
  per-channel bound as the DSP variants (weights stay int8, so no weight limit applies). ONNX-requantized layers
  (plan "onnx") compute onnxruntime's float32 epilogue in integers (templates/kernels/_onnx_requant.j2): without an
  FPU, soft-float calls per output would cost more than the MACs of a depthwise layer.
"""
from __future__ import annotations

import numpy as np

from . import registry
from .common import STACK_BUDGET, ConvInfo, DepthwiseRegions, RequantPlan, depthwise_regions, requant_plan

DEPTHWISE = "depthwise_conv2d_s8_tiled_1c"


def significand_exponent(bits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """float32 bit patterns of non-negative scales -> (m, e) with scale = m * 2^-e exactly and m in [2^23, 2^24)
    (a subnormal's significand normalized; (0, 0) for a zero scale)."""
    bits = np.asarray(bits, np.int64)
    field, m = (bits >> 23) & 0xFF, bits & 0x7FFFFF
    m, e = np.where(field > 0, m | (1 << 23), m), np.where(field > 0, 150 - field, 149)
    for _ in range(23):                                   # subnormals: shift the significand up to 24 bits
        low = (m > 0) & (m < (1 << 23))
        m, e = np.where(low, m << 1, m), np.where(low, e + 1, e)
    return m, np.where(m > 0, e, 0)


def requant_records(info: ConvInfo, plan: RequantPlan, channels: int) -> np.ndarray:
    """Per-channel requantization words, zero-padded to `channels`: round (m, rc, e, ls), noround (m, rc, ls),
    generic (m, shift), onnx (m, e: scale = m * 2^-e); ls = left + 1, the doubling and left shift applied to the
    accumulator."""
    ls = plan.lshift + 1
    cols = {"round": [plan.multiplier, plan.rc, plan.rshift, ls], "noround": [plan.multiplier, plan.rc, ls],
            "generic": [plan.multiplier, info.shift], "onnx": list(significand_exponent(plan.multiplier))}[plan.mode]
    table = np.zeros((channels, len(cols)), np.int64)
    table[:info.OC] = np.stack(cols, axis=1)
    return table


def _common(info: ConvInfo, ctx: dict, plan: RequantPlan, name: str) -> dict:
    return dict(variant=name, fn=ctx["fn"], title=ctx["title"], activation=ctx["activation"],
                H=info.H, W=info.W, C=info.C, OH=info.OH, OW=info.OW, OC=info.OC, KH=info.KH, KW=info.KW,
                SH=info.SH, SW=info.SW, DH=info.DH, DW=info.DW, PT=info.PT, PL=info.PL,
                rq_mode=plan.mode, output_offset=info.out_offset, act_min=info.act_min, act_max=info.act_max,
                input_zero_point=-info.in_offset)


def _gemm(info: ConvInfo, ctx: dict, plan: RequantPlan, variant: registry.Variant) -> tuple[str, dict] | None:
    (pixels, q), name = variant.tile, variant.name
    rows = info.weights.reshape(info.OC, -1)            # [OC][K], patch order (ky, kx, c)
    k = rows.shape[1]
    if not info.pointwise and pixels * k > STACK_BUDGET:
        return None
    blocks = -(-info.OC // q)
    padded = np.zeros((blocks * q, k), np.int64)
    padded[:info.OC] = rows
    weights = padded.reshape(blocks, q, k).transpose(0, 2, 1).reshape(blocks, -1)    # [block][k][q]
    bias = np.zeros(blocks * q, np.int64)
    bias[:info.OC] = info.bias + info.in_offset * rows.sum(axis=1)
    out = _common(info, ctx, plan, name)
    out.update(P=pixels, Q=q, K=k, OCB=blocks, NPIX=info.OH * info.OW, weights=weights.astype(np.int8),
               bias=bias.astype(np.int32), rq=requant_records(info, plan, blocks * q).astype(np.int32),
               constant_keys=("weights", "bias", "rq"))
    return name, out


def _depthwise(info: ConvInfo, ctx: dict, plan: RequantPlan) -> tuple[str, dict] | None:
    planned = depthwise_regions(info)
    if planned is None:
        return None
    biases = np.stack([DepthwiseRegions.folded_bias(info, window) for window in planned.windows])
    out = _common(info, ctx, plan, DEPTHWISE)
    out.update(weights=info.weights.reshape(-1).astype(np.int8), bias=biases.astype(np.int32),
               rq=requant_records(info, plan, info.OC).astype(np.int32), regions=planned.regions,
               constant_keys=("weights", "bias", "rq"))
    return DEPTHWISE, out


def select(info: ConvInfo, ctx: dict, kernel: str | None = None) -> tuple[str, dict] | None:
    """The preferred variant, or exactly `kernel` (one of the registry's thumb2 variants) when it applies."""
    plan = requant_plan(info, prescale_doubling=True, weight_limit=None, mixed=False)   # no "mixed" form here
    if plan is None or (plan.mode == "onnx" and np.any(info.onnx_scale < 0)):     # the integer form takes scales >= 0
        return None
    if info.depthwise:
        return _depthwise(info, ctx, plan) if kernel in (None, DEPTHWISE) else None
    for variant in registry.family("thumb2", "pointwise_conv2d" if info.pointwise else "conv2d"):
        if kernel == variant.name or (kernel is None and variant.default):
            chosen = _gemm(info, ctx, plan, variant)
            if chosen is not None:
                return chosen
    return None
