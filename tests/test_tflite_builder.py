"""The single-op TFLite oracle builds what it claims.

Every float model is compared with an independent numpy computation written
here; int8 models are checked for readback of their quantization parameters,
for being live (output responds to input) and to within 1 LSB of the real-valued
result (the reference kernels' fixed-point requantisation may differ from exact
rounding by one step).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from .support.tflite_builder import TensorSpec, build_single_op_model, make_interpreter, run_reference

import tflite

# --------------------------------------------------------------------------- #
# Independent numpy references
# --------------------------------------------------------------------------- #


def _out_size(n: int, k: int, stride: int, dilation: int, padding: str) -> int:
    eff = (k - 1) * dilation + 1
    if padding == "SAME":
        return math.ceil(n / stride)
    return math.ceil((n - eff + 1) / stride)


def _pad_before(n: int, out: int, k: int, stride: int, dilation: int, padding: str) -> int:
    if padding == "VALID":
        return 0
    pad_total = max((out - 1) * stride + (k - 1) * dilation + 1 - n, 0)
    return pad_total // 2


def _padded(x, kh, kw, sh, sw, dh, dw, padding, pad_value=0.0):
    """Pad NHWC ``x`` the way TFLite does; returns padded x and output size."""
    _, h, w, _ = x.shape
    oh = _out_size(h, kh, sh, dh, padding)
    ow = _out_size(w, kw, sw, dw, padding)
    pt = _pad_before(h, oh, kh, sh, dh, padding)
    pl = _pad_before(w, ow, kw, sw, dw, padding)
    need_h = (oh - 1) * sh + (kh - 1) * dh + 1
    need_w = (ow - 1) * sw + (kw - 1) * dw + 1
    pb = max(need_h - h - pt, 0)
    pr = max(need_w - w - pl, 0)
    xp = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)), constant_values=pad_value)
    return xp, oh, ow


def ref_conv(x, w, b, *, stride=(1, 1), dilation=(1, 1), padding="SAME",
             depthwise=False, multiplier=1):
    """x: NHWC; w: OHWI (conv) or 1HW(C*M) (depthwise); float64 result."""
    x = np.asarray(x, np.float64)
    w = np.asarray(w, np.float64)
    sh, sw = stride
    dh, dw = dilation
    kh, kw = w.shape[1], w.shape[2]
    xp, oh, ow = _padded(x, kh, kw, sh, sw, dh, dw, padding)
    n = x.shape[0]
    out_c = w.shape[3] if depthwise else w.shape[0]
    out = np.zeros((n, oh, ow, out_c))
    for i in range(kh):
        for j in range(kw):
            patch = xp[:, i * dh: i * dh + (oh - 1) * sh + 1: sh,
                       j * dw: j * dw + (ow - 1) * sw + 1: sw, :]
            if depthwise:
                # output channel c*M + m reads input channel c
                out += np.repeat(patch, multiplier, axis=3) * w[0, i, j, :]
            else:
                out += np.einsum("nhwc,oc->nhwo", patch, w[:, i, j, :])
    if b is not None:
        out += np.asarray(b, np.float64)
    return out


def ref_pool(x, kh, kw, sh, sw, padding, kind):
    x = np.asarray(x, np.float64)
    fill = -np.inf if kind == "max" else np.nan
    xp, oh, ow = _padded(x, kh, kw, sh, sw, 1, 1, padding, pad_value=fill)
    out = np.empty((x.shape[0], oh, ow, x.shape[3]))
    for r in range(oh):
        for c in range(ow):
            win = xp[:, r * sh: r * sh + kh, c * sw: c * sw + kw, :]
            # TFLite averages only over in-bounds elements
            out[:, r, c, :] = (np.max(win, axis=(1, 2)) if kind == "max"
                               else np.nanmean(win, axis=(1, 2)))
    return out


_ACT_CLIP = {"NONE": (-np.inf, np.inf), "RELU": (0.0, np.inf), "RELU6": (0.0, 6.0),
             "RELU_N1_TO_1": (-1.0, 1.0)}


def _round_half_away(v):
    return np.sign(v) * np.floor(np.abs(v) + 0.5)


def _quantize(real, scale, zp, act="NONE"):
    q = _round_half_away(np.asarray(real, np.float64) / scale) + zp
    lo, hi = -128, 127
    a_lo, a_hi = _ACT_CLIP[act]
    if np.isfinite(a_lo):
        lo = max(lo, zp + _round_half_away(a_lo / scale))
    if np.isfinite(a_hi):
        hi = min(hi, zp + _round_half_away(a_hi / scale))
    return np.clip(q, lo, hi)


def _f32(rng, shape, lo=-1.0, hi=1.0):
    return rng.uniform(lo, hi, size=shape).astype(np.float32)


def _i8(rng, shape, lo=-128, hi=127):
    return rng.integers(lo, hi + 1, size=shape).astype(np.int8)


def _assert_close(got, want, tol=1e-5):
    assert got.shape == want.shape, (got.shape, want.shape)
    np.testing.assert_allclose(got.astype(np.float64), want, rtol=tol, atol=tol)


# --------------------------------------------------------------------------- #
# Float32: DEPTHWISE_CONV_2D, CONV_2D, ADD against numpy
# --------------------------------------------------------------------------- #

DW_CASES = [
    # (in_hw, k, stride, dilation, padding, multiplier, activation)
    ((7, 7), (3, 3), (1, 1), (1, 1), "SAME", 1, "NONE"),
    ((8, 9), (3, 3), (2, 2), (1, 1), "SAME", 1, "RELU6"),
    ((9, 8), (3, 5), (2, 1), (1, 1), "VALID", 2, "RELU"),
    ((10, 10), (3, 3), (1, 1), (2, 3), "SAME", 1, "NONE"),
    ((6, 7), (5, 5), (2, 2), (1, 1), "SAME", 3, "RELU_N1_TO_1"),
    ((5, 5), (2, 2), (1, 1), (1, 1), "SAME", 1, "NONE"),  # even kernel: asymmetric pad
]


@pytest.mark.parametrize("case", DW_CASES, ids=[str(i) for i in range(len(DW_CASES))])
def test_float_depthwise_matches_numpy(case):
    (h, w), (kh, kw), (sh, sw), (dh, dw), padding, mult, act = case
    rng = np.random.default_rng(1000 + DW_CASES.index(case))
    c = 3
    x = _f32(rng, (1, h, w, c), -2, 2)
    wt = _f32(rng, (1, kh, kw, c * mult))
    bias = _f32(rng, (c * mult,))
    want = np.clip(ref_conv(x, wt, bias, stride=(sh, sw), dilation=(dh, dw),
                            padding=padding, depthwise=True, multiplier=mult),
                   *_ACT_CLIP[act])
    model = build_single_op_model(
        "DEPTHWISE_CONV_2D",
        [TensorSpec("x", x.shape, "float32"),
         TensorSpec("w", wt.shape, "float32", data=wt),
         TensorSpec("b", bias.shape, "float32", data=bias)],
        [TensorSpec("y", want.shape, "float32")],
        {"padding": padding, "stride_h": sh, "stride_w": sw, "dilation_h": dh,
         "dilation_w": dw, "depth_multiplier": mult, "fused_activation": act})
    (got,) = run_reference(model, [x])
    assert got.dtype == np.float32
    _assert_close(got, want)


def test_float_depthwise_defaults_and_no_bias():
    """No options: stride 1, dilation 1, SAME; multiplier inferred from shapes."""
    rng = np.random.default_rng(7)
    x = _f32(rng, (1, 5, 6, 2))
    wt = _f32(rng, (1, 3, 3, 4))  # multiplier 2
    want = ref_conv(x, wt, None, depthwise=True, multiplier=2)
    model = build_single_op_model(
        "DEPTHWISE_CONV_2D",
        [TensorSpec("x", x.shape, "float32"), TensorSpec("w", wt.shape, "float32", data=wt),
         None],
        [TensorSpec("y", want.shape, "float32")], {})
    (got,) = run_reference(model, [x])
    _assert_close(got, want)


CONV_CASES = [
    ((7, 7), (3, 3), (1, 1), (1, 1), "SAME", "NONE", 4, 5),
    ((8, 8), (3, 3), (2, 2), (1, 1), "SAME", "RELU6", 3, 8),
    ((9, 7), (1, 1), (1, 1), (1, 1), "VALID", "RELU", 6, 4),  # pointwise
    ((9, 9), (3, 2), (2, 1), (2, 2), "VALID", "NONE", 2, 3),
]


@pytest.mark.parametrize("case", CONV_CASES, ids=[str(i) for i in range(len(CONV_CASES))])
def test_float_conv_matches_numpy(case):
    (h, w), (kh, kw), (sh, sw), (dh, dw), padding, act, cin, cout = case
    rng = np.random.default_rng(2000 + CONV_CASES.index(case))
    x = _f32(rng, (2, h, w, cin), -2, 2)  # batch 2
    wt = _f32(rng, (cout, kh, kw, cin))
    bias = _f32(rng, (cout,))
    want = np.clip(ref_conv(x, wt, bias, stride=(sh, sw), dilation=(dh, dw), padding=padding),
                   *_ACT_CLIP[act])
    model = build_single_op_model(
        "CONV_2D",
        [TensorSpec("x", x.shape, "float32"), TensorSpec("w", wt.shape, "float32", data=wt),
         TensorSpec("b", bias.shape, "float32", data=bias)],
        [TensorSpec("y", want.shape, "float32")],
        {"padding": padding, "stride_h": sh, "stride_w": sw, "dilation_h": dh,
         "dilation_w": dw, "fused_activation": act})
    (got,) = run_reference(model, [x])
    _assert_close(got, want)


def test_float_conv_without_bias_gets_zero_bias():
    rng = np.random.default_rng(8)
    x = _f32(rng, (1, 5, 5, 3))
    wt = _f32(rng, (4, 3, 3, 3))
    want = ref_conv(x, wt, None)
    model = build_single_op_model(
        "CONV_2D",
        [TensorSpec("x", x.shape, "float32"), TensorSpec("w", wt.shape, "float32", data=wt)],
        [TensorSpec("y", want.shape, "float32")], {"padding": "SAME"})
    (got,) = run_reference(model, [x])
    _assert_close(got, want)


@pytest.mark.parametrize("act", ["NONE", "RELU"])
def test_float_add_matches_numpy(act):
    rng = np.random.default_rng(3)
    a = _f32(rng, (1, 4, 5, 3), -3, 3)
    b = _f32(rng, (1, 4, 5, 3), -3, 3)
    model = build_single_op_model(
        "ADD", [TensorSpec("a", a.shape, "float32"), TensorSpec("b", b.shape, "float32")],
        [TensorSpec("y", a.shape, "float32")], {"fused_activation": act})
    (got,) = run_reference(model, [a, b])
    _assert_close(got, np.clip(a.astype(np.float64) + b, *_ACT_CLIP[act]))


def test_float_add_broadcast_constant():
    rng = np.random.default_rng(4)
    a = _f32(rng, (1, 3, 3, 4))
    c = _f32(rng, (4,))
    model = build_single_op_model(
        "ADD", [TensorSpec("a", a.shape, "float32"), TensorSpec("c", c.shape, "float32", data=c)],
        [TensorSpec("y", a.shape, "float32")], {})
    (got,) = run_reference(model, [a])
    _assert_close(got, a.astype(np.float64) + c)


# --------------------------------------------------------------------------- #
# The flatbuffer itself
# --------------------------------------------------------------------------- #


def _int8_depthwise_model(rng, *, c=4, mult=2, h=7, w=7, k=3, stride=1, padding="SAME",
                          act="NONE"):
    in_scale, in_zp = 0.05, -3
    w_scales = rng.uniform(0.005, 0.02, size=c * mult).astype(np.float32)
    wq = _i8(rng, (1, k, k, c * mult), -127, 127)
    bq = rng.integers(-2000, 2000, size=c * mult).astype(np.int32)
    bias_scales = (np.float32(in_scale) * w_scales).astype(np.float32)
    out_scale, out_zp = 0.08, 5
    oh = _out_size(h, k, stride, 1, padding)
    ow = _out_size(w, k, stride, 1, padding)
    specs = dict(
        x=TensorSpec("x", (1, h, w, c), "int8", scale=in_scale, zero_point=in_zp),
        w=TensorSpec("w", wq.shape, "int8", data=wq, scale=w_scales.tolist(),
                     zero_point=[0] * (c * mult), quantized_dimension=3),
        b=TensorSpec("b", bq.shape, "int32", data=bq, scale=bias_scales.tolist(),
                     zero_point=[0] * (c * mult)),
        y=TensorSpec("y", (1, oh, ow, c * mult), "int8", scale=out_scale, zero_point=out_zp),
    )
    model = build_single_op_model(
        "DEPTHWISE_CONV_2D", [specs["x"], specs["w"], specs["b"]], [specs["y"]],
        {"padding": padding, "stride_h": stride, "stride_w": stride,
         "depth_multiplier": mult, "fused_activation": act})
    return model, specs


def test_model_structure_reads_back():
    rng = np.random.default_rng(5)
    model, specs = _int8_depthwise_model(rng)
    m = tflite.Model.GetRootAs(model, 0)
    assert model[4:8] == b"TFL3"
    assert m.Version() == 3
    assert m.SubgraphsLength() == 1 and m.OperatorCodesLength() == 1
    oc = m.OperatorCodes(0)
    assert oc.BuiltinCode() == tflite.BuiltinOperator.DEPTHWISE_CONV_2D
    assert oc.DeprecatedBuiltinCode() == tflite.BuiltinOperator.DEPTHWISE_CONV_2D
    assert oc.Version() == 3
    assert m.Buffers(0).DataLength() == 0  # buffer 0 is the empty sentinel
    sg = m.Subgraphs(0)
    assert sg.InputsAsNumpy().tolist() == [0]  # constants are not graph inputs
    assert sg.OutputsAsNumpy().tolist() == [3]
    op = sg.Operators(0)
    assert op.InputsAsNumpy().tolist() == [0, 1, 2]
    assert op.BuiltinOptionsType() == tflite.BuiltinOptions.DepthwiseConv2DOptions
    opts = tflite.DepthwiseConv2DOptions()
    opts.Init(op.BuiltinOptions().Bytes, op.BuiltinOptions().Pos)
    assert (opts.StrideH(), opts.StrideW(), opts.DepthMultiplier()) == (1, 1, 2)
    assert (opts.DilationHFactor(), opts.DilationWFactor()) == (1, 1)
    assert opts.Padding() == tflite.Padding.SAME
    # weight bytes round-trip and constant data is 16-byte aligned
    wt = sg.Tensors(1)
    buf = m.Buffers(wt.Buffer())
    np.testing.assert_array_equal(buf.DataAsNumpy().view(np.int8).reshape(specs["w"].shape),
                                  specs["w"].data)
    assert buf._tab.Vector(buf._tab.Offset(4)) % 16 == 0
    assert wt.Quantization().QuantizedDimension() == 3


def test_operator_code_fields_for_quantize():
    # QUANTIZE is 114: both code fields carry it (deprecated field = min(code, 127))
    model = build_single_op_model(
        "QUANTIZE", [TensorSpec("x", (1, 4), "float32")],
        [TensorSpec("y", (1, 4), "int8", scale=0.1, zero_point=0)], {})
    oc = tflite.Model.GetRootAs(model, 0).OperatorCodes(0)
    assert oc.BuiltinCode() == oc.DeprecatedBuiltinCode() == 114
    assert oc.Version() == 1


def test_int8_depthwise_per_channel_quantization_reads_back():
    rng = np.random.default_rng(11)
    model, specs = _int8_depthwise_model(rng)
    interp = make_interpreter(model)
    by_name = {d["name"]: d for d in interp.get_tensor_details()}
    for key in ("w", "b"):
        qp = by_name[key]["quantization_parameters"]
        np.testing.assert_array_equal(qp["scales"], np.asarray(specs[key].scale, np.float32))
        np.testing.assert_array_equal(qp["zero_points"], specs[key].zero_point)
    assert by_name["w"]["quantization_parameters"]["quantized_dimension"] == 3
    assert by_name["w"]["dtype"] == np.int8 and by_name["b"]["dtype"] == np.int32
    x = by_name["x"]["quantization_parameters"]
    assert x["scales"].tolist() == [np.float32(0.05)] and x["zero_points"].tolist() == [-3]
    y = by_name["y"]["quantization_parameters"]
    assert y["scales"].tolist() == [np.float32(0.08)] and y["zero_points"].tolist() == [5]
    np.testing.assert_array_equal(interp.get_tensor(by_name["w"]["index"]), specs["w"].data)


# --------------------------------------------------------------------------- #
# int8 models run, and agree with the real-valued computation to 1 LSB
# --------------------------------------------------------------------------- #


def _real_dw_or_conv(xq, specs, depthwise, mult=1, **kw):
    xs, xz = specs["x"].scale, specs["x"].zero_point
    w_scales = np.asarray(specs["w"].scale, np.float64)
    acc = ref_conv(xq.astype(np.float64) - xz, specs["w"].data, specs["b"].data,
                   depthwise=depthwise, multiplier=mult, **kw)
    bias_scale = np.float64(np.float32(xs)) * w_scales
    return acc * bias_scale  # integer accumulator (incl. bias) * scale = real value


@pytest.mark.parametrize("stride,padding,act", [(1, "SAME", "NONE"), (2, "SAME", "RELU6"),
                                                (2, "VALID", "RELU")])
def test_int8_depthwise_runs_and_matches_real_math(stride, padding, act):
    rng = np.random.default_rng(20 + stride)
    model, specs = _int8_depthwise_model(rng, stride=stride, padding=padding, act=act)
    xq = _i8(rng, specs["x"].shape)
    (got,) = run_reference(model, [xq])
    assert got.dtype == np.int8 and got.shape == specs["y"].shape
    assert got.min() >= -128 and got.max() <= 127
    real = _real_dw_or_conv(xq, specs, True, 2, stride=(stride, stride), padding=padding)
    want = _quantize(real, 0.08, 5, act)
    assert np.max(np.abs(got.astype(np.int64) - want)) <= 1
    assert np.mean(got == want) > 0.9
    assert len(np.unique(got)) > 10  # not saturated / constant

    xq2 = xq.copy()
    xq2[0, 3, 3, :] = -xq2[0, 3, 3, :] - 1  # flip one pixel
    (got2,) = run_reference(model, [xq2])
    assert not np.array_equal(got, got2)


def test_int8_conv_per_channel_runs_and_matches_real_math():
    rng = np.random.default_rng(30)
    cin, cout, h, w = 5, 6, 6, 6
    in_scale, in_zp = 0.04, 2
    w_scales = rng.uniform(0.003, 0.01, size=cout).astype(np.float32)
    wq = _i8(rng, (cout, 3, 3, cin), -127, 127)
    bq = rng.integers(-3000, 3000, size=cout).astype(np.int32)
    specs = dict(
        x=TensorSpec("x", (1, h, w, cin), "int8", scale=in_scale, zero_point=in_zp),
        w=TensorSpec("w", wq.shape, "int8", data=wq, scale=w_scales.tolist(),
                     zero_point=0, quantized_dimension=0),
        b=TensorSpec("b", bq.shape, "int32", data=bq,
                     scale=(np.float32(in_scale) * w_scales).tolist(), zero_point=0),
        y=TensorSpec("y", (1, 3, 3, cout), "int8", scale=0.1, zero_point=-10),
    )
    model = build_single_op_model("CONV_2D", [specs["x"], specs["w"], specs["b"]], [specs["y"]],
                                  {"padding": "SAME", "stride_h": 2, "stride_w": 2})
    assert tflite.Model.GetRootAs(model, 0).OperatorCodes(0).Version() == 3
    xq = _i8(rng, specs["x"].shape)
    (got,) = run_reference(model, [xq])
    assert got.dtype == np.int8
    want = _quantize(_real_dw_or_conv(xq, specs, False, stride=(2, 2)), 0.1, -10)
    assert np.max(np.abs(got.astype(np.int64) - want)) <= 1
    assert len(np.unique(got)) > 5
    (got2,) = run_reference(model, [np.roll(xq, 1, axis=2)])
    assert not np.array_equal(got, got2)


def test_int8_add_runs_and_matches_real_math():
    rng = np.random.default_rng(40)
    a = _i8(rng, (1, 4, 4, 8))
    b = _i8(rng, (1, 4, 4, 8))
    sa, za, sb, zb, so, zo = 0.03, -5, 0.05, 7, 0.07, 3
    model = build_single_op_model(
        "ADD",
        [TensorSpec("a", a.shape, "int8", scale=sa, zero_point=za),
         TensorSpec("b", b.shape, "int8", scale=sb, zero_point=zb)],
        [TensorSpec("y", a.shape, "int8", scale=so, zero_point=zo)], {})
    assert tflite.Model.GetRootAs(model, 0).OperatorCodes(0).Version() == 2
    (got,) = run_reference(model, [a, b])
    assert got.dtype == np.int8
    real = (a.astype(np.float64) - za) * sa + (b.astype(np.float64) - zb) * sb
    want = _quantize(real, so, zo)
    assert np.max(np.abs(got.astype(np.int64) - want)) <= 1
    b2 = b.copy()
    b2[0, 0, 0, 0] = 127 if b2[0, 0, 0, 0] < 0 else -128
    (got2,) = run_reference(model, [a, b2])
    assert got2[0, 0, 0, 0] != got[0, 0, 0, 0]


# --------------------------------------------------------------------------- #
# The other ops
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("kind,padding,k,s", [("avg", "VALID", 2, 2), ("avg", "SAME", 3, 2),
                                              ("max", "VALID", 3, 1), ("max", "SAME", 3, 2)])
def test_float_pools_match_numpy(kind, padding, k, s):
    rng = np.random.default_rng(50)
    x = _f32(rng, (1, 7, 6, 3), -4, 4)
    want = ref_pool(x, k, k, s, s, padding, kind)
    model = build_single_op_model(
        "AVERAGE_POOL_2D" if kind == "avg" else "MAX_POOL_2D",
        [TensorSpec("x", x.shape, "float32")], [TensorSpec("y", want.shape, "float32")],
        {"padding": padding, "filter_h": k, "filter_w": k, "stride_h": s, "stride_w": s})
    (got,) = run_reference(model, [x])
    _assert_close(got, want)


def test_float_fully_connected_matches_numpy():
    rng = np.random.default_rng(51)
    x = _f32(rng, (2, 12))
    wt = _f32(rng, (5, 12))
    bias = _f32(rng, (5,))
    model = build_single_op_model(
        "FULLY_CONNECTED",
        [TensorSpec("x", x.shape, "float32"), TensorSpec("w", wt.shape, "float32", data=wt),
         TensorSpec("b", bias.shape, "float32", data=bias)],
        [TensorSpec("y", (2, 5), "float32")], {"fused_activation": "RELU"})
    (got,) = run_reference(model, [x])
    _assert_close(got, np.maximum(x.astype(np.float64) @ wt.T.astype(np.float64) + bias, 0))


def test_int8_fully_connected_runs():
    rng = np.random.default_rng(52)
    x = _i8(rng, (1, 16))
    wq = _i8(rng, (4, 16), -127, 127)
    bq = rng.integers(-500, 500, size=4).astype(np.int32)
    model = build_single_op_model(
        "FULLY_CONNECTED",
        [TensorSpec("x", x.shape, "int8", scale=0.02, zero_point=1),
         TensorSpec("w", wq.shape, "int8", data=wq, scale=0.01, zero_point=0),
         TensorSpec("b", bq.shape, "int32", data=bq, scale=0.0002, zero_point=0)],
        [TensorSpec("y", (1, 4), "int8", scale=0.05, zero_point=0)], {})
    assert tflite.Model.GetRootAs(model, 0).OperatorCodes(0).Version() == 4
    (got,) = run_reference(model, [x])
    real = ((x.astype(np.float64) - 1) @ wq.T.astype(np.float64) + bq) * 0.0002
    assert got.dtype == np.int8
    assert np.max(np.abs(got.astype(np.int64) - _quantize(real, 0.05, 0))) <= 1


def test_float_softmax_matches_numpy():
    rng = np.random.default_rng(53)
    x = _f32(rng, (2, 10), -3, 3)
    model = build_single_op_model("SOFTMAX", [TensorSpec("x", x.shape, "float32")],
                                  [TensorSpec("y", x.shape, "float32")], {"beta": 0.5})
    (got,) = run_reference(model, [x])
    e = np.exp(0.5 * (x.astype(np.float64) - x.max(axis=1, keepdims=True)))
    _assert_close(got, e / e.sum(axis=1, keepdims=True))


def test_int8_softmax_runs():
    rng = np.random.default_rng(54)
    x = _i8(rng, (1, 10))
    model = build_single_op_model(
        "SOFTMAX", [TensorSpec("x", x.shape, "int8", scale=0.1, zero_point=0)],
        [TensorSpec("y", x.shape, "int8", scale=1 / 256, zero_point=-128)], {})
    (got,) = run_reference(model, [x])
    e = np.exp(0.1 * (x.astype(np.float64) - x.max()))
    want = _quantize(e / e.sum(), 1 / 256, -128)
    assert got.dtype == np.int8 and np.max(np.abs(got.astype(np.int64) - want)) <= 1


def test_reshape():
    rng = np.random.default_rng(55)
    x = _f32(rng, (1, 2, 3, 4))
    model = build_single_op_model("RESHAPE", [TensorSpec("x", x.shape, "float32")],
                                  [TensorSpec("y", (1, 24), "float32")], {"new_shape": [1, 24]})
    (got,) = run_reference(model, [x])
    np.testing.assert_array_equal(got, x.reshape(1, 24))


@pytest.mark.parametrize("keep_dims", [True, False])
def test_float_mean_matches_numpy(keep_dims):
    rng = np.random.default_rng(56)
    x = _f32(rng, (1, 5, 4, 3))
    want = x.astype(np.float64).mean(axis=(1, 2), keepdims=keep_dims)
    model = build_single_op_model("MEAN", [TensorSpec("x", x.shape, "float32")],
                                  [TensorSpec("y", want.shape, "float32")],
                                  {"axis": [1, 2], "keep_dims": keep_dims})
    (got,) = run_reference(model, [x])
    _assert_close(got, want)


def test_int8_mean_runs():
    rng = np.random.default_rng(57)
    x = _i8(rng, (1, 4, 4, 6))
    model = build_single_op_model(
        "MEAN", [TensorSpec("x", x.shape, "int8", scale=0.05, zero_point=3)],
        [TensorSpec("y", (1, 1, 1, 6), "int8", scale=0.05, zero_point=3)],
        {"axis": [1, 2], "keep_dims": True})
    (got,) = run_reference(model, [x])
    want = _quantize(((x.astype(np.float64) - 3) * 0.05).mean(axis=(1, 2), keepdims=True),
                     0.05, 3)
    assert got.dtype == np.int8 and np.max(np.abs(got.astype(np.int64) - want)) <= 1


def test_pad_float_and_int8():
    rng = np.random.default_rng(58)
    pads = [[0, 0], [1, 2], [0, 1], [0, 0]]
    x = _f32(rng, (1, 3, 3, 2))
    model = build_single_op_model("PAD", [TensorSpec("x", x.shape, "float32")],
                                  [TensorSpec("y", (1, 6, 4, 2), "float32")], {"paddings": pads})
    (got,) = run_reference(model, [x])
    np.testing.assert_array_equal(got, np.pad(x, pads))
    xq = _i8(rng, (1, 3, 3, 2))
    model = build_single_op_model(
        "PAD", [TensorSpec("x", xq.shape, "int8", scale=0.1, zero_point=-7)],
        [TensorSpec("y", (1, 6, 4, 2), "int8", scale=0.1, zero_point=-7)], {"paddings": pads})
    (got,) = run_reference(model, [xq])
    np.testing.assert_array_equal(got, np.pad(xq, pads, constant_values=-7))  # pads with zp


def test_concatenation():
    rng = np.random.default_rng(59)
    a, b = _f32(rng, (1, 2, 2, 3)), _f32(rng, (1, 2, 2, 5))
    model = build_single_op_model(
        "CONCATENATION", [TensorSpec("a", a.shape, "float32"), TensorSpec("b", b.shape, "float32")],
        [TensorSpec("y", (1, 2, 2, 8), "float32")], {"axis": 3})
    (got,) = run_reference(model, [a, b])
    np.testing.assert_array_equal(got, np.concatenate([a, b], axis=3))


def test_quantize_dequantize():
    rng = np.random.default_rng(60)
    x = _f32(rng, (1, 50), -3, 3)
    model = build_single_op_model(
        "QUANTIZE", [TensorSpec("x", x.shape, "float32")],
        [TensorSpec("y", x.shape, "int8", scale=0.025, zero_point=4)], {})
    (q,) = run_reference(model, [x])
    assert q.dtype == np.int8
    want = np.clip(_round_half_away(x / np.float32(0.025)) + 4, -128, 127)
    np.testing.assert_array_equal(q, want)
    model = build_single_op_model(
        "DEQUANTIZE", [TensorSpec("q", x.shape, "int8", scale=0.025, zero_point=4)],
        [TensorSpec("y", x.shape, "float32")], {})
    (d,) = run_reference(model, [q])
    _assert_close(d, (q.astype(np.float64) - 4) * np.float32(0.025))


def test_relu_relu6_float_and_int8():
    rng = np.random.default_rng(61)
    x = _f32(rng, (1, 40), -8, 8)
    for op, hi in (("RELU", np.inf), ("RELU6", 6.0)):
        model = build_single_op_model(op, [TensorSpec("x", x.shape, "float32")],
                                      [TensorSpec("y", x.shape, "float32")], {})
        (got,) = run_reference(model, [x])
        np.testing.assert_array_equal(got, np.clip(x, 0, hi))
    xq = _i8(rng, (1, 40))
    for op, hi in (("RELU", np.inf), ("RELU6", 6.0)):
        model = build_single_op_model(
            op, [TensorSpec("x", xq.shape, "int8", scale=0.1, zero_point=-20)],
            [TensorSpec("y", xq.shape, "int8", scale=0.1, zero_point=-20)], {})
        (got,) = run_reference(model, [xq])
        want = _quantize(np.clip((xq.astype(np.float64) + 20) * 0.1, 0, hi), 0.1, -20)
        assert got.dtype == np.int8 and np.max(np.abs(got.astype(np.int64) - want)) <= 1


# --------------------------------------------------------------------------- #
# Guard rails
# --------------------------------------------------------------------------- #


def test_unknown_option_and_op_rejected():
    x = TensorSpec("x", (1, 4), "float32")
    with pytest.raises(ValueError, match="unknown option"):
        build_single_op_model("ADD", [x, TensorSpec("z", (1, 4), "float32")],
                              [TensorSpec("y", (1, 4), "float32")], {"stride": 2})
    with pytest.raises(ValueError, match="unsupported op"):
        build_single_op_model("SQUARED_DIFFERENCE", [x, x], [TensorSpec("y", (1, 4), "float32")], {})


def test_per_channel_scale_count_must_match_dimension():
    with pytest.raises(ValueError, match="quantized_dimension"):
        build_single_op_model(
            "DEPTHWISE_CONV_2D",
            [TensorSpec("x", (1, 4, 4, 2), "int8", scale=0.1, zero_point=0),
             TensorSpec("w", (1, 3, 3, 2), "int8", data=np.zeros((1, 3, 3, 2), np.int8),
                        scale=[0.1, 0.2, 0.3], zero_point=0, quantized_dimension=3)],
            [TensorSpec("y", (1, 4, 4, 2), "int8", scale=0.1, zero_point=0)], {})


def test_run_reference_refuses_wrong_dtype():
    model = build_single_op_model("RELU", [TensorSpec("x", (1, 4), "int8", scale=0.1,
                                                      zero_point=0)],
                                  [TensorSpec("y", (1, 4), "int8", scale=0.1, zero_point=0)], {})
    with pytest.raises(TypeError):
        run_reference(model, [np.zeros((1, 4), np.float32)])
