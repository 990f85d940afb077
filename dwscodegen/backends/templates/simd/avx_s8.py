"""int8 Conv2D / DepthwiseConv2D variants for x86 (see avx.py), TFLite requantization, bit-exact.

GEMM (pointwise, im2col conv), per vector of L output channels and step input channels:
- AVX-512 VNNI (step 4): vpdpbusd multiplies 4 unsigned input bytes by 4 signed weights per lane. The input
  is made unsigned by u = x ^ 0x80 = x + 128, so sum(u * w) = sum(x * w) + 128 * sum(w): the bias carries
  in_offset * sum(w) - 128 * sum(w), computed here per channel, and the sum is exact. vpdpbusd does not
  saturate, so every partial sum must stay inside int32: |bias| + 255 * sum|w| is checked per channel.
- AVX2 (step 2): the input widened to int16 once per tile, vpmaddwd against int16 weight pairs.
Depthwise: 16-bit products of sign-extended inputs (vpmovsxbd) and weights whose upper half is zero, so
vpmaddwd / vpdpwssd on the 32-bit lanes is exactly x * w per lane.
A depthwise layer whose window is its whole input (a global pool as ONNX QDQ models write it, wider than the
unrolled variants' 25 taps) loops over the window's positions instead (depthwise_window).

Requantization (per vector, in <fn>_requantize): A = acc << (left + 1); hi32(A * m + 2^31) is TFLite's
SaturatingRoundingDoublingHighMul(acc << left, m) (common.py); + rc + s, then >> e, with rc = 2^(e-1) +
zp * 2^e and s = A >> 31 (masked off where e = 0), is RoundingDivideByPOT plus the output zero point. Exact
when |A| and |hi + rc + s| stay inside int32: the plan is common.requant_plan's (the DSP variants' SMMLAR form),
which proves it from the accumulator bound.
ONNX-requantized layers (requant "onnx") take the same MACs and onnxruntime's float32 epilogue instead
(mode "onnx": the scales' bits, templates/kernels/_onnx_requant.j2); their weights are never pre-scaled.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ....ir import Graph, Op
from . import registry
from .avx_common import GEMM_TILES, Level, ceil_to, gemm_choice, template, wanted
from .common import INT32_MAX, ConvInfo, DepthwiseRegions, conv_info, depthwise_regions, fold_constants, requant_plan

INT32_MIN = -(1 << 31)

STACK_BUDGET = 65536      # bytes of patch buffers a kernel may take per call (its scratch, Kernel.scratch)
INT16_MAX = 32767


@dataclass(frozen=True)
class Requant:
    mode: str                          # round (every e >= 1) | noround (every e == 0) | mixed | onnx
    names: tuple[str, ...]             # the per-channel vectors the kernel reads, in storage order
    vectors: dict[str, np.ndarray]     # int64 [OC] each: lsh = left + 1, m, rc, e, smask


def requant(info: ConvInfo, prescaled: bool = False) -> Requant | None:
    """The vector requantization of the layer: common.requant_plan's exact plan (A = acc * 2^(left + 1), the
    form SMMLAR and vpmuldq share), or None where it needs the generic form. prescaled: the kernel's int16
    weights and its bias carry 2^(left + 1) (see prescale), so the accumulator is A; else the kernel shifts."""
    plan = requant_plan(info, prescale_doubling=True, weight_limit=None)
    if plan is None or plan.mode == "generic":
        return None
    if plan.mode == "onnx":
        return Requant("onnx", ("scale",), {"scale": plan.multiplier})
    m, e, rc = plan.multiplier, plan.rshift, plan.rc
    # Per 64-bit lane of vpmuldq's products (filled per vector by odd_multipliers, in the kernel's lane order):
    # mo, the odd lanes' multipliers where vpmuldq reads them; re / ro, 2^31 + rc * 2^32 of the even / odd lanes,
    # the rounding and the rounding constant added to the products in one 64-bit add.
    vectors = dict(lsh=plan.lshift + 1, m=m, mo=m, re=rc, ro=rc, e=e, smask=np.where(e > 0, -1, 0))
    names = ((() if prescaled else ("lsh",)) + ("m", "mo", "re", "ro") + (() if plan.mode == "noround" else ("e",))
             + (("smask",) if plan.mode == "mixed" else ()))
    return Requant(plan.mode, names, vectors)


def odd_multipliers(records: np.ndarray, names: tuple[str, ...]) -> np.ndarray:
    """records [..., vector name, lane], mo / re / ro holding the per-lane m / rc: lay them out as int32 halves of
    64-bit lanes: mo = (m[2i + 1], 0), re = (-2^31, rc[2i]), ro = (-2^31, rc[2i + 1]) (-2^31 is the low word 2^31)."""
    out = records.copy()
    m, mo, re, ro = (names.index(n) for n in ("m", "mo", "re", "ro"))
    out[..., mo, 0::2], out[..., mo, 1::2] = records[..., m, 1::2], 0
    out[..., re, 0::2], out[..., re, 1::2] = INT32_MIN, records[..., re, 0::2]
    out[..., ro, 0::2], out[..., ro, 1::2] = INT32_MIN, records[..., ro, 1::2]
    return out


def _paired(records: np.ndarray, names: tuple[str, ...], rq: Requant) -> np.ndarray:
    """odd_multipliers where the requantization multiplies in 64-bit lanes (not "onnx": one float32 scale per lane)."""
    return records if rq.mode == "onnx" else odd_multipliers(records, names)


def prescale(info: ConvInfo, weights: np.ndarray) -> np.ndarray | None:
    """The per-channel factor 2^(left + 1) that int16 weights can carry (weights [..., OC] in the layer's channel
    order), so the kernel skips the shift of every accumulator; None where a scaled weight leaves int16 or the
    layer requantizes as onnxruntime does (no power of two to carry)."""
    if info.onnx_scale is not None:
        return None
    scale = np.left_shift(np.int64(1), np.maximum(info.shift, 0) + 1)
    scaled = weights * scale
    return scale if np.all(scaled <= INT16_MAX) and np.all(scaled >= -INT16_MAX - 1) else None


def _lanes(values: np.ndarray, n: int) -> np.ndarray:
    """[OC] -> [n] zero-padded (the padding lanes compute nothing that is stored)."""
    out = np.zeros(n, np.int64)
    out[:len(values)] = values
    return out


def _common(level: Level, info: ConvInfo, ctx: dict, rq: Requant) -> dict:
    return dict(fn=ctx["fn"], title=ctx["title"], activation=ctx["activation"], isa=level.name, L=level.lanes,
                vnni=level.vnni, prescaled="lsh" not in rq.names, H=info.H, W=info.W, C=info.C, OH=info.OH, OW=info.OW, OC=info.OC, KH=info.KH,
                KW=info.KW, SH=info.SH, SW=info.SW, DH=info.DH, DW=info.DW, PT=info.PT, PL=info.PL,
                input_zero_point=-info.in_offset, output_offset=info.out_offset, act_min=info.act_min,
                act_max=info.act_max, rq_mode=rq.mode, left=rq.mode != "onnx" and bool(np.any(rq.vectors["lsh"] > 1)))


def tile_of(name: str, lanes: int) -> tuple[int, int]:
    """The registry's tile of `name`, in vectors: 6 x 64 -> (6 pixels, 4 vectors of 16 channels)."""
    pixels, channels = registry.get(name).tile
    return pixels, channels // lanes


