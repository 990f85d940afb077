"""Tensorized pointwise and im2col convolution (int8, one image): the templates road's GEMM variants, DSP
(SXTB16 / SMLAD), MVE (VMLADAVA) and Thumb-2 (register tiles), as TVM tensor intrinsics in an s_tir schedule.

The kernel is written as TIR blocks (tir_build.py) over the output as [pixel][channel], cut into parts: full
tiles of P pixels x Q channels, the pixels left over (one tile of NPIX % P) and the channels left over (one
tile of OC % Q). Each part is a pipeline of stages, scheduled alike:

    [window]   the pixel's receptive field, gathered (padding taps read the input zero point), zero up to a
               whole word (DSP) or vector (MVE); pointwise layers read the input rows instead where those are
               whole words / vectors and, except on DSP (which widens pixel by pixel), evenly spaced
    [patch]    DSP: the pixel's bytes widened to int16 pairs in SXTB16 lane order, once per pixel
    acc        bias + the products of a P x Q tile over the whole reduction
    output     requantized, Q channels of a pixel at a time

The schedule splits the pixels into tiles (the knob `pixels`), computes acc per tile inside the pixel-tile
loop and the window / patch once per pixel tile, and tensorizes: patch -> <fn>_widen, acc -> <fn>_gemm_PxQ,
output -> <fn>_requant_Q, C micro-kernels the kernel's source defines (simd.py renders templates/micro/*.c.j2).

Weights are packed as the templates road packs them (dsp.sxtb16_rows scaled by the requantization plan's
power of two, mve.gemm_weights); the bias has the input offset folded in; requantization is the exact
plan of each ISA (simd_arith.py), or onnxruntime's float32 epilogue for plan "onnx" (rq_const).  TVM is imported inside the functions.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..templates.simd import dsp, mve, tiled
from ..templates.simd.common import ConvInfo, RequantPlan, ceil_to
from . import simd_arith as sa
from .arith import requantize_onnx
from .tir_build import Axis, Block, Buf, register_intrin


TILED_RQ_WORDS = {"round": 4, "noround": 3, "generic": 2, "onnx": 2}   # tiled.requant_records per channel
C_DTYPES = {"int8_t": "int8", "int16_t": "int16", "int32_t": "int32", "float": "float32"}


def rq_const(plan: RequantPlan, words) -> tuple[str, np.ndarray]:
    """The requantization table as a constant: the templates road's int32 words, or for plan "onnx" (whose words
    are the float32 scales' bits) those scales as float32, in the same layout: the TIR reads a scale as the float
    it is (no type-punning in the C TVM emits), the micro-kernels hand its bits to the templates' epilogue."""
    words = np.asarray(words).astype(np.int32)
    return ("float", words.view(np.float32)) if plan.mode == "onnx" else ("int32_t", words)


def split_scale(L) -> bool:
    """Thumb-2 with plan "onnx": the micro-kernels take the templates road's (significand, exponent) records
    (tiled.requant_records, its integer form of the float32 epilogue), the TIR the float32 scales they encode, a
    second constant `scale`; the output blocks name both as their reads (scale_reads)."""
    return L.isa == "thumb2" and L.plan.mode == "onnx"


def scale_reads(L, acc_read, b, channel) -> list:
    """The read regions of a split_scale output block: its accumulator, the channel's scale (what the TIR
    computes with) and its records (what the micro-kernel computes with: the same number)."""
    first = channel * L.rq_words
    return [acc_read, b["scale"][channel], b["rq"][first:first + L.rq_words]]


@dataclass(frozen=True)
class Part:
    """Output pixels [p0, p0 + npix) in tiles of P, channels [o0, o0 + blocks * Q) in tiles of Q."""
    index: int
    p0: int
    npix: int
    P: int
    o0: int
    blocks: int
    Q: int


