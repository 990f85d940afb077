"""The plan of the DSP depthwise variant `depthwise_conv2d_s8_dsp_pairs_1c`: one channel at a time, its taps in
pairs (SMLAD: two int16 products summed per instruction, so a 9-tap row is 5 multiply-accumulates).

Per input channel and per band of output rows, the kernel copies the channel's input window into a plane (scratch)
of int16 values, the input zero point where the window lies outside the input (the bias folds the input offset
over all taps, so padding taps add nothing, as in TFLite). Each plane row runs along the kernel's pair axis A
(x, or y for a Kx1 kernel, so 1xK and Kx1 both pair their K taps), split into D phase rows where the dilation
along A is D: taps k and k + 1 of any output are then adjacent int16 values, one unaligned 32-bit load. Each of
the channel's `multiplier` output channels then runs over the plane with its own weights and requantization
constants (in registers where they fit), so a multiplier costs no extra copy.

Axis units: an axis with one tap, or whose stride and dilation share a factor g, only reads every G-th input
element (G = stride or g); the plane holds only those, with strides S and dilations D in plane elements.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from .common import STACK_BUDGET, ConvInfo

MAX_PAIRS = 32    # pairs of one kernel row unrolled, at most (a wider row keeps the padded 4-channel variant)
UNROLL_PAIRS = 32  # pairs of all kernel rows unrolled; more: a loop over kernel rows


@dataclass(frozen=True)
class Axis:
    IN: int        # input size
    OUT: int       # output size
    K: int         # taps
    P: int         # padding before, input elements
    G: int         # input elements per plane element
    S: int         # output stride, plane elements
    D: int         # tap dilation, plane elements
    IN_STEP: int   # bytes between input elements
    OUT_STEP: int  # bytes between outputs

    def span(self, outputs: int) -> int:
        return (outputs - 1) * self.S + (self.K - 1) * self.D + 1


def _axis(size: int, out: int, k: int, stride: int, dilation: int, pad: int, in_step: int, out_step: int) -> Axis:
    g = stride if k == 1 else math.gcd(stride, dilation)
    return Axis(size, out, k, pad, g, stride // g, 1 if k == 1 else dilation // g, in_step, out_step)


@dataclass(frozen=True)
class PairsPlan:
    A: Axis                 # along plane rows: taps paired
    B: Axis                 # across plane rows
    transposed: bool        # A is y (a Kx1 kernel)
    LEN: int                # int16 per phase row: the row's elements of one phase, and one more
    LINE: int               # int16 per plane row (A.D phase rows)
    TB: int                 # output rows (along B) per band
    ROWS: int               # plane rows of a full band
    PAIRS: int              # pairs per kernel row: ceil(A.K / 2)
    phases: list            # per phase: (first, end) indices copied from the input (rest: zero point)
    unroll_rows: bool       # every kernel row's pairs unrolled (else a loop over kernel rows)

    def context(self) -> dict:
        return dict(A=self.A, B=self.B, transposed=self.transposed, LEN=self.LEN, LINE=self.LINE, TB=self.TB,
                    ROWS=self.ROWS, PAIRS=self.PAIRS, phases=self.phases, unroll_rows=self.unroll_rows,
                    single=self.TB == self.B.OUT)


def pairs_plan(info: ConvInfo, budget: int = STACK_BUDGET) -> PairsPlan | None:
    """None when a kernel row has more than 2 * MAX_PAIRS taps or not one output row's plane fits `budget`."""
    x = _axis(info.W, info.OW, info.KW, info.SW, info.DW, info.PL, info.C, info.OC)
    y = _axis(info.H, info.OH, info.KH, info.SH, info.DH, info.PT, info.W * info.C, info.OW * info.OC)
    transposed = info.KW == 1 and info.KH > 1
    a, b = (y, x) if transposed else (x, y)
    pairs = -(-a.K // 2)
    if pairs > MAX_PAIRS:
        return None
    length = -(-a.span(a.OUT) // a.D) + 1
    line = a.D * length
    tb = next((t for t in range(b.OUT, 0, -1) if b.span(t) * line * 2 <= budget), 0)
    if tb == 0:
        return None
    phases = []
    for ph in range(a.D):
        inside = [i for i in range(length)
                  if i * a.D + ph < a.span(a.OUT) and 0 <= (i * a.D + ph) * a.G - a.P < a.IN]
        phases.append((inside[0], inside[-1] + 1) if inside else (0, 0))
    return PairsPlan(a, b, transposed, length, line, tb, b.span(tb), pairs, phases, b.K * pairs <= UNROLL_PAIRS)
