"""Per-target SIMD kernel variants for the templates backend, chosen from the target's features.

`select` returns (template, context) for an op that has a faster variant on `target`, or None to keep
the portable kernel. Variants compute exactly what the portable kernel computes (TFLite int8 semantics,
bit for bit); each variant module checks at generation time that its shortcuts are exact for the layer's
constant weights and quantization (shapes, strides, padding, accumulator bounds), and declines otherwise.
Only int8 Conv2D / DepthwiseConv2D with TFLite requantization have variants (ONNX-requantized, hybrid and
float layers keep the portable kernels). Like the portable kernels of these ops, a variant computes one image;
the library calls it once per image of a batch (templates.PER_IMAGE).

- DSP (feature `dsp`: Cortex-M4/M7/M33), simd_dsp.py, arm_acle.h (SXTB16, SMLAD, SMLABB/SMLATT, SSAT):
  pointwise_conv2d_s8_dsp_{4x2,1x2}, conv2d_s8_dsp_im2col_{2x2,1x2} (tiles: pixels x output channels),
  depthwise_conv2d_s8_dsp_4c (4 channels per step, any kernel up to 25 taps, multiplier 1).
- MVE (feature `mve`: Cortex-M55), simd_mve.py, arm_mve.h (VMLADAVA, VMULLB/T, VQRDMULH, VRSHL):
  pointwise_conv2d_s8_mve_2x4, conv2d_s8_mve_im2col_{2x4,1x4}, depthwise_conv2d_s8_mve_8c.

Setting the environment variable DWSCODEGEN_PORTABLE_KERNELS=1 keeps every op on its portable kernel
(benchmarks/cortexm_layers.py uses it to measure the portable baseline).

Requantization shortcuts shared by both (checked in tests/test_simd_kernels.py):
  SaturatingRoundingDoublingHighMul(a, m) = (a*m + 2^30) >> 31   for m in [0, 2^31) (arithmetic shift)
  RoundingDivideByPOT(y, e) = (y + 2^(e-1) + s) >> e             for e >= 1, s = -1 if y < 0 else 0,
and s may be taken from the accumulator's sign instead of y's (m >= 0 gives them the same sign, and
where y = 0 < -a both forms give 0). Folding the output zero point into the rounding constant
(rc = 2^(e-1) + zp * 2^e) and doubling a, the whole TFLite requantization plus output offset becomes
    hi32(2a * m + 2^31 + (rc + s) * 2^32) >> e
one SMMLAR and a shift on DSP, and VQRDMULH + adds + VRSHL on MVE; exact whenever no intermediate
leaves int32, which is checked per channel from the bound |acc| <= |bias| + (|in_offset| + 128) * sum|w|.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from .. import qparams as qp
from ..ir import Graph, Op
from ..reference.ops import is_hybrid
from ..targets import Target

PORTABLE_ENV = "DWSCODEGEN_PORTABLE_KERNELS"
INT32_MAX = (1 << 31) - 1


def portable_forced() -> bool:
    return os.environ.get(PORTABLE_ENV, "").strip() not in ("", "0")


@dataclass(frozen=True)
class ConvInfo:
    """Everything a conv-like int8 variant needs, straight from the graph (not the portable context)."""
    depthwise: bool
    H: int
    W: int
    C: int
    OH: int
    OW: int
    OC: int
    KH: int
    KW: int
    SH: int
    SW: int
    DH: int
    DW: int
    PT: int
    PB: int
    PL: int
    PR: int
    MULT: int
    weights: np.ndarray     # int64; conv: [OC][KH][KW][C]; depthwise: [KH][KW][OC]
    bias: np.ndarray        # int64 [OC], as in the graph (input offset not folded)
    in_offset: int          # -input zero point
    out_offset: int         # output zero point
    multiplier: np.ndarray  # int64 [OC]
    shift: np.ndarray       # int64 [OC], positive = left
    act_min: int
    act_max: int

    @property
    def pointwise(self) -> bool:
        return (not self.depthwise and self.KH == 1 and self.KW == 1
                and (self.PT, self.PB, self.PL, self.PR) == (0, 0, 0, 0))

    def weight_abs_sum(self) -> np.ndarray:
        """sum |w| per output channel (int64 [OC])."""
        if self.depthwise:
            return np.abs(self.weights).reshape(-1, self.OC).sum(axis=0)
        return np.abs(self.weights).reshape(self.OC, -1).sum(axis=1)

    def weight_sum(self) -> np.ndarray:
        if self.depthwise:
            return self.weights.reshape(-1, self.OC).sum(axis=0)
        return self.weights.reshape(self.OC, -1).sum(axis=1)

    def partial_bound(self) -> np.ndarray:
        """Bound of every partial sum a variant forms: folded bias (bias + in_offset * sum of any subset of
        the weights) plus any partial sum of x * w with x in [-128, 127]."""
        return np.abs(self.bias) + (abs(self.in_offset) + 128) * self.weight_abs_sum()


def conv_info(graph: Graph, op: Op) -> ConvInfo | None:
    if op.type not in ("Conv2D", "DepthwiseConv2D") or graph.op_dtype(op) != "int8" or is_hybrid(graph, op):
        return None
    a = op.attrs
    if getattr(a, "requant", "tflite") != "tflite":
        return None
    x, w, y = graph.tensor(op.inputs[0]), graph.tensor(op.inputs[1]), graph.tensor(op.outputs[0])
    if w.quant is None or np.any(np.asarray(w.quant.zero_point) != 0):
        return None
    q = qp.conv_qparams(graph, op)
    oc = y.shape[3]
    bias = (graph.tensor(op.inputs[2]).data.astype(np.int64) if len(op.inputs) > 2 and op.inputs[2]
            else np.zeros(oc, np.int64))
    depthwise = op.type == "DepthwiseConv2D"
    weights = w.data.astype(np.int64)
    weights = weights.reshape(w.shape[1], w.shape[2], oc) if depthwise else weights.reshape(oc, w.shape[1], w.shape[2], -1)
    pt, pb, pl, pr = a.pad
    return ConvInfo(
        depthwise=depthwise, H=x.shape[1], W=x.shape[2], C=x.shape[3], OH=y.shape[1], OW=y.shape[2], OC=oc,
        KH=w.shape[1], KW=w.shape[2], SH=a.stride[0], SW=a.stride[1], DH=a.dilation[0], DW=a.dilation[1],
        PT=pt, PB=pb, PL=pl, PR=pr, MULT=a.depth_multiplier if depthwise else 1,
        weights=weights, bias=bias, in_offset=q.input_offset, out_offset=q.output_offset,
        multiplier=q.multiplier.astype(np.int64), shift=q.shift.astype(np.int64),
        act_min=q.act_min, act_max=q.act_max)


def tap_ranges(out_size: int, stride: int, pad: int, dilation: int, in_size: int, k: int) -> list[tuple[int, int]]:
    """[k_begin, k_end) of the taps inside the input for every output coordinate (as the portable kernel)."""
    ranges = []
    for o in range(out_size):
        i0 = o * stride - pad
        taps = [t for t in range(k) if 0 <= i0 + t * dilation < in_size]
        ranges.append((taps[0], taps[-1] + 1) if taps else (0, 0))
    return ranges


def runs(values: list) -> list[tuple[int, int, object]]:
    """Consecutive equal values -> [(begin, end, value)]."""
    out: list[tuple[int, int, object]] = []
    for i, v in enumerate(values):
        if out and out[-1][2] == v:
            out[-1] = (out[-1][0], i + 1, v)
        else:
            out.append((i, i + 1, v))
    return out


# --- requantization plans ------------------------------------------------------------------------

@dataclass(frozen=True)
class RequantPlan:
    """How a variant requantizes.

    mode "round": out = hi32(A*m + 2^31 + (rc + s)*2^32) >> e with A = acc * scale, s = A >> 31;
    mode "noround" (every channel has e == 0): out = hi32(A*m + 2^31 + rc*2^32), rc = zp;
    mode "generic": the portable dws_multiply_by_quantized_multiplier on the exact accumulator.
    """
    mode: str
    scale: np.ndarray        # int64 [OC]: power of two the accumulator is pre-scaled by (1 in generic)
    multiplier: np.ndarray   # int64 [OC]
    rshift: np.ndarray       # int64 [OC]: e = max(-shift, 0)
    lshift: np.ndarray       # int64 [OC]: max(shift, 0)
    rc: np.ndarray           # int64 [OC]


def _rounding_constants(info: ConvInfo, e: np.ndarray) -> np.ndarray:
    zp = np.int64(info.out_offset)
    half = np.where(e >= 1, np.left_shift(np.int64(1), np.maximum(e - 1, 0)), 0)
    return half + zp * np.left_shift(np.int64(1), e)


def requant_plan(info: ConvInfo, prescale_doubling: bool, weight_limit: int | None) -> RequantPlan | None:
    """prescale_doubling: the kernel folds 2^(left + 1) into its weights and bias (DSP); otherwise the kernel
    applies the left shift and doubling itself (MVE's VQRDMULH doubles). weight_limit: the largest |w * scale|
    the kernel's weight format holds (int16: 32767; the negative side allows one more).
    Returns None when even the generic form cannot be guaranteed (an accumulator that may leave int32)."""
    m, shift = info.multiplier, info.shift
    left, e = np.maximum(shift, 0), np.maximum(-shift, 0)
    bound = info.partial_bound()
    if np.any(bound > INT32_MAX) or np.any(m < 0) or np.any(m > INT32_MAX):
        return None
    generic = RequantPlan("generic", np.ones_like(m), m, e, left, np.zeros_like(m))
    if np.all(e >= 1):
        mode = "round"
    elif np.all(e == 0):
        mode = "noround"
    else:
        return generic
    if np.any(e > 30):
        return generic
    scale = np.left_shift(np.int64(1), left + 1) if prescale_doubling else np.ones_like(m)
    rc = _rounding_constants(info, e) if mode == "round" else np.full_like(m, info.out_offset)
    if prescale_doubling:
        if weight_limit is not None:
            scaled = info.weights.reshape(-1, info.OC) if info.depthwise else info.weights.reshape(info.OC, -1).T
            if np.any(scaled * scale > weight_limit) or np.any(scaled * scale < -weight_limit - 1):
                return generic
        a_bound = bound * scale
    else:
        a_bound = bound << left
    # |A| and |hi32(...)| = |SRDHM + rc + s| <= |A| + |rc| + 1 must stay inside int32.
    if np.any(a_bound + np.abs(rc) + 2 > INT32_MAX):
        return generic
    return RequantPlan(mode, scale, m, e, left, rc)


PORTABLE = "portable"


def select(graph: Graph, op: Op, target: Target, ctx: dict, kernel: str | None = None) -> tuple[str, dict] | None:
    """`kernel` (a tuning choice): "portable", a variant's template stem, or None for the preferred variant."""
    if kernel == PORTABLE or portable_forced() or op.type not in ("Conv2D", "DepthwiseConv2D"):
        return None
    info = conv_info(graph, op)
    if info is None:
        return None
    if "mve" in target.features:
        from . import simd_mve as isa
    elif "dsp" in target.features:
        from . import simd_dsp as isa
    else:
        return None
    return isa.select(info, ctx, kernel)


def variants(graph: Graph, op: Op, target: Target, ctx: dict) -> list[str]:
    """Template stems of every variant that applies to `op` on `target` (the tuner's choices)."""
    from . import simd_dsp, simd_mve
    names = simd_mve.VARIANTS if "mve" in target.features else simd_dsp.VARIANTS if "dsp" in target.features else ()
    found = []
    for name in names:
        chosen = select(graph, op, target, dict(ctx), name)
        if chosen is not None and chosen[0] == f"kernels/{name}.c.j2":
            found.append(name)
    return found