def parts(npix: int, oc: int, P: int, Q: int) -> list[Part]:
    pixels = [(0, npix // P * P, P), (npix // P * P, npix % P, npix % P)]
    channels = [(0, oc // Q, Q), (oc // Q * Q, 1, oc % Q)]
    found = []
    for p0, n, tp in pixels:
        for o0, blocks, tq in channels:
            if n and tq and blocks:
                found.append(Part(len(found), p0, n, tp, o0, blocks, tq))
    return found


@dataclass(frozen=True)
class Layer:
    """What the blocks of one layer depend on."""
    isa: str                    # "dsp" | "mve" | "thumb2"
    info: ConvInfo
    plan: RequantPlan
    windowed: bool              # the source rows are a gathered window (else the input rows)
    K: int                      # reduction length, (ky, kx, c) order
    KX: int                     # bytes of one source row as the acc stage reads it (MVE: whole vectors)
    rq_words: int
    vectors: tuple[str, ...] = ()   # MVE: the requantization vectors' names, in rq order

    @property
    def bias_in_acc(self) -> bool:
        """The accumulators start at the bias (DSP, Thumb-2); MVE adds it to the requantized vector instead."""
        return self.isa != "mve"

    @property
    def tail(self) -> bool:
        """MVE reading input rows that are not whole vectors: the last chunk's loads are predicated (VCTP) to
        the row's K % 16 bytes, and the reduction runs over the K bytes alone."""
        return self.isa == "mve" and not self.windowed and self.K % 16 != 0

    @property
    def NW(self) -> int:
        return -(-self.K // 4) * 2

    @property
    def K16(self) -> int:
        """MVE: the reduction in whole vectors (the window's bytes past K are zero; input rows are whole vectors)."""
        return ceil_to(self.K, 16)

    @property
    def npix(self) -> int:
        return self.info.OH * self.info.OW


def layer(isa: str, info: ConvInfo, plan: RequantPlan) -> tuple[Layer, dict]:
    """The layer and its constants {suffix: (C type, values)} in the TVM function's parameter order."""
    rows = info.weights.reshape(info.OC, -1)
    k = rows.shape[1]
    folded = info.bias + info.in_offset * rows.sum(axis=1)
    # Pointwise layers read the input rows, except where the rows are not whole words (DSP) or a tile's rows are
    # not evenly spaced (strides; DSP widens pixel by pixel): those gather (copy) them, as the im2col layers gather
    # their windows. MVE reads a row's last partial vector with predicated loads (Layer.tail), where there is a
    # whole vector before it (rows shorter than one vector are gathered: the intrinsic's weight region is a vector).
    direct = info.pointwise and (isa != "dsp" or info.C % 4 == 0) and (isa != "mve" or info.C % 16 == 0
                                                                      or info.C > 16) and (
        isa == "dsp" or (info.SH, info.SW) == (1, 1))
    windowed = not direct
    if isa == "dsp":
        consts = dict(weights=("int32_t", dsp.sxtb16_rows(rows * plan.scale[:, None])),
                      bias=("int32_t", (folded * plan.scale).astype(np.int32)),
                      rq=rq_const(plan, dsp.requant_records(info, plan).reshape(-1)))
        # A gathered window is zero-padded to whole groups of 4 bytes: widened without a partial word.
        kx = ceil_to(k, 4) if windowed else k
        return Layer(isa, info, plan, windowed, k, kx, dsp.requant_context(info, plan)["RQW"]), consts
    if isa == "thumb2":
        consts = dict(weights=("int8_t", rows.astype(np.int8)), bias=("int32_t", folded.astype(np.int32)),
                      rq=("int32_t", tiled.requant_records(info, plan, info.OC).reshape(-1).astype(np.int32)))
        if plan.mode == "onnx":
            consts["scale"] = ("float", np.asarray(info.onnx_scale, np.float32))
        return Layer(isa, info, plan, windowed, k, k, TILED_RQ_WORDS[plan.mode]), consts
    names, vec = mve.requant_vectors(info, plan)
    blocks = -(-info.OC // 4)
    lanes = np.zeros((len(names), blocks * 4), np.int64)
    for i, name in enumerate(names):
        lanes[i, :info.OC] = vec[name]
    bias = np.zeros(blocks * 4, np.int64)
    bias[:info.OC] = folded
    consts = dict(weights=("int8_t", mve.gemm_weights(info, 4)), bias=("int32_t", bias.astype(np.int32)),
                  rq=rq_const(plan, lanes.reshape(len(names), blocks, 4).transpose(1, 0, 2)))
    kx = ceil_to(k, 16) if windowed else info.C
    return Layer(isa, info, plan, windowed, k, kx, 0, tuple(names)), consts


def mve_mode(plan: RequantPlan) -> str:
    if plan.mode == "onnx":
        return "onnx"
    e = plan.rshift
    return "round" if np.all(e >= 1) else "noround" if np.all(e == 0) else "mixed"


# --- the stages -------------------------------------------------------------------------------------

def _source(L: Layer, part: Part, b, p, k):
    """Byte k of output pixel p's source row (the window, or the input pixel it reads)."""
    from tvm import tirx
    if L.windowed:
        return b[f"window{part.index}"][p, k]
    i = L.info
    pix = p + part.p0
    if i.SH != 1 or i.SW != 1:
        pix = tirx.floordiv(pix, i.OW) * (i.SH * i.W) + tirx.floormod(pix, i.OW) * i.SW
    return b["input"][pix, k]


def _gather(L: Layer, part: Part, b, v):
    """Byte k of pixel p's receptive field in (ky, kx, c) order: the input, its zero point where a tap is
    padding, 0 past the K bytes (MVE's whole vectors)."""
    from tvm import te, tirx
    i = L.info
    pix, k = v["p"] + part.p0, v["k"]
    oy, ox = tirx.floordiv(pix, i.OW), tirx.floormod(pix, i.OW)
    ky, kx, c = tirx.floordiv(k, i.KW * i.C), tirx.floormod(tirx.floordiv(k, i.C), i.KW), tirx.floormod(k, i.C)
    iy, ix = oy * i.SH - i.PT + ky * i.DH, ox * i.SW - i.PL + kx * i.DW
    clamp = lambda e, n: te.min(te.max(e, 0), n - 1)  # noqa: E731  (keeps the read region inside the input)
    inside = tirx.all(iy >= 0, iy < i.H, ix >= 0, ix < i.W)
    value = tirx.if_then_else(inside, b["input"][clamp(iy, i.H), clamp(ix, i.W), c],
                              tirx.const(-i.in_offset, "int8"))
    if L.KX > L.K:
        value = tirx.if_then_else(k < L.K, value, tirx.const(0, "int8"))
    return value


def _mac(L: Layer, v, x, w):
    """One reduction term of acc: x(index) reads the source (DSP: patch words), w(index...) the weights."""
    if L.isa == "dsp":
        return sa.smlad(x(v["j"]), w(v["j"]))
    if L.isa == "thumb2":
        return x(v["k"]).astype("int32") * w(v["k"]).astype("int32")
    if L.tail:
        from tvm import tirx
        return x(v["k"]).astype("int32") * w(tirx.floordiv(v["k"], 16), tirx.floormod(v["k"], 16)).astype("int32")
    return x(v["c"] * 16 + v["l"]).astype("int32") * w(v["c"], v["l"]).astype("int32")


def _reduction(L: Layer) -> tuple[Axis, ...]:
    if L.isa == "dsp":
        return (Axis("j", L.NW, True),)
    if L.isa == "thumb2" or L.tail:
        return (Axis("k", L.K, True),)
    return (Axis("c", L.K16 // 16, True), Axis("l", 16, True))


def _zero(b, v):
    from tvm import tirx
    return tirx.const(0, "int32")


def _biased(L, acc, bias, channel):
    """The accumulator the requantization takes: acc itself, or (MVE gemm: the bias added to the vector
    of a pixel's channel sums, as the templates road does) acc + bias."""
    return acc if L.bias_in_acc else acc + bias[channel]


def requant_value(L, acc, rq_load, scale_load=None):
    """A channel's output from its accumulator; rq_load(index) reads its requantization word or vector,
    scale_load() its float32 scale where split_scale(L); L: a gemm or depthwise layer (isa, info, plan, vectors)."""
    i = L.info
    act = (i.act_min, i.act_max)
    if L.plan.mode == "onnx":     # the portable compute's epilogue (arith.py), the scale a float32 constant
        scale = scale_load() if split_scale(L) else rq_load(L.vectors.index("scale") if L.isa == "mve" else 0)
        return requantize_onnx(acc, scale, i.out_offset, *act)
    if L.isa == "mve":
        return sa.mve_requant(acc, lambda name: rq_load(L.vectors.index(name)), list(L.vectors), mve_mode(L.plan), act)
    generic = dict(left_shift=bool(np.any(i.shift > 0)), max_right=int(max(0, -int(i.shift.min()))))
    return sa.plan_requant(acc, rq_load, L.plan.mode, i.out_offset, act, generic, lshift=L.isa == "thumb2")


def blocks(L: Layer, part: Part) -> list[Block]:
    n = part.index
    chan = lambda v: part.o0 + v["ob"] * part.Q + v["q"]  # noqa: E731
    out = []
    if L.windowed:
        out.append(Block(f"window{n}", (Axis("p", part.npix), Axis("k", L.KX)), f"window{n}",
                         lambda v: [v["p"], v["k"]], lambda b, v: _gather(L, part, b, v)))
    if L.isa == "dsp":
        out.append(Block(f"patch{n}", (Axis("p", part.npix), Axis("j", L.NW)), f"patch{n}", lambda v: [v["p"], v["j"]],
                         lambda b, v: sa.widen_word(lambda k: _source(L, part, b, v["p"], k), v["j"])))

    def x(b, v):
        if L.isa == "dsp":
            return lambda j: b[f"patch{n}"][v["p"], j]
        return lambda k: _source(L, part, b, v["p"], k)

    def w(b, v):
        if L.isa == "mve":
            return lambda c, l: b["weights"][part.o0 // 4 + v["ob"], c, v["q"], l]
        return lambda k: b["weights"][chan(v), k]

    spatial = (Axis("p", part.npix), Axis("ob", part.blocks), Axis("q", part.Q))
    out.append(Block(f"acc{n}", spatial + _reduction(L), f"acc{n}", lambda v: [v["ob"], v["p"], v["q"]],
                     lambda b, v: b[f"acc{n}"][v["ob"], v["p"], v["q"]] + _mac(L, v, x(b, v), w(b, v)),
                     init=(lambda b, v: b["bias"][chan(v)]) if L.bias_in_acc else _zero))

    def rq(b, v):
        if L.isa == "mve":
            return lambda idx: b["rq"][part.o0 // 4 + v["ob"], idx, v["q"]]
        return lambda idx: b["rq"][chan(v) * L.rq_words + idx]
    acc = lambda b, v: b[f"acc{n}"][v["ob"], v["p"], v["q"]]  # noqa: E731
    out.append(Block(f"output{n}", spatial, "output", lambda v: [v["p"] + part.p0, chan(v)],
                     lambda b, v: requant_value(L, _biased(L, acc(b, v), b["bias"], chan(v)), rq(b, v),
                                                lambda: b["scale"][chan(v)]),
                     reads=(lambda b, v: scale_reads(L, acc(b, v), b, chan(v))) if split_scale(L) else None))
    return out


def temporaries(L: Layer, part: Part) -> list[Buf]:
    n = part.index
    temps = [Buf(f"window{n}", (part.npix, L.KX), "int8")] if L.windowed else []
    if L.isa == "dsp":
        temps.append(Buf(f"patch{n}", (part.npix, L.NW), "int32"))
    return temps + [Buf(f"acc{n}", (part.blocks, part.npix, part.Q), "int32")]


def parameters(L: Layer, consts: dict) -> list[Buf]:
    """input ([H][W][C] when gathered, else [pixel][C]), the constants, output [pixel][OC]."""
    i = L.info
    rows = (i.H, i.W, i.C) if L.windowed else (i.H * i.W, i.C)
    return ([Buf("input", rows, "int8")]
            + [Buf(name, tuple(np.asarray(v).shape), C_DTYPES[t]) for name, (t, v) in consts.items()]
            + [Buf("output", (i.OH * i.OW, i.OC), "int8")])


# --- the tensor intrinsics --------------------------------------------------------------------------

def intrin_widen(L: Layer, fn: str) -> dict:
    name = f"{fn}_widen"
    register_intrin(name, [Buf("x", (L.KX,), "int8"), Buf("y", (L.NW,), "int32")],
                    Block("patch", (Axis("j", L.NW),), "y", lambda v: [v["j"]],
                          lambda b, v: sa.widen_word(lambda k: b["x"][k], v["j"])),
                    name, lambda b: [b["y"].access_ptr("w"), b["x"].access_ptr("r")])
    return dict(kind="widen", name=name, intrin=name, nbytes=L.KX)


def intrin_gemm(L: Layer, fn: str, P: int, Q: int) -> dict:
    """acc[P][Q] += the tile's products.  With the bias in the accumulators, a bias operand that is never read:
    decompose_reduction leaves the init's read of it in the update block's read regions, which the
    description must repeat to match."""
    name = f"{fn}_gemm_{P}x{Q}"
    red = _reduction(L)
    if L.isa == "dsp":
        src, wts = Buf("a", (P, L.NW), "int32"), Buf("w", (Q, L.NW), "int32")
        x, w, index = (lambda b, v: lambda j: b["a"][v["i"], j]), (lambda b, v: lambda j: b["w"][v["q"], j]), "j"
    elif L.isa == "thumb2":
        src, wts = Buf("a", (P, L.KX), "int8", True), Buf("w", (Q, L.K), "int8")
        x, w, index = (lambda b, v: lambda k: b["a"][v["i"], k]), (lambda b, v: lambda k: b["w"][v["q"], k]), "k"
    else:
        src, wts = Buf("a", (P, L.KX), "int8", True), Buf("w", (L.K16 // 16, Q, 16), "int8", True)
        x, w = (lambda b, v: lambda k: b["a"][v["i"], k]), (lambda b, v: lambda c, l: b["w"][c, v["q"], l])

    def red_read(b, v):
        if L.isa != "mve":
            return [x(b, v)(v[index]), w(b, v)(v[index])]
        if L.tail:
            from tvm import tirx
            return [x(b, v)(v["k"]), w(b, v)(tirx.floordiv(v["k"], 16), tirx.floormod(v["k"], 16))]
        return [x(b, v)(v["c"] * 16 + v["l"]), w(b, v)(v["c"], v["l"])]
    bias = [Buf("bias", (Q,), "int32")] if L.bias_in_acc else []
    operands = [Buf("c", (P, Q), "int32", True)] + bias + [src, wts]
    block = Block("acc", (Axis("i", P), Axis("q", Q)) + red, "c", lambda v: [v["i"], v["q"]],
                  lambda b, v: b["c"][v["i"], v["q"]] + _mac(L, v, x(b, v), w(b, v)),
                  reads=lambda b, v: [b["c"][v["i"], v["q"]]] + [b[o.name][v["q"]] for o in bias] + red_read(b, v))

    def args(b):
        ptrs = [b["a"].access_ptr("r")] + ([b["a"].strides[0]] if L.isa != "dsp" else [])
        return ptrs + [b["w"].access_ptr("r"), b["c"].access_ptr("rw"), b["c"].strides[0]]
    register_intrin(name, operands, block, name, args)
    return dict(kind="gemm", name=name, intrin=name, P=P, Q=Q)


def intrin_requant(L, fn: str, Q: int, lane_out=None, kind: str = "requant") -> dict:
    """out[lane_out(q)] = the requantized acc[q] for Q channels (L: a gemm or depthwise layer; lane_out: where
    accumulator lane q is stored, default q)."""
    name = f"{fn}_{kind}_{Q}"
    lane_out = lane_out or (lambda q: q)
    dtype = "float32" if L.plan.mode == "onnx" and not split_scale(L) else "int32"
    if L.isa == "mve":
        # The vectors up to the last one the plan reads (noround reads no shift), as the region tensorize finds.
        unread = ("nege", "smask") if mve_mode(L.plan) == "noround" else ()
        read = max(i for i, name in enumerate(L.vectors) if name not in unread) + 1
        rq = Buf("rq", (read, Q), dtype, True)
        reader = lambda b, v: (lambda idx: b["rq"][idx, v["q"]])  # noqa: E731
    else:   # records of rq_words per channel, one after the other
        rq = Buf("rq", (Q * L.rq_words,), dtype)
        reader = lambda b, v: (lambda idx: b["rq"][v["q"] * L.rq_words + idx])  # noqa: E731
    bias = [] if L.bias_in_acc else [Buf("bias", (Q,), "int32")]
    scale = [Buf("scale", (Q,), "float32")] if split_scale(L) else []
    operands = [Buf("out", (Q,), "int8"), Buf("acc", (Q,), "int32", True)] + bias + scale + [rq]
    block = Block("output", (Axis("q", Q),), "out", lambda v: [lane_out(v["q"])],
                  lambda b, v: requant_value(L, _biased(L, b["acc"][v["q"]], b.get("bias"), v["q"]), reader(b, v),
                                             lambda: b["scale"][v["q"]]),
                  reads=(lambda b, v: scale_reads(L, b["acc"][v["q"]], b, v["q"])) if scale else None)
    register_intrin(name, operands, block, name,
                    lambda b: [b["acc"].access_ptr("r")] + [b[o.name].access_ptr("r") for o in bias + scale]
                    + [b["rq"].access_ptr("r"), b["out"].access_ptr("w")], in_place=True)
    return dict(kind=kind, name=name, intrin=name, Q=Q)
