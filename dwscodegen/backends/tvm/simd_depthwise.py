"""Tensorized depthwise convolution (int8, multiplier 1, one image): the templates road's depthwise variants,
DSP (4 channels per step, SMLABB / SMLATT on SXTB16 lanes), MVE (8 channels, VMULLB / VMULLT into even / odd
lanes) and Thumb-2 (`lanes` channels per step), as TVM tensor intrinsics in an s_tir schedule.

The output plane is cut into the regions of common.depthwise_regions, rectangles whose taps inside the input
are the same; each region is a part of the TIR (tir_build.py) over its own taps, with the bias that folds the
input offset over exactly those taps, so no tap is tested against the borders.  Per region:

    acc      bias + the region's taps, for groups of L channels (MVE: in the accumulators' lane order)
    output   requantized, a group at a time

The schedule tensorizes acc per (pixel, group) with <fn>_window<w> (the micro-kernel of the region's tap
window w, every tap unrolled) and the output with <fn>_requant_<L>.  Channels after the last whole group
(C % L) stay plain TVM C over the same semantics (simd_arith.py).  Weights, biases and requantization
tables are packed as the templates road packs them (dsp.depthwise_words, mve.depthwise_weights /
lane_order, per-channel records).  TVM is imported inside the functions.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..templates.simd import dsp, mve, tiled
from ..templates.simd.common import ConvInfo, DepthwiseRegions, RequantPlan, ceil_to, depthwise_regions
from . import simd_arith as sa
from .simd_gemm import C_DTYPES, TILED_RQ_WORDS, requant_value, rq_const, scale_reads, split_scale
from .tir_build import Axis, Block, Buf, register_intrin

LANES = {"dsp": 4, "mve": 8}


@dataclass(frozen=True)
class Layer:
    isa: str
    info: ConvInfo
    plan: RequantPlan
    lanes: int
    regions: DepthwiseRegions
    rq_words: int
    vectors: tuple[str, ...] = ()

    bias_in_acc = True      # the accumulators start at the region's bias

    @property
    def groups(self) -> int:
        return self.info.C // self.lanes


@dataclass(frozen=True)
class Part:
    index: int
    region: dict
    window: tuple[int, int, int, int]   # ky0, ky1, kx0, kx1 of the taps read
    c0: int                             # first channel
    groups: int                         # groups of `lanes` channels (the tail part: 1 group of the rest)
    lanes: int
    tail: bool


def layer(isa: str, info: ConvInfo, plan: RequantPlan, lanes: int) -> tuple[Layer, dict]:
    planned = depthwise_regions(info)
    folded = [DepthwiseRegions.folded_bias(info, w) for w in planned.windows]
    taps = info.KH * info.KW
    if isa == "dsp":
        c4 = ceil_to(info.C, 4)
        bias = np.zeros((len(folded), c4), np.int64)
        bias[:, :info.C] = np.stack(folded) * plan.scale
        rq_words = dsp.requant_context(info, plan)["RQW"]
        # One row per group of 4 channels: requantization records, then weight words (the templates' rows).
        consts = dict(weights=("int32_t", dsp.depthwise_blocks(info, plan).astype(np.int32)),
                      bias=("int32_t", bias.astype(np.int32)))
        if plan.mode == "onnx":     # the scales as float32 too (rq_const): what the TIR and the micro-kernels read
            consts["rq"] = rq_const(plan, dsp.requant_records(info, plan).reshape(-1))
        return Layer(isa, info, plan, 4, planned, rq_words), consts
    if isa == "thumb2":
        consts = dict(weights=("int8_t", info.weights.reshape(taps, info.C).astype(np.int8)),
                      bias=("int32_t", np.stack(folded).astype(np.int32)),
                      rq=("int32_t", tiled.requant_records(info, plan, info.C).reshape(-1).astype(np.int32)))
        if plan.mode == "onnx":     # the scales the records encode, for the TIR (simd_gemm.split_scale)
            consts["scale"] = ("float", np.asarray(info.onnx_scale, np.float32))
        return Layer(isa, info, plan, lanes, planned, TILED_RQ_WORDS[plan.mode]), consts
    names, vec = mve.requant_vectors(info, plan)
    consts = dict(weights=("int16_t", mve.depthwise_weights(info)),
                  bias=("int32_t", np.stack([mve.lane_order(info, b).reshape(-1) for b in folded]).astype(np.int32)),
                  rq=rq_const(plan, np.stack([mve.lane_order(info, vec[n]) for n in names], axis=1)))
    return Layer(isa, info, plan, 8, planned, 0, tuple(names)), consts


def parts(L: Layer) -> list[Part]:
    found = []
    for region in L.regions.regions:
        window = L.regions.windows[region["bias"]]
        if L.groups:
            found.append(Part(len(found), region, window, 0, L.groups, L.lanes, False))
        if L.info.C % L.lanes:
            found.append(Part(len(found), region, window, L.groups * L.lanes, 1, L.info.C % L.lanes, True))
    return found


def _perm(lane):
    """MVE: the channel (within its group of 8) of accumulator lane `lane`: even channels, then odd ones."""
    from tvm import tirx
    return tirx.floormod(lane, 4) * 2 + tirx.floordiv(lane, 4)


def lane_store(lane):
    """MVE: where accumulator lane `lane` is stored in its group of 8 output channels."""
    return _perm(lane)


def _lane_of(channel):
    """MVE: the accumulator lane of a channel within its group (the inverse of _perm)."""
    from tvm import tirx
    return tirx.floormod(channel, 2) * 4 + tirx.floordiv(channel, 2)


def lane_channel(L: Layer, part: Part, lane):
    return _perm(lane) if L.isa == "mve" and not part.tail else lane


def _weight(L: Layer, w, group, tap, lane):
    """The int32 weight of `lane` (a channel of the group, MVE main parts: an accumulator lane) at `tap`;
    DSP: tap words after the group's 4 requantization records."""
    if L.isa == "dsp":
        return sa.dsp_lane(w[group, 4 * L.rq_words + 2 * tap + lane % 2], lane // 2)
    if L.isa == "mve":
        return w[group, tap, lane].astype("int32")
    return w[tap, group].astype("int32")


def _table_lane(L: Layer, part: Part, lane):
    """Where a lane's per-channel value sits in MVE's lane-ordered tables."""
    return _lane_of(lane) if L.isa == "mve" and part.tail else lane


def blocks(L: Layer, part: Part) -> list[Block]:
    from tvm import tirx
    i, n, r = L.info, part.index, part.region
    ky0, ky1, kx0, kx1 = part.window
    g_axis = () if part.tail else (Axis("g", part.groups),)
    spatial = (Axis("i", r["y1"] - r["y0"]), Axis("jx", r["x1"] - r["x0"])) + g_axis + (Axis("l", part.lanes),)
    group = lambda v: v["g"] if not part.tail else tirx.const(0, "int32")  # noqa: E731
    chan = lambda v: part.c0 + group(v) * L.lanes + lane_channel(L, part, v["l"])  # noqa: E731
    gidx = lambda v: part.c0 // L.lanes + group(v)  # noqa: E731
    acc_index = lambda v: [v["i"], v["jx"]] + ([] if part.tail else [v["g"]]) + [v["l"]]  # noqa: E731

    def bias(b, v):
        if L.isa == "mve":
            return b["bias"][r["bias"], part.c0 + group(v) * 8 + _table_lane(L, part, v["l"])]
        return b["bias"][r["bias"], chan(v)]

    def term(b, v):
        y, x = v["i"] + r["y0"], v["jx"] + r["x0"]
        ky, kx = v["rh"] + ky0, v["rw"] + kx0
        pixel = b["input"][y * i.SH - i.PT + ky * i.DH, x * i.SW - i.PL + kx * i.DW, chan(v)].astype("int32")
        tap = ky * i.KW + kx
        if L.isa == "thumb2":
            return pixel * _weight(L, b["weights"], chan(v), tap, None)
        return pixel * _weight(L, b["weights"], gidx(v), tap, lane_channel(L, part, v["l"]))

    acc = f"acc{n}"
    if r["taps"]:
        red = (Axis("rh", ky1 - ky0, True), Axis("rw", kx1 - kx0, True))
        acc_block = Block(acc, spatial + red, acc, acc_index, lambda b, v: b[acc][tuple(acc_index(v))] + term(b, v),
                          init=bias)
    else:   # no tap inside the input: the bias alone
        acc_block = Block(acc, spatial, acc, acc_index, bias)

    def rq_reader(b, v):
        if L.isa == "mve":
            return lambda idx: b["rq"][gidx(v), idx, _table_lane(L, part, v["l"])]
        if L.isa == "dsp" and L.plan.mode != "onnx":
            return lambda idx: b["weights"][gidx(v), v["l"] * L.rq_words + idx]
        return lambda idx: b["rq"][chan(v) * L.rq_words + idx]
    out = Block(f"output{n}", spatial, "output", lambda v: [v["i"] + r["y0"], v["jx"] + r["x0"], chan(v)],
                lambda b, v: requant_value(L, b[acc][tuple(acc_index(v))], rq_reader(b, v), lambda: b["scale"][chan(v)]),
                reads=(lambda b, v: scale_reads(L, b[acc][tuple(acc_index(v))], b, chan(v))) if split_scale(L) else None)
    return [acc_block, out]


def temporaries(L: Layer, part: Part) -> list[Buf]:
    r = part.region
    shape = (r["y1"] - r["y0"], r["x1"] - r["x0"]) + (() if part.tail else (part.groups,)) + (part.lanes,)
    return [Buf(f"acc{part.index}", shape, "int32")]


def parameters(L: Layer, consts: dict) -> list[Buf]:
    i = L.info
    return ([Buf("input", (i.H, i.W, i.C), "int8")]
            + [Buf(name, tuple(np.asarray(v).shape), C_DTYPES[t]) for name, (t, v) in consts.items()]
            + [Buf("output", (i.OH, i.OW, i.C), "int8")])


def intrin_window(L: Layer, fn: str, part: Part) -> dict:
    """acc[lanes] += the taps of one pixel's window for one group of channels."""
    i = L.info
    ky0, ky1, kx0, kx1 = part.window
    nky, nkx = ky1 - ky0, kx1 - kx0
    t0, t1 = ky0 * i.KW + kx0, (ky1 - 1) * i.KW + kx1 - 1
    name = f"{fn}_window{part.region['bias']}"
    lanes = part.lanes
    x = Buf("x", ((nky - 1) * i.DH + 1, (nkx - 1) * i.DW + 1, lanes), "int8", True)
    if L.isa == "dsp":
        w = Buf("w", (2 * (t1 - t0 + 1),), "int32")
        weight = lambda b, v: sa.dsp_lane(b["w"][2 * (v["rh"] * i.KW + v["rw"]) + v["l"] % 2], v["l"] // 2)  # noqa: E731
    elif L.isa == "mve":
        w = Buf("w", (t1 - t0 + 1, 8), "int16")
        weight = lambda b, v: b["w"][v["rh"] * i.KW + v["rw"], _perm(v["l"])].astype("int32")  # noqa: E731
    else:
        w = Buf("w", (t1 - t0 + 1, lanes), "int8", True)
        weight = lambda b, v: b["w"][v["rh"] * i.KW + v["rw"], v["l"]].astype("int32")  # noqa: E731
    channel = (lambda v: _perm(v["l"])) if L.isa == "mve" else (lambda v: v["l"])

    def pixel(b, v):
        return b["x"][v["rh"] * i.DH, v["rw"] * i.DW, channel(v)]

    def reads(b, v):
        """As the kernel's update block reads: acc, the init's bias (see simd_gemm.intrin_gemm), input, weights."""
        tap = v["rh"] * i.KW + v["rw"]
        weight_read = b["w"][2 * tap + v["l"] % 2] if L.isa == "dsp" else b["w"][tap, channel(v)]
        return [b["acc"][v["l"]], b["bias"][v["l"]], pixel(b, v), weight_read]
    block = Block("acc", (Axis("l", lanes), Axis("rh", nky, True), Axis("rw", nkx, True)), "acc", lambda v: [v["l"]],
                  lambda b, v: b["acc"][v["l"]] + pixel(b, v).astype("int32") * weight(b, v), reads=reads)
    register_intrin(name, [Buf("acc", (lanes,), "int32"), Buf("bias", (lanes,), "int32"), x, w], block, name,
                    lambda b: [b["x"].access_ptr("r"), b["w"].access_ptr("r"), b["acc"].access_ptr("rw")])
    return dict(kind="depthwise", name=name, intrin=name, taps=part.region["taps"], first_ky=ky0, first_kx=kx0,
                t0=t0, n=lanes, mid_kx=part.region["mid_kx"], rows=part.region["rows"])
