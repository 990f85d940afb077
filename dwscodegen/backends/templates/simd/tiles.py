"""The plan of the padded-window depthwise variants (DSP `depthwise_conv2d_s8_dsp_padded_4c`, MVE
`depthwise_conv2d_s8_mve_padded_8c`), shared by both ISAs.

Those kernels take any depthwise layer: a depth multiplier above 1, any kernel size, dilation, stride and
explicit (asymmetric) padding. Per group of output channels (the SIMD lanes) and per output tile, they copy
the input window the tile reads into a buffer (scratch) as int16 lanes, with the input zero point where the
window lies outside the input; lane j of a group holds input channel (o + j) // multiplier, so a multiplier
is only a different copy. Every output of the tile then reads all KH x KW taps from the buffer at constant
offsets: no bounds checks, no per-border bias, one loop body. The bias folds the input offset over all taps,
so a padding tap adds (zero point - zero point) * w = 0, as in TFLite.

Where stride and dilation share a factor (stride 2, dilation 2), the taps only read every g-th input row or
column (g their gcd), and the buffer holds only those; so does an axis with one tap (1xK, Kx1) and a stride.

This module picks the output tile (the one with the least copying whose buffer fits STACK_BUDGET) and how
the tap loop is unrolled (all taps up to TAP_UNROLL; else rows of taps per loop iteration; rows wider than
that in chunks of TAP_CHUNK).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from .common import STACK_BUDGET, ConvInfo

TAP_UNROLL = 32   # taps unrolled per loop iteration, at most
TAP_CHUNK = 16    # a kernel row wider than TAP_UNROLL: taps per iteration of its loop


@dataclass(frozen=True)
class TilePlan:
    """TH x TW outputs per tile; each tile's window is ROWS x COLS buffer pixels (a partial last tile uses
    fewer). Buffer row r, column q hold input row iy0 + r * GY, column ix0 + q * GX of the tile's window;
    outputs are BSH rows / BSW columns apart in the buffer, taps BDH / BDW."""
    TH: int
    TW: int
    ROWS: int
    COLS: int
    GY: int
    GX: int
    BSH: int
    BSW: int
    BDH: int
    BDW: int

    def context(self, info: ConvInfo) -> dict:
        return dict(TH=self.TH, TW=self.TW, ROWS=self.ROWS, COLS=self.COLS, GY=self.GY, GX=self.GX,
                    BSH=self.BSH, BSW=self.BSW, BDH=self.BDH, BDW=self.BDW,
                    single=self.TH == info.OH and self.TW == info.OW)


def _sizes(n: int) -> list[int]:
    """The distinct tile sizes that cut n outputs into equal-as-possible tiles, largest first."""
    return sorted({-(-n // k) for k in range(1, n + 1)}, reverse=True)


def tile_plan(info: ConvInfo, pixel_bytes: int, budget: int = STACK_BUDGET) -> TilePlan | None:
    """The tile with the fewest buffer pixels copied over the whole output (then the fewest tiles) whose
    window fits `budget` bytes at `pixel_bytes` per pixel; None if not even one output's window fits."""
    # A 1-tap axis (Kx1, 1xK) reads only every stride-th input row or column, whatever its dilation.
    gy = info.SH if info.KH == 1 else math.gcd(info.SH, info.DH)
    gx = info.SW if info.KW == 1 else math.gcd(info.SW, info.DW)
    bsh, bsw = info.SH // gy, info.SW // gx
    bdh, bdw = (1 if info.KH == 1 else info.DH // gy), (1 if info.KW == 1 else info.DW // gx)
    best = None
    for th in _sizes(info.OH):
        for tw in _sizes(info.OW):
            rows, cols = (th - 1) * bsh + (info.KH - 1) * bdh + 1, (tw - 1) * bsw + (info.KW - 1) * bdw + 1
            if rows * cols * pixel_bytes > budget:
                continue
            tiles = -(-info.OH // th) * -(-info.OW // tw)
            key = (tiles * rows * cols, tiles)
            if best is None or key < best[0]:
                best = (key, TilePlan(th, tw, rows, cols, gy, gx, bsh, bsw, bdh, bdw))
    return None if best is None else best[1]


@dataclass(frozen=True)
class TapPlan:
    """How the KH x KW taps are unrolled. unroll_all: every tap in one block. Otherwise a loop over kernel
    rows, ROWS_PER_STEP rows per iteration (STEPS iterations, then REST_ROWS rows unrolled); a row wider
    than TAP_UNROLL is itself a loop of TAP_CHUNK taps (COL_STEPS iterations, then REST_COLS taps)."""
    unroll_all: bool
    ROWS_PER_STEP: int
    STEPS: int
    REST_ROWS: int
    COL_STEPS: int
    REST_COLS: int


def tap_plan(kh: int, kw: int) -> TapPlan:
    if kh * kw <= TAP_UNROLL:
        return TapPlan(True, kh, 1, 0, 0, kw)
    if kw <= TAP_UNROLL:
        per = TAP_UNROLL // kw
        return TapPlan(False, per, kh // per, kh % per, 0, kw)
    return TapPlan(False, 1, kh, 0, kw // TAP_CHUNK, kw % TAP_CHUNK)


def lane_channels(info: ConvInfo, lanes: int) -> list[list[int]]:
    """Per group of `lanes` output channels, the input channel each lane reads ((o + j) // multiplier;
    lanes past the last output channel read the last input channel, against zero weights)."""
    groups = -(-info.OC // lanes)
    return [[min((g * lanes + j) // info.MULT, info.C - 1) for j in range(lanes)] for g in range(groups)]


def tap_note(kh: int, kw: int) -> str:
    """How the tap loop runs, for a kernel's banner (after "N taps")."""
    t = tap_plan(kh, kw)
    if t.unroll_all:
        return " unrolled"
    if t.COL_STEPS:
        return f"{', a loop over kernel rows, each' if kh > 1 else ','} a loop of {TAP_CHUNK} taps unrolled"
    rows = "row" if t.ROWS_PER_STEP == 1 else f"{t.ROWS_PER_STEP} rows"
    return f", a loop over kernel rows ({rows} unrolled per iteration)"