def int8_weights(level: Level, pixels: int, name: str) -> bool:
    """AVX2 GEMMs widen int16 weights per step; where all pixels fit one partial tile (a matrix times a vector:
    fully connected, a squeeze-excite or classifier 1x1 conv) each weight is read once, memory bound, so they
    are stored as int8 and sign-extended as they are loaded (half the bytes; no prescale then)."""
    return not level.vnni and pixels < tile_of(name, level.lanes)[0]


def pack_gemm(level: Level, rows: np.ndarray, w8: bool = False) -> tuple[np.ndarray, int, int]:
    """[OC][K] int weights -> ([vector][K / step][lane][step] packed, zero-padded to whole steps and vectors:
    one vector load per step of the reduction feeds every pixel of a tile, padded K, vectors). w8: int8 on
    AVX2 too (int8_weights)."""
    oc, k = rows.shape
    lanes, step = level.lanes, 4 if level.vnni else 2
    kp = ceil_to(k, step)
    nvec = -(-oc // lanes)
    padded = np.zeros((nvec * lanes, kp), np.int64)
    padded[:oc, :k] = rows
    packed = padded.reshape(nvec, lanes, kp // step, step).transpose(0, 2, 1, 3).reshape(nvec, -1)
    return packed.astype(np.int8 if level.vnni or w8 else np.int16), kp, nvec


def gemm_fits(level: Level, info: ConvInfo, name: str, kp: int) -> bool:
    """Whether the tile's patch buffers (im2col, or AVX2's widened rows) fit the stack budget."""
    pixels, _ = tile_of(name, level.lanes)
    buffered = not info.pointwise or not level.vnni
    return not buffered or pixels * kp * (1 if level.vnni else 2) <= STACK_BUDGET


def gemm_shape(level: Level, info: ConvInfo, name: str, k: int, kp: int, nvec: int) -> dict:
    pixels, nv = tile_of(name, level.lanes)
    return dict(K=k, KP=kp, STEP=4 if level.vnni else 2, NPIX=info.OH * info.OW, NVEC=nvec, P=pixels,
                NV=min(nv, nvec), direct=info.pointwise)


def gemm(level: Level, info: ConvInfo, ctx: dict, name: str) -> tuple[str, dict] | None:
    """Pointwise (input rows read in place) or im2col (patches gathered per tile) GEMM variant `name`."""
    rows = info.weights.reshape(info.OC, -1)              # [OC][K], [ky][kx][c] order
    w8 = int8_weights(level, info.OH * info.OW, name)
    scale = None if level.vnni or w8 else prescale(info, rows.T)
    rq = requant(info, prescaled=scale is not None)
    if rq is None:
        return None
    scale = np.ones(info.OC, np.int64) if scale is None else scale
    packed, kp, nvec = pack_gemm(level, rows * scale[:, None], w8)
    if not gemm_fits(level, info, name, kp):
        return None
    sum_w, abs_w = rows.sum(axis=1), np.abs(rows).sum(axis=1)
    if level.vnni:
        bias = info.bias + (info.in_offset - 128) * sum_w
        partial = np.abs(bias) + 255 * abs_w
    else:
        bias = (info.bias + info.in_offset * sum_w) * scale
        partial = np.abs(bias) + 128 * abs_w * scale
    if np.any(partial > INT32_MAX):
        return None
    lanes = level.lanes
    table = [bias] + [rq.vectors[n] for n in rq.names]
    records = np.stack([_lanes(v, nvec * lanes).reshape(nvec, lanes) for v in table], axis=1)
    records = _paired(records, ("bias",) + rq.names, rq).reshape(nvec, -1)
    out = _common(level, info, ctx, rq)
    out.update(gemm_shape(level, info, name, rows.shape[1], kp, nvec))
    out.update(weights=packed, rq=records.astype(np.int32), vectors=("bias",) + rq.names, NR=len(table),
               hybrid=False, w8=w8, constant_keys=("weights", "rq"))
    return template(name), out


def _depthwise_context(level: Level, info: ConvInfo, ctx: dict, windows) -> dict | None:
    """What both depthwise forms store: per-tap weights in lanes, a folded bias per window (tuple of the taps'
    bounds), the requantization records; None where the requantization has no exact vector form."""
    taps = info.KH * info.KW
    scale = prescale(info, info.weights.reshape(taps, info.OC))
    rq = requant(info, prescaled=scale is not None)
    if rq is None:
        return None
    scale = np.ones(info.OC, np.int64) if scale is None else scale
    cv = ceil_to(info.C, level.lanes) // level.lanes
    w = np.zeros((taps, cv * level.lanes), np.int64)
    w[:, :info.C] = info.weights.reshape(taps, info.OC) * scale
    biases = np.stack([_lanes(DepthwiseRegions.folded_bias(info, win) * scale, cv * level.lanes) for win in windows])
    records = np.stack([_lanes(rq.vectors[n], cv * level.lanes).reshape(cv, level.lanes) for n in rq.names], axis=1)
    out = _common(level, info, ctx, rq)
    # int16 weight in the low half of each 32-bit lane, zero in the high half: vpmaddwd against a
    # sign-extended input lane is then exactly x * w
    out.update(CV=cv, TAPS=taps, weights=(w & 0xFFFF).astype(np.int32), bias=biases.astype(np.int32),
               rq=_paired(records, rq.names, rq).reshape(cv, -1).astype(np.int32), vectors=rq.names,
               NR=len(rq.names), constant_keys=("weights", "bias", "rq"))
    return out


def depthwise(level: Level, info: ConvInfo, ctx: dict, name: str) -> tuple[str, dict] | None:
    planned = depthwise_regions(info)
    out = None if planned is None else _depthwise_context(level, info, ctx, planned.windows)
    if out is None:
        return None
    out.update(regions=planned.regions)
    return template(name), out


def whole_window(info: ConvInfo) -> bool:
    """A depthwise layer whose window is its whole input: one output pixel, no padding, multiplier 1 (a global
    average pool as ONNX QDQ models write it, with more taps than the unrolled variants take)."""
    return (info.MULT == 1 and (info.OH, info.OW) == (1, 1) and (info.KH, info.KW) == (info.H, info.W)
            and (info.PT, info.PL, info.DH, info.DW) == (0, 0, 1, 1))


def depthwise_window(level: Level, info: ConvInfo, ctx: dict, name: str) -> tuple[str, dict] | None:
    """whole_window layers: a loop over the window's positions per vector of channels (depthwise(), not unrolled);
    one window, every tap inside the input."""
    out = _depthwise_context(level, info, ctx, [(0, info.KH, 0, info.KW)]) if whole_window(info) else None
    if out is None:
        return None
    out["bias"] = out["bias"][0]
    return template(name), out


# A 16-channel group of two widened taps interleaved by vpunpcklwd / vpunpckhwd, each 128-bit lane on its own:
# the low result holds channels 0-3 and 8-11, the high one 4-7 and 12-15, as (tap 0, tap 1) int16 pairs.
PAIR_LANES = (np.r_[0:4, 8:12], np.r_[4:8, 12:16])


def _int32(words: np.ndarray) -> np.ndarray:
    return (((words + (1 << 31)) % (1 << 32)) - (1 << 31)).astype(np.int32)


def depthwise_pairs(level: Level, info: ConvInfo, ctx: dict, name: str) -> tuple[str, dict] | None:
    """AVX2 depthwise on 16-channel groups, two taps per vpmaddwd: the inputs of a pair of taps interleaved as
    int16 pairs against (w_tap0, w_tap1) pairs, so each instruction does 16 products instead of 8."""
    planned = depthwise_regions(info)
    taps = info.KH * info.KW
    scale = prescale(info, info.weights.reshape(taps, info.OC))
    rq = requant(info, prescaled=scale is not None)
    if planned is None or rq is None:
        return None
    scale = np.ones(info.OC, np.int64) if scale is None else scale
    groups = -(-info.C // 16)
    w = np.zeros((taps + 1, groups * 16), np.int64)        # row `taps`: zero, the partner of an odd tap out
    w[:taps, :info.C] = info.weights.reshape(taps, info.OC) * scale
    pairs: dict[tuple[int, int], int] = {}
    regions = []
    for r in planned.regions:
        ts = r["taps"]
        chosen = [(ts[i], ts[i + 1] if i + 1 < len(ts) else None) for i in range(0, len(ts), 2)]
        keys = [(a[2], b[2] if b else taps) for a, b in chosen]
        regions.append(dict(r, pairs=[dict(index=pairs.setdefault(key, len(pairs)), first=a, second=b)
                                      for key, (a, b) in zip(keys, chosen)]))
    table = np.zeros((max(len(pairs), 1), groups, 2, 8), np.int64)
    for (t0, t1), i in pairs.items():
        for half, lanes in enumerate(PAIR_LANES):
            w0, w1 = w[t0].reshape(groups, 16)[:, lanes], w[t1].reshape(groups, 16)[:, lanes]
            table[i, :, half] = (w0 & 0xFFFF) | ((w1 & 0xFFFF) << 16)

    def permuted(per_channel: np.ndarray) -> np.ndarray:            # [groups][2][8]
        return _lanes(per_channel, groups * 16).reshape(groups, 16)[:, np.stack(PAIR_LANES)]

    biases = np.stack([permuted(DepthwiseRegions.folded_bias(info, win) * scale).reshape(-1) for win in planned.windows])
    records = _paired(np.stack([permuted(rq.vectors[n]) for n in rq.names], axis=2), rq.names, rq)  # [group][2][vector][8]
    out = _common(level, info, ctx, rq)
    out.update(GROUPS=groups, TAPS=taps, weights=_int32(table.reshape(len(table), -1)),
               bias=biases.astype(np.int32), rq=records.reshape(groups * 2, -1).astype(np.int32),
               vectors=rq.names, NR=len(rq.names), regions=regions, constant_keys=("weights", "bias", "rq"))
    return template(name), out


def _names(level: Level) -> dict[str, tuple[str, ...]]:
    isa = level.s8_name
    tiles = GEMM_TILES["s8", isa]
    return dict(pointwise=tuple(f"pointwise_conv2d_s8_{isa}_{t}" for t in tiles),
                conv=tuple(f"conv2d_s8_{isa}_im2col_{t}" for t in tiles),
                depthwise=(f"depthwise_conv2d_s8_{isa}_{level.lanes}c",) + (() if level.vnni else
                                                                              (f"depthwise_conv2d_s8_{isa}_16c",)),
                window=(f"depthwise_conv2d_s8_{isa}_window_{level.lanes}c",))


def variants(level: Level) -> tuple[str, ...]:
    return sum(_names(level).values(), ())


def select(level: Level, graph: Graph, op: Op, ctx: dict, kernel: str | None) -> tuple[str, dict] | None:
    info = conv_info(graph, op, onnx=True)
    if info is None:
        return None
    info = fold_constants(info)     # dead channels become per-channel constants instead of deciding the layer
    names = _names(level)
    if info.depthwise:
        window = names["window"][0]
        if kernel == window or (kernel is None and depthwise_regions(info) is None):
            return depthwise_window(level, info, ctx, window)
        single = names["depthwise"][0]
        if not level.vnni:
            paired = names["depthwise"][1]      # AVX2: two taps per instruction on 16-channel groups
            if kernel == paired or (kernel is None and info.C >= 16):
                return depthwise_pairs(level, info, ctx, paired)
        return depthwise(level, info, ctx, single) if wanted(single, kernel) else None
    name = gemm_choice(names["pointwise" if info.pointwise else "conv"], level.lanes, info.OC, kernel)
    return None if name is None else gemm(level, info, ctx, name)
