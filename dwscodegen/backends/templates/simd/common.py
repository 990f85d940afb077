"""What every SIMD variant builds on: the layer facts from the graph (ConvInfo), the requantization plans
that are exact for the layer's constants, and the depthwise region planner (output regions whose taps
inside the input are the same)."""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from .... import qparams as qp
from .... import quant
from ....ir import Graph, Op
from ....qparams import is_hybrid

INT32_MAX = quant.INT32_MAX


def ceil_to(n: int, step: int) -> int:
    """n rounded up to a multiple of step."""
    return -(-n // step) * step


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
    constant: np.ndarray | None = None      # bool [OC]: output channels folded to a constant (fold_constants)
    constant_out: np.ndarray | None = None  # int64 [OC]: their output value
    onnx_scale: np.ndarray | None = None    # float32 [OC]: requant "onnx" (onnxruntime's float32 epilogue), else None

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


def conv_info(graph: Graph, op: Op, onnx: bool = False) -> ConvInfo | None:
    """onnx: also layers with requant "onnx" (info.onnx_scale set); only callers whose variants requantize them
    as onnxruntime does (RequantPlan mode "onnx") pass it."""
    if op.type not in ("Conv2D", "DepthwiseConv2D") or graph.op_dtype(op) != "int8" or is_hybrid(graph, op):
        return None
    a = op.attrs
    requant = getattr(a, "requant", "tflite")
    if requant not in (("tflite", "onnx") if onnx else ("tflite",)):
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
        act_min=q.act_min, act_max=q.act_max,
        onnx_scale=qp.onnx_requant_scales(graph, op) if requant == "onnx" else None)


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


# --- constant channels ----------------------------------------------------------------------------

def fold_constants(info: ConvInfo) -> ConvInfo:
    """Output channels whose output does not depend on the input: all-zero weights (trained models' dead
    channels, whose converter-made scales near 1e-9 give shifts of -24 to -31 and biases near +-2^30) or a zero
    multiplier. Their output, computed here as TFLite does (the accumulator is the bias), becomes a per-channel
    constant: their weights and bias are zeroed, and the requantization plan makes the kernel produce the
    constant from a zero accumulator. So one such channel never decides the requantization of the whole layer.
    ONNX-requantized layers keep every channel: their float32 epilogue takes any scale and a dead channel's
    accumulator is its bias, so nothing is left for a constant channel to decide."""
    if info.onnx_scale is not None:
        return info
    w = info.weights.reshape(-1, info.OC) if info.depthwise else info.weights.reshape(info.OC, -1).T
    constant = np.all(w == 0, axis=0) | (info.multiplier == 0)
    if not np.any(constant):
        return info
    out = quant.multiply_by_quantized_multiplier(info.bias, info.multiplier, info.shift) + info.out_offset
    weights = info.weights.copy()
    if info.depthwise:
        weights[..., constant] = 0
    else:
        weights[constant] = 0
    return replace(info, weights=weights, bias=np.where(constant, 0, info.bias), constant=constant,
                   constant_out=np.where(constant, np.clip(out, info.act_min, info.act_max), 0).astype(np.int64))


# --- requantization plans ------------------------------------------------------------------------

@dataclass(frozen=True)
class RequantPlan:
    """How a variant requantizes.

    mode "round": out = hi32(A*m + 2^31 + (rc + s)*2^32) >> e with A = acc * scale, s = A >> 31;
    mode "noround" (every channel has e == 0): out = hi32(A*m + 2^31 + rc*2^32), rc = zp;
    mode "mixed" (channels with e == 0 and with e >= 1): "round" with s masked off (and no 2^(e-1) in rc)
    where e == 0;
    mode "generic": the portable dws_multiply_by_quantized_multiplier on the exact accumulator;
    mode "onnx" (requant "onnx"): onnxruntime's float32(acc) * scale rounded half to even, clamped, plus the zero
    point (ISA by ISA in templates/kernels/_onnx_requant.j2); multiplier holds the float32 scales' bit patterns.
    Constant channels (fold_constants) have m = 0 and a zero accumulator: out = out_zp, their constant.
    """
    mode: str
    scale: np.ndarray        # int64 [OC]: power of two the accumulator is pre-scaled by (1 in generic)
    multiplier: np.ndarray   # int64 [OC]
    rshift: np.ndarray       # int64 [OC]: e = max(-shift, 0)
    lshift: np.ndarray       # int64 [OC]: max(shift, 0)
    rc: np.ndarray           # int64 [OC]
    out_zp: np.ndarray       # int64 [OC]: the output zero point, or a constant channel's output


def _rounding_constants(zp: np.ndarray, e: np.ndarray) -> np.ndarray:
    half = np.where(e >= 1, np.left_shift(np.int64(1), np.maximum(e - 1, 0)), 0)
    return half + zp * np.left_shift(np.int64(1), e)


