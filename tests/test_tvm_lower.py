"""TVM lowering core: scheduled TE depthwise conv -> one plain C99 function, compiled and run.

float32 is compared with numpy (1e-5); int8 bit-exactly with a numpy TFLite requantize written here
with int64 arithmetic (independent of dwscodegen.reference)."""
from __future__ import annotations

import re
import shutil
import subprocess

import numpy as np
import pytest

pytestmark = pytest.mark.tvm
tvm = pytest.importorskip("tvm")

from tvm import s_tir, te, tirx  # noqa: E402

from dwscodegen.backends.tvm.lower import prim_func_to_c  # noqa: E402

from .support.c_kernels import compile_c, garbage_like, run_kernel  # noqa: E402

INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1
ARM_FLAGS = ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16", "-O2"]


# ----------------------------------------------------------------------------- TE kernels

def same_pads(size, k, stride, dilation=1):
    """TF SAME padding; the odd pixel goes after (bottom/right)."""
    out = -(-size // stride)
    total = max((out - 1) * stride + (k - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def _dw_te(x, w, pads, stride, dilation, pad_value, acc_dtype):
    """Padded input as a separate stage (inlined later, so its bounds become predicates)."""
    n, h, wd, c = (int(d) for d in x.shape)
    kh, kw = int(w.shape[0]), int(w.shape[1])
    pt, pl, pb, pr = pads
    oh = (h + pt + pb - (kh - 1) * dilation - 1) // stride + 1
    ow = (wd + pl + pr - (kw - 1) * dilation - 1) // stride + 1
    xp = te.compute(
        (n, h + pt + pb, wd + pl + pr, c),
        lambda b, i, j, ch: tirx.if_then_else(
            tirx.all(i >= pt, i < h + pt, j >= pl, j < wd + pl),
            pad_value(x[b, i - pt, j - pl, ch]), tirx.const(0, acc_dtype)),
        name="pad")
    rh, rw = te.reduce_axis((0, kh), "rh"), te.reduce_axis((0, kw), "rw")
    return te.compute(
        (n, oh, ow, c),
        lambda b, i, j, ch: te.sum(
            xp[b, i * stride + rh * dilation, j * stride + rw * dilation, ch]
            * w[rh, rw, ch].astype(acc_dtype), axis=[rh, rw]),
        name="acc")


def schedule_dw(func, c_split, stages=("acc",)):
    """Inline padding, tile channels, compute the accumulator (and the other per-element `stages`,
    consumers first) inside the channel loop so they shrink to one scalar, unroll kh x kw."""
    sch = s_tir.Schedule(func)
    sch.compute_inline(sch.get_sblock("pad"))
    n, h, w, c = sch.get_loops(sch.get_sblock("out"))
    co, ci = sch.split(c, [None, c_split])
    sch.reorder(n, h, co, w, ci)
    for stage in stages:
        sch.compute_at(sch.get_sblock(stage), ci)
    acc = sch.get_sblock("acc")
    rh, rw = sch.get_loops(acc)[-2:]
    sch.unroll(rh)
    sch.unroll(rw)
    return sch.mod["main"]


def dw_f32_func(shape, k, stride, pads, c_split):
    n, h, w, c = shape
    x = te.placeholder(shape, "float32", "in")
    wt = te.placeholder((k, k, c), "float32", "w")
    bias = te.placeholder((c,), "float32", "bias")
    acc = _dw_te(x, wt, pads, stride, 1, lambda v: v, "float32")
    out = te.compute(acc.shape, lambda b, i, j, ch: te.min(te.max(acc[b, i, j, ch] + bias[ch], 0.0), 6.0),
                     name="out")
    return schedule_dw(te.create_prim_func([x, wt, bias, out]), c_split)


# TFLite MultiplyByQuantizedMultiplier(x, mult, shift) = rounding_divide(doubling_high_mul(x, mult,
# shift), shift) as explicit int32/int64 TIR.  Not tirx.q_multiply_shift: it does not lower with a
# runtime (per-channel) shift, and q_multiply_shift_per_axis rounds once, half up -- not TFLite's
# double rounding.  Two functions so kernels can store `high` in its own stage: CSE leaves
# expressions with loads alone, and one inlined expression repeats the int64 product 6 times.

def doubling_high_mul(x, mult, shift):
    """SaturatingRoundingDoublingHighMul(x * 2^max(shift, 0), mult)."""
    i32, i64 = "int32", "int64"
    # x * (1 << left), not x << left: shifting a negative value left is undefined in C.
    a = x * tirx.shift_left(tirx.const(1, i32), te.max(shift, tirx.const(0, i32)))
    ab = a.astype(i64) * mult.astype(i64)
    nudge = tirx.Select(ab >= tirx.const(0, i64), tirx.const(1 << 30, i64), tirx.const(1 - (1 << 30), i64))
    # C '/' truncates toward zero, as TFLite's int64 division does.  Only INT32_MIN * INT32_MIN reaches
    # 2^31: saturate with an int64 min.  (Testing `a == INT32_MIN` in int32 does not work: the TVM 0.27
    # simplifier folds an int32 compare with INT32_MIN to false.)
    high = tirx.truncdiv(ab + nudge, tirx.const(1 << 31, i64))
    return te.min(high, tirx.const(INT32_MAX, i64)).astype(i32)


def rounding_divide(high, shift):
    """RoundingDivideByPOT(high, max(-shift, 0)): round half away from zero."""
    i32, i64 = "int32", "int64"
    c32 = lambda v: tirx.const(v, i32)  # noqa: E731
    right = te.max(c32(0) - shift, c32(0))
    mask = (tirx.shift_left(tirx.const(1, i64), right.astype(i64)) - tirx.const(1, i64)).astype(i32)
    remainder = tirx.bitwise_and(high, mask)
    threshold = tirx.shift_right(mask, c32(1)) + tirx.Select(high < c32(0), c32(1), c32(0))
    return tirx.shift_right(high, right) + tirx.Select(remainder > threshold, c32(1), c32(0))


def dw_int8_func(shape, k, stride, pads, c_split, in_off, out_off, act_min, act_max):
    n, h, w, c = shape
    x = te.placeholder(shape, "int8", "in")
    wt = te.placeholder((k, k, c), "int8", "w")
    bias = te.placeholder((c,), "int32", "bias")
    mult = te.placeholder((c,), "int32", "mult")
    shift = te.placeholder((c,), "int32", "shift")
    acc = _dw_te(x, wt, pads, stride, 1, lambda v: v.astype("int32") + tirx.const(in_off, "int32"), "int32")
    high = te.compute(acc.shape, lambda b, i, j, ch: doubling_high_mul(acc[b, i, j, ch] + bias[ch], mult[ch],
                                                                       shift[ch]), name="high")

    def epilogue(b, i, j, ch):
        y = rounding_divide(high[b, i, j, ch], shift[ch]) + tirx.const(out_off, "int32")
        return te.min(te.max(y, tirx.const(act_min, "int32")), tirx.const(act_max, "int32")).astype("int8")

    out = te.compute(acc.shape, epilogue, name="out")
    return schedule_dw(te.create_prim_func([x, wt, bias, mult, shift, out]), c_split, ("high", "acc"))


def requant_func(n):
    """Element-wise requantize alone, to hit ties, negatives and saturation on purpose."""
    x = te.placeholder((n,), "int32", "x")
    m = te.placeholder((n,), "int32", "mult")
    s = te.placeholder((n,), "int32", "shift")
    high = te.compute((n,), lambda i: doubling_high_mul(x[i], m[i], s[i]), name="high")
    y = te.compute((n,), lambda i: rounding_divide(high[i], s[i]), name="y")
    sch = s_tir.Schedule(te.create_prim_func([x, m, s, y]))
    sch.compute_at(sch.get_sblock("high"), sch.get_loops(sch.get_sblock("y"))[0])
    return sch.mod["main"]


# ----------------------------------------------------------------------------- numpy oracles

def np_requantize(x, mult, shift):
    x, mult, shift = (np.asarray(v, np.int64) for v in (x, mult, shift))
    left, right = np.maximum(shift, 0), np.maximum(-shift, 0)
    a = x * (np.int64(1) << left)
    ab = a * mult
    nudge = np.where(ab >= 0, np.int64(1 << 30), np.int64(1 - (1 << 30)))
    v = ab + nudge
    high = np.where(v >= 0, v // (1 << 31), -((-v) // (1 << 31)))  # truncate toward zero
    high = np.where((a == INT32_MIN) & (mult == INT32_MIN), INT32_MAX, high)
    mask = (np.int64(1) << right) - 1
    remainder = high & mask
    threshold = (mask >> 1) + (high < 0)
    return ((high >> right) + (remainder > threshold)).astype(np.int32)


def np_dw_acc(x, w, pads, stride):
    pt, pl, pb, pr = pads
    xp = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
    kh, kw = w.shape[:2]
    oh = (xp.shape[1] - kh) // stride + 1
    ow = (xp.shape[2] - kw) // stride + 1
    acc = np.zeros((x.shape[0], oh, ow, x.shape[3]), dtype=np.result_type(x, w))
    for i in range(kh):
        for j in range(kw):
            acc += xp[:, i:i + (oh - 1) * stride + 1:stride, j:j + (ow - 1) * stride + 1:stride, :] * w[i, j]
    return acc


# ----------------------------------------------------------------------------- C harness

# ----------------------------------------------------------------------------- tests

F32_CASES = {  # shape, k, stride, pads (top, left, bottom, right), channel split
    "9x7_same_s2": ((1, 9, 7, 6), 3, 2, (1, 1, 1, 1), 2),
    "8x6_same_asym_s2": ((1, 8, 6, 6), 3, 2, (0, 0, 1, 1), 3),
    "9x7_explicit_asym_s2_split4": ((1, 9, 7, 6), 3, 2, (1, 0, 2, 1), 4),
    "9x7_s1_same": ((1, 9, 7, 6), 3, 1, (1, 1, 1, 1), 2),
}


@pytest.mark.parametrize("case", list(F32_CASES))
def test_float32_depthwise_matches_numpy(tmp_path, case):
    shape, k, stride, pads, split = F32_CASES[case]
    if "same" in case:  # the pads really are TF SAME
        assert pads == (same_pads(shape[1], k, stride)[0], same_pads(shape[2], k, stride)[0],
                        same_pads(shape[1], k, stride)[1], same_pads(shape[2], k, stride)[1])
    src = prim_func_to_c(dw_f32_func(shape, k, stride, pads, split), "dw_f32")
    rng = np.random.default_rng(1)
    x = rng.uniform(-6, 6, shape).astype(np.float32)
    w = rng.uniform(-1, 1, (k, k, shape[3])).astype(np.float32)
    b = rng.uniform(-1, 1, shape[3]).astype(np.float32)
    ref = np.clip(np_dw_acc(x, w, pads, stride) + b, 0, 6).astype(np.float32)
    got = run_kernel(tmp_path, src, "dw_f32", [x, w, b, garbage_like(ref.shape, np.float32)], 3)
    assert np.max(np.abs(got - ref)) <= 1e-5
    assert 0 < np.count_nonzero(ref == 6) and 0 < np.count_nonzero(ref == 0)  # relu6 both sides hit
    assert src.count("void dw_f32(const float *restrict in, const float *restrict w, "
                      "const float *restrict bias, float *restrict out)") == 1


INT8_SHAPE, INT8_PADS = (1, 9, 7, 6), (0, 1, 1, 1)
INT8_Q = dict(in_off=7, out_off=-5, act_min=-100, act_max=110)


def _int8_source():
    return prim_func_to_c(dw_int8_func(INT8_SHAPE, 3, 2, INT8_PADS, 2, **INT8_Q), "dw_s8")


@pytest.fixture(scope="module")
def int8_src():
    return _int8_source()


def test_int8_depthwise_bit_exact_tflite(tmp_path, int8_src):
    c = INT8_SHAPE[3]
    rng = np.random.default_rng(7)
    x = rng.integers(-128, 128, INT8_SHAPE, dtype=np.int8)
    w = rng.integers(-127, 128, (3, 3, c), dtype=np.int8)
    b = rng.integers(-4000, 4000, c, dtype=np.int32)
    m = rng.integers(1 << 30, (1 << 31) - 1, c, dtype=np.int32, endpoint=True)
    s = rng.integers(-10, 0, c, dtype=np.int32, endpoint=True)
    acc = np_dw_acc(x.astype(np.int32) + INT8_Q["in_off"], w.astype(np.int32), INT8_PADS, 2) + b
    y = np_requantize(acc, m, s) + INT8_Q["out_off"]
    ref = np.clip(y, INT8_Q["act_min"], INT8_Q["act_max"]).astype(np.int8)
    got = run_kernel(tmp_path, int8_src, "dw_s8", [x, w, b, m, s, garbage_like(ref.shape, np.int8)], 5)
    np.testing.assert_array_equal(got, ref)
    assert (acc < 0).any() and (ref == INT8_Q["act_min"]).any() and (ref == INT8_Q["act_max"]).any()
    assert "void dw_s8(const int8_t *restrict in, const int8_t *restrict w, const int32_t *restrict bias, " \
           "const int32_t *restrict mult, const int32_t *restrict shift, int8_t *restrict out)" in int8_src


def test_requantize_ties_negatives_saturation_bit_exact(tmp_path):
    rng = np.random.default_rng(3)
    # M = 2^30 halves exactly: odd x is a tie in the doubling-high-mul, small shifts tie again in
    # the rounding divide; both signs.  Then random full-range values, and the INT32_MIN^2 saturation.
    xs = [np.arange(-300, 301)] * 6
    ms = [np.full(601, 1 << 30)] * 6
    ss = [np.full(601, s) for s in (0, -1, -2, -3, -5, -10)]
    xs.append(rng.integers(INT32_MIN, INT32_MAX, 4000, endpoint=True))
    ms.append(rng.integers(1 << 30, INT32_MAX, 4000, endpoint=True))
    ss.append(rng.integers(-31, 0, 4000, endpoint=True))
    xs.append(rng.integers(-(1 << 20), 1 << 20, 500))  # left shifts that cannot overflow
    ms.append(rng.integers(1 << 30, INT32_MAX, 500, endpoint=True))
    ss.append(rng.integers(1, 10, 500, endpoint=True))
    xs.append(np.array([INT32_MIN, INT32_MIN, INT32_MAX, -1, 1, 0]))
    ms.append(np.array([INT32_MIN, INT32_MAX, INT32_MAX, INT32_MAX, INT32_MAX, INT32_MAX]))
    ss.append(np.array([0, 0, 0, 0, 0, -31]))
    x, m, s = (np.concatenate(v).astype(np.int32) for v in (xs, ms, ss))
    src = prim_func_to_c(requant_func(x.size), "requant")
    got = run_kernel(tmp_path, src, "requant", [x, m, s, garbage_like(x.shape, np.int32)], 3)
    ref = np_requantize(x, m, s)
    np.testing.assert_array_equal(got, ref)
    assert ref[-6] == INT32_MAX  # saturated


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="arm-none-eabi-gcc not installed")
@pytest.mark.parametrize("kernel", ["int8", "float32"])
def test_compiles_for_cortex_m4(tmp_path, int8_src, kernel):
    src = int8_src if kernel == "int8" else prim_func_to_c(dw_f32_func((1, 9, 7, 6), 3, 2, (1, 1, 1, 1), 2), "dw_f32")
    (tmp_path / "k.c").write_text(src)
    compile_c("arm-none-eabi-gcc", tmp_path / "k.c", tmp_path / "k.o", ARM_FLAGS)
    # Self-contained: e.g. the int64 '/ 2^31' must not become a libgcc __aeabi_ldivmod call.
    nm = subprocess.run(["arm-none-eabi-nm", "-u", str(tmp_path / "k.o")], capture_output=True, text=True)
    assert nm.returncode == 0 and nm.stdout.strip() == ""


def test_big_temporary_is_rejected():
    """Without compute_inline the padded input (10x8x6 floats) would need TVMBackendAllocWorkspace."""
    from dwscodegen.errors import DwsError
    x = te.placeholder((1, 9, 7, 6), "float32", "in")
    w = te.placeholder((3, 3, 6), "float32", "w")
    acc = _dw_te(x, w, (1, 1, 1, 1), 2, 1, lambda v: v, "float32")
    out = te.compute(acc.shape, lambda *i: acc(*i), name="out")
    with pytest.raises(DwsError, match="temporaries need"):
        prim_func_to_c(te.create_prim_func([x, w, out]), "too_big")


def test_output_is_plain_and_deterministic(int8_src):
    f32 = prim_func_to_c(dw_f32_func((1, 9, 7, 6), 3, 2, (1, 0, 2, 1), 4), "dw_f32")
    for src in (int8_src, f32):
        assert not re.search(r"TVM|tvm|DLTensor|__cplusplus|extern", src)
        assert len(re.findall(r"^void \w+\(", src, re.M)) == 1
        assert all(line.startswith("#include <std") for line in src.splitlines() if line.startswith("#"))
    assert _int8_source() == int8_src
    assert prim_func_to_c(dw_f32_func((1, 9, 7, 6), 3, 2, (1, 0, 2, 1), 4), "dw_f32") == f32
