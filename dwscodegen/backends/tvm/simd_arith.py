"""TIR expressions of what the tensorized kernels' micro-kernels compute, bit for bit: the semantics of the
tensor intrinsics (tensorize matches a kernel's blocks against these same expressions, tir_build.py) and the
code of whatever part of a kernel stays plain TVM C (depthwise channel tails).

- DSP data: int32 words of two int16 lanes. widen_word is SXTB16 of four input bytes (word 2g holds bytes 4g, 4g+2,
  word 2g+1 bytes 4g+1, 4g+3), smlad is SMLAD, dsp_lane picks a lane (SMLABB / SMLATT).
- Requantization follows the exact plans of templates/simd/common.py, per ISA, on the record layouts the
  templates road packs (dsp.requant_records, tiled._records, mve.requant_vectors): each plan's proof that it equals
  TFLite's MultiplyByQuantizedMultiplier for the layer's constants is checked when the plan is made.
  The 64-bit steps stay inside int64 by those same bounds: no signed overflow, in the TIR or its C.
  Plan "onnx" (requant "onnx") is the portable compute's arith.requantize_onnx on a float32 scale
  (simd_gemm.requant_value).

TVM is imported inside the functions: importing this module costs nothing.
"""
from __future__ import annotations

from .arith import clamp_int8, doubling_high_mul, rounding_divide


def i32(v):
    """An int32 constant of TIR."""
    from tvm import tirx
    return tirx.const(v, "int32")


def widen_word(load, j):
    """Word j of SXTB16-widened bytes (whole words: the rows are padded or gathered to a multiple of 4): low
    lane byte 4(j // 2) + j % 2, high lane two bytes on.  load(k) is byte k (int8)."""
    from tvm import tirx
    first = tirx.floordiv(j, 2) * 4 + tirx.floormod(j, 2)
    return tirx.bitwise_and(load(first).astype("int32"), i32(0xFFFF)) + load(first + 2).astype("int32") * i32(65536)


def _low(v):
    return v.astype("int16").astype("int32")


def _high(v):
    from tvm import tirx
    return tirx.shift_right(v, i32(16))


def smlad(a, b):
    """The dual 16-bit multiply-accumulate term of words a and b: lo(a) lo(b) + hi(a) hi(b)."""
    return _low(a) * _low(b) + _high(a) * _high(b)


def dsp_lane(word, lane):
    """Lane `lane` (0: low half, 1: high half; an expression) of a word, as int32."""
    from tvm import tirx
    return tirx.shift_right(word, lane * i32(16)).astype("int16").astype("int32")


def _hi32_round(a, m, c):
    """hi32(a * m + c * 2^32 + 2^31) (SMMLAR) in int64: every partial sum fits, as the plans keep the result
    inside int32 (and no unsigned-to-signed cast hides the sign from TVM's simplifier)."""
    from tvm import tirx
    i64 = "int64"
    t = a.astype(i64) * m.astype(i64) + c.astype(i64) * tirx.const(1 << 32, i64) + tirx.const(1 << 31, i64)
    return tirx.shift_right(t, tirx.const(32, i64)).astype("int32")


def _shifted(a, left):
    """a * 2^left as int32 (the plans keep it inside int32), through int64: no negative left shift in C."""
    from tvm import tirx
    i64 = "int64"
    return (a.astype(i64) * tirx.shift_left(tirx.const(1, i64), left.astype(i64))).astype("int32")


def plan_requant(acc, word, mode: str, zp: int, act: tuple[int, int], generic: dict, lshift: bool = False):
    """One output of the DSP (lshift False: acc is pre-scaled through the weights) or tiled (lshift: the
    record's last word shifts acc left first) requantization.  word(i) is the channel's record word i:
    round (m, rc, e[, ls]), mixed (DSP: m, rc, e, sign mask), noround (m, rc[, ls]), generic (m, shift).  generic: doubling_high_mul /
    rounding_divide options (left_shift, max_right) for the layer's shifts."""
    from tvm import tirx
    if mode == "generic":
        high = doubling_high_mul(acc, word(0), word(1), generic["left_shift"])
        y = rounding_divide(high, word(1), generic["max_right"], generic["left_shift"])
        return clamp_int8(y + i32(zp) if zp else y, *act)
    if lshift:
        acc = _shifted(acc, word(3 if mode == "round" else 2))
    if mode == "round":
        y = tirx.shift_right(_hi32_round(acc, word(0), word(1) + tirx.shift_right(acc, i32(31))), word(2))
    elif mode == "mixed":      # the sign term masked off in the channels without a right shift
        s = tirx.bitwise_and(tirx.shift_right(acc, i32(31)), word(3))
        y = tirx.shift_right(_hi32_round(acc, word(0), word(1) + s), word(2))
    else:
        y = _hi32_round(acc, word(0), word(1))
    return clamp_int8(y, *act)


def mve_requant(acc, vector, names: list[str], mode: str, act: tuple[int, int]):
    """One lane of the MVE vector requantization (VQRDMULH, VRSHL; simd.PLANS): vector(name) is
    the lane's value of the named requantization vector (m, czp, nege, [left], [smask])."""
    from tvm import tirx
    v = acc
    if "left" in names:
        v = _shifted(v, vector("left"))
    v = doubling_high_mul(v, vector("m"), 0, False)      # VQRDMULH is SaturatingRoundingDoublingHighMul
    if mode == "noround":
        return clamp_int8(v + vector("czp"), *act)
    s = tirx.shift_right(acc, i32(31))
    if "smask" in names:
        s = tirx.bitwise_and(s, vector("smask"))
    t = v + (s + vector("czp"))
    e = i32(0) - vector("nege")
    # VRSHL by -e: add 2^(e-1) (nothing for e = 0), then shift right arithmetically.
    y = tirx.shift_right(t + tirx.shift_right(tirx.shift_left(i32(1), e), i32(1)), e)
    return clamp_int8(y, *act)


def smmlar_rescale(v, m: int, rc: int, e: int, mask: int):
    """hi32(v * m + 2^31 + (rc + (v >> 31 & mask)) * 2^32) >> e, unclamped: one input of the DSP Add on the common
    scale (templates/kernels/add_s8_dsp.c.j2 <fn>_rescale)."""
    from tvm import tirx
    sign = tirx.bitwise_and(tirx.shift_right(v, i32(31)), i32(mask)) if mask else i32(0)
    return tirx.shift_right(_hi32_round(v, i32(m), i32(rc) + sign), i32(e))