def requant_plan(info: ConvInfo, prescale_doubling: bool, weight_limit: int | None,
                 mixed: bool = True) -> RequantPlan | None:
    """prescale_doubling: the kernel folds 2^(left + 1) into its weights and bias (DSP); otherwise the kernel
    applies the left shift and doubling itself (MVE's VQRDMULH doubles). weight_limit: the largest |w * scale|
    the kernel's weight format holds (int16: 32767; the negative side allows one more). mixed: the kernel
    has the "mixed" mode. Constant channels (info.constant) take the parameters of the mode the others decide.
    Returns None when even the generic form cannot be guaranteed (an accumulator that may leave int32)."""
    if info.onnx_scale is not None:
        return onnx_plan(info)
    live = np.ones(info.OC, bool) if info.constant is None else ~info.constant
    m, shift = np.where(live, info.multiplier, 0), np.where(live, info.shift, 0)
    left, e = np.maximum(shift, 0), np.maximum(-shift, 0)
    bound = info.partial_bound()
    if np.any(bound > INT32_MAX) or np.any(m < 0) or np.any(m > INT32_MAX):
        return None
    zp = np.where(live, np.int64(info.out_offset), 0 if info.constant_out is None else info.constant_out)
    generic = RequantPlan("generic", np.ones_like(m), m, e, left, np.zeros_like(m), zp)
    if np.all(e[live] >= 1):
        mode = "round"
    elif np.all(e[live] == 0):
        mode = "noround"
    else:
        mode = "mixed"
    if (mode == "mixed" and not mixed) or np.any(e > 30):
        return generic
    e = np.where(live, e, 1 if mode == "round" else 0)
    scale = np.left_shift(np.int64(1), left + 1) if prescale_doubling else np.ones_like(m)
    rc = _rounding_constants(zp, e)
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
    return RequantPlan(mode, scale, m, e, left, rc, zp)


def scale_bits(scale: np.ndarray) -> np.ndarray:
    """float32 values -> their IEEE bit patterns as int64 (stored in the kernels' int32 requantization words)."""
    return np.ascontiguousarray(scale, dtype=np.float32).view(np.int32).astype(np.int64)


def onnx_plan(info: ConvInfo) -> RequantPlan | None:
    """The "onnx" plan: no pre-scaling, the scales' bits as multipliers. Any finite scale is exact (the float32
    operations are the reference's); None where a partial sum may leave int32 or a scale is not finite."""
    scale = np.asarray(info.onnx_scale, np.float32)
    if np.any(info.partial_bound() > INT32_MAX) or not np.all(np.isfinite(scale)):
        return None
    zeros = np.zeros(info.OC, np.int64)
    return RequantPlan("onnx", np.ones(info.OC, np.int64), scale_bits(scale), zeros, zeros, zeros,
                       np.full(info.OC, info.out_offset, np.int64))


def plan_layer(info: ConvInfo, prescale_doubling: bool, weight_limit: int | None,
               mixed: bool = True) -> tuple[ConvInfo, RequantPlan] | None:
    """The layer with its constant channels folded and its requantization plan; where even the folded layer
    needs the generic requantization, the layer as it is (the generic form computes every channel exactly)."""
    folded = fold_constants(info)
    plan = requant_plan(folded, prescale_doubling, weight_limit, mixed)
    if plan is not None and plan.mode == "generic" and folded is not info:
        plan = requant_plan(info, prescale_doubling, weight_limit, mixed)
        return None if plan is None else (info, plan)
    return None if plan is None else (folded, plan)


# --- depthwise regions ---------------------------------------------------------------------------

STACK_BUDGET = 8192     # bytes of patch buffers a variant may take per call (its scratch, in the arena: Kernel.scratch)
UNROLLED_TAPS = 400     # depthwise: taps unrolled over all regions of the output plane, at most
MAX_DEPTHWISE_TAPS = 25  # depthwise variants unroll the window: up to 5x5


@dataclass(frozen=True)
class DepthwiseRegions:
    """The output plane cut into rectangles whose taps inside the input are the same, so each is computed
    without bounds checks. regions: dicts y0, y1, x0, x1 (output box), bias (index into `windows`), rows (the
    kernel rows read), mid_kx, taps [(ky, kx, ky * KW + kx)]. windows: (ky0, ky1, kx0, kx1) of each distinct
    set of taps, one folded bias each."""
    regions: list[dict]
    windows: list[tuple[int, int, int, int]]

    @staticmethod
    def folded_bias(info: ConvInfo, window: tuple[int, int, int, int]) -> np.ndarray:
        """int64 [OC]: bias + in_offset * the sum of the weights the window's taps read."""
        ky0, ky1, kx0, kx1 = window
        w3 = info.weights.reshape(info.KH, info.KW, info.OC)
        return info.bias + info.in_offset * w3[ky0:ky1, kx0:kx1].reshape(-1, info.OC).sum(axis=0)


def depthwise_regions(info: ConvInfo) -> DepthwiseRegions | None:
    """None where the depthwise variants do not apply: a multiplier other than 1, a window over
    MAX_DEPTHWISE_TAPS, no tap inside the input at all, or too much unrolled code for an odd shape."""
    if info.MULT != 1 or info.KH * info.KW > MAX_DEPTHWISE_TAPS:
        return None
    yr = runs(tap_ranges(info.OH, info.SH, info.PT, info.DH, info.H, info.KH))
    xr = runs(tap_ranges(info.OW, info.SW, info.PL, info.DW, info.W, info.KW))
    windows: dict[tuple, int] = {}
    regions = []
    for y0, y1, (ky0, ky1) in yr:
        for x0, x1, (kx0, kx1) in xr:
            key = (ky0, ky1, kx0, kx1)
            windows.setdefault(key, len(windows))
            regions.append(dict(y0=y0, y1=y1, x0=x0, x1=x1, bias=windows[key], rows=list(range(ky0, ky1)),
                                mid_kx=(kx0 + kx1) // 2 if kx1 > kx0 else 0,
                                taps=[(ky, kx, ky * info.KW + kx) for ky in range(ky0, ky1) for kx in range(kx0, kx1)]))
    taps_read = sum(len(r["taps"]) for r in regions)
    if taps_read == 0 or taps_read > UNROLLED_TAPS:
        return None
    return DepthwiseRegions(regions, list(windows))
