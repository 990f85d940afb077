"""Conv, ConvTranspose, Gemm, MatMul and the QOperator QLinearConv / QLinearMatMul."""
from __future__ import annotations

import numpy as np

from ...ir import Conv2DAttrs, FullyConnectedAttrs, TransposeConv2DAttrs, same_padding
from ...passes.qdq_lowering import OUTPUT_AXIS
from . import layout
from .translate import QConst


def padding(t, a: dict, hw, khw, stride, dilation) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) from pads / auto_pad."""
    auto = a.get("auto_pad", b"NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else auto
    if len(stride) != 2 or len(dilation) != 2 or min(stride) < 1 or min(dilation) < 1:
        raise t.fail(f"strides {list(stride)} / dilations {list(dilation)} must be two values >= 1")
    if auto == "NOTSET":
        pads = tuple(int(p) for p in a.get("pads", (0, 0, 0, 0)))
        if len(pads) != 4 or min(pads) < 0:
            raise t.fail(f"pads {list(pads)} must be 4 values >= 0")
        return pads[0], pads[2], pads[1], pads[3]        # ONNX [top, left, bottom, right]
    if auto == "VALID":
        return (0, 0, 0, 0)
    if auto == "SAME_UPPER":
        return (same_padding(hw[0], khw[0], stride[0], dilation[0])
                + same_padding(hw[1], khw[1], stride[1], dilation[1]))
    raise t.fail(f"auto_pad={auto} is not supported (NOTSET, SAME_UPPER or VALID)")


def conv_attrs(t, node, x_shape, w_shape) -> tuple[Conv2DAttrs, tuple[int, ...], str]:
    a = t.attrs(node)
    if len(x_shape) != 4 or len(w_shape) != 4:
        raise t.fail(f"only 2-D convolution of NCHW inputs is supported, got input {list(x_shape)} and "
                     f"weights {list(w_shape)}")
    n, c, h, w = x_shape
    oc, icg, kh, kw = w_shape
    if "kernel_shape" in a and tuple(a["kernel_shape"]) != (kh, kw):
        raise t.fail(f"kernel_shape {a['kernel_shape']} does not match the weights {list(w_shape)}")
    stride = tuple(a.get("strides", (1, 1)))
    dilation = tuple(a.get("dilations", (1, 1)))
    group = int(a.get("group", 1))
    if group == 1:
        kind, mult = "Conv2D", 1
        if icg != c:
            raise t.fail(f"weights {list(w_shape)} expect {icg} input channels, input has {c}")
    elif group == c and icg == 1 and oc % c == 0:
        kind, mult = "DepthwiseConv2D", oc // c
    else:
        raise t.fail(f"grouped convolution with group={group} is not supported (only group=1 or depthwise, "
                     f"group = input channels = {c})")
    pad = padding(t, a, (h, w), (kh, kw), stride, dilation)
    attrs = Conv2DAttrs(stride=stride, dilation=dilation, pad=pad, depth_multiplier=mult)
    oh = (h + pad[0] + pad[1] - ((kh - 1) * dilation[0] + 1)) // stride[0] + 1
    ow = (w + pad[2] + pad[3] - ((kw - 1) * dilation[1] + 1)) // stride[1] + 1
    if oh < 1 or ow < 1:
        raise t.fail(f"kernel {kh}x{kw} does not fit input {h}x{w} with pads {list(pad)}")
    return attrs, (n, oc, oh, ow), kind


def _weights_shape(t, name: str) -> tuple[int, ...]:
    if not t.is_static(name):
        raise t.fail(f"weights '{name}' must be a constant (an initializer, possibly behind DequantizeLinear)")
    return t.values[name].shape


def _bias(t, node, k: int, kind: str, channels: int) -> list[str]:
    b = t.optional_input(node, k)
    if b is None:
        return []
    if not t.is_static(b):
        raise t.fail(f"bias '{b}' must be a constant")
    if t.values[b].size not in (1, channels):
        raise t.fail(f"bias '{b}' {list(t.values[b].shape)} must have one value per output channel ({channels})")
    return [t.weight(b, lambda v: np.broadcast_to(v.reshape(-1), (channels,)), lambda axis: 0)]


def conv(t, node) -> None:
    x_shape = t.shape_of(node.input[0])
    attrs, out_shape, kind = conv_attrs(t, node, x_shape, _weights_shape(t, node.input[1]))
    w = t.weight(node.input[1], lambda v: layout.conv_weights(kind, v), lambda ax: layout.conv_weight_axis(kind, ax))
    t.emit(node, kind, [t.act(node.input[0]), w] + _bias(t, node, 2, kind, out_shape[1]), out_shape, attrs)


def conv_transpose(t, node) -> None:
    """TransposeConv2D: TFLite's TRANSPOSE_CONV crops `pad` from the full (H - 1) * stride + K output; ONNX's
    output_padding un-crops rows at the bottom/right (it cannot add rows beyond the full output here)."""
    a = t.attrs(node)
    x_shape = t.shape_of(node.input[0])
    w_shape = _weights_shape(t, node.input[1])
    if len(x_shape) != 4 or len(w_shape) != 4:
        raise t.fail(f"only 2-D transposed convolution of NCHW inputs is supported, got input {list(x_shape)} and "
                     f"weights {list(w_shape)}")
    n, c, h, w = x_shape
    ic, oc, kh, kw = w_shape
    if int(a.get("group", 1)) != 1:
        raise t.fail(f"group={a['group']} is not supported (only group=1)")
    if ic != c:
        raise t.fail(f"weights {list(w_shape)} expect {ic} input channels, input has {c}")
    if "kernel_shape" in a and tuple(a["kernel_shape"]) != (kh, kw):
        raise t.fail(f"kernel_shape {a['kernel_shape']} does not match the weights {list(w_shape)}")
    if tuple(a.get("dilations", (1, 1))) != (1, 1):
        raise t.fail(f"dilations {list(a['dilations'])} are not supported (only 1)")
    if "output_shape" in a or t.text_attr(node, "auto_pad", "NOTSET") != "NOTSET":
        raise t.fail("output_shape / auto_pad are not supported; give explicit pads (torch does)")
    stride = tuple(int(s) for s in a.get("strides", (1, 1)))
    top, left, bottom, right = (int(p) for p in a.get("pads", (0, 0, 0, 0)))
    extra_h, extra_w = (int(p) for p in a.get("output_padding", (0, 0)))
    if extra_h > bottom or extra_w > right or min(stride) < 1 or min(top, left, bottom, right) < 0:
        raise t.fail(f"output_padding {[extra_h, extra_w]} beyond pads {[top, left, bottom, right]} (or a bad "
                     "stride/pad) is not supported: the extra rows would lie outside the full output")
    pad = (top, bottom - extra_h, left, right - extra_w)
    oh = (h - 1) * stride[0] + kh - pad[0] - pad[1]
    ow = (w - 1) * stride[1] + kw - pad[2] - pad[3]
    if oh < 1 or ow < 1:
        raise t.fail(f"pads {[top, left, bottom, right]} crop away the whole output")
    kind = "TransposeConv2D"
    wt = t.weight(node.input[1], lambda v: layout.conv_weights(kind, v), lambda ax: layout.conv_weight_axis(kind, ax))
    t.emit(node, kind, [t.act(node.input[0]), wt] + _bias(t, node, 2, kind, oc), (n, oc, oh, ow),
           TransposeConv2DAttrs(stride=stride, pad=pad))


def gemm(t, node) -> None:
    a = t.attrs(node)
    if a.get("transA", 0):
        raise t.fail("transA=1 is not supported")
    _fully_connected(t, node, bool(a.get("transB", 0)), float(a.get("alpha", 1.0)), float(a.get("beta", 1.0)))


def matmul(t, node) -> None:
    _fully_connected(t, node, False, 1.0, 1.0)


def _fully_connected(t, node, trans_b: bool, alpha: float, beta: float) -> None:
    """FullyConnected with [O, K] weights. Scaled by alpha / beta, the weights and bias are float constants
    (the IR has no such scale, and a scaled int8 weight is another quantization): such an op stays float."""
    x_name, w_name = node.input[0], node.input[1]
    b_name = t.optional_input(node, 2)
    x_shape = t.shape_of(x_name)
    if len(x_shape) != 2:
        raise t.fail(f"input '{x_name}' has shape {list(x_shape)}; only 2-D [N, K] inputs are supported (Flatten "
                     "first)")
    if not t.is_static(w_name):
        raise t.fail(f"weights '{w_name}' must be a constant")
    w = t.values[w_name]
    if w.ndim != 2:
        raise t.fail(f"weights '{w_name}' have shape {list(w.shape)}; expected 2-D")
    units, depth = (w.shape[0], w.shape[1]) if trans_b else (w.shape[1], w.shape[0])
    if depth != x_shape[1]:
        raise t.fail(f"weights {list(w.shape)} do not match input {list(x_shape)}")
    if b_name and not t.is_static(b_name):
        raise t.fail(f"bias '{b_name}' must be a constant")
    if b_name and (t.values[b_name].size not in (1, units)
                   or t.values[b_name].ndim == 2 and t.values[b_name].shape[0] != 1):
        raise t.fail(f"bias '{b_name}' {list(t.values[b_name].shape)} must broadcast as [{units}]")
    to_ir = (lambda v: np.ascontiguousarray(v)) if trans_b else (lambda v: np.ascontiguousarray(v.T))
    if alpha == 1.0 and beta == 1.0:
        ins = [t.weight(w_name, to_ir, lambda ax: ax if trans_b else 1 - ax)]
        if b_name:
            ins.append(t.weight(b_name, lambda v: np.broadcast_to(v.reshape(-1), (units,)), lambda ax: 0))
    else:
        ins = [t.const_tensor(w_name, to_ir(w.astype(np.float32)) * np.float32(alpha), "float32")]
        if b_name:
            b = np.broadcast_to(t.values[b_name].astype(np.float32).reshape(-1), (units,)) * np.float32(beta)
            ins.append(t.const_tensor(b_name, np.ascontiguousarray(b), "float32"))
    t.emit(node, "FullyConnected", [t.act(x_name)] + ins, (x_shape[0], units), FullyConnectedAttrs())


# ---------------------------------------------------------------------------------------- QOperator

def _qlinear_input(t, name: str, s: str, z: str, what: str) -> str:
    if name not in t.ir or t.dtype_of(name) != "int8":
        raise t.fail(f"input '{name}' must be an int8 activation")
    scale, zp = t.quant_params(s, z, what)
    if not t.same_quant(name, scale, zp):
        q = t.quant_of(name)
        raise t.fail(f"{what} quantization {scale[0]:g} / {zp[0]} differs from the quantization of its input "
                     f"'{name}' ({np.float32(q.scale[0]):g} / {int(q.zero_point[0])})")
    return t.ir[name]


def _int8_weights(t, kind: str, qc: QConst, to_ir) -> str:
    """An int8 weight constant in IR layout (QLinear ops: the weights are int8 in the file)."""
    if qc.q.dtype != np.int8:
        raise t.fail(f"weights '{qc.name}' are {qc.q.dtype}; int8 weights are required")
    if np.any(qc.zp != 0):
        raise t.fail(f"weights '{qc.name}' have a non-zero zero point; only symmetric int8 weights are supported")
    if qc.axis not in (None, 0):
        raise t.fail(f"weights '{qc.name}' are quantized per channel along axis {qc.axis}; only the output axis "
                     "is supported")
    data = to_ir(qc.q)
    axis = OUTPUT_AXIS[kind] if qc.axis is not None else None
    return t.const_tensor(qc.name, data, "int8", t.ir_quant(qc.scale, qc.zp, axis))


def _raw_int32_bias(t, name: str | None, channels: int) -> list[str]:
    if not name:
        return []
    b = t.static(name, "bias")
    if b.dtype != np.int32 or b.size != channels:
        raise t.fail(f"bias '{name}' must be int32 with one value per output channel, got {b.dtype} {list(b.shape)}")
    return [t.const_tensor(name, b.reshape(-1), "int32")]


def qlinear_conv(t, node) -> None:
    ins = list(node.input) + [""] * (9 - len(node.input))
    x = _qlinear_input(t, ins[0], ins[1], ins[2], "x")
    data = t.static(ins[3], "weights")
    scale, zp = t.quant_params(ins[4], ins[5], "weights", per_tensor=False)
    qc = QConst(data, scale, zp, 0 if scale.size > 1 else None, ins[3])
    attrs, out_shape, kind = conv_attrs(t, node, t.shape_of(ins[0]), data.shape)
    attrs.requant = "onnx"
    inputs = [x, _int8_weights(t, kind, qc, lambda v: layout.conv_weights(kind, v))]
    inputs += _raw_int32_bias(t, ins[8], out_shape[1])
    ys, yz = t.quant_params(ins[6], ins[7], "y")
    y = t.new_activation(node.output[0], out_shape, "int8", t.ir_quant(ys, yz))
    t.mark_uint8(y, ins[7])
    t.add_op(node, kind, inputs, [y], attrs)


def qlinear_matmul(t, node) -> None:
    a_name, a_s, a_z, b_name, b_s, b_z, y_s, y_z = node.input
    x = _qlinear_input(t, a_name, a_s, a_z, "a")
    x_shape = t.shape_of(a_name)
    b = t.static(b_name, "weights")
    if len(x_shape) != 2 or b.ndim != 2 or b.shape[0] != x_shape[1]:
        raise t.fail(f"weights {list(b.shape)} do not match input {list(x_shape)} (2-D [N, K] inputs only)")
    scale, zp = t.quant_params(b_s, b_z, "weights", per_tensor=False)
    if scale.size > 1 and scale.size != b.shape[1]:
        raise t.fail(f"{scale.size} weight scales for {b.shape[1]} outputs")
    qc = QConst(np.ascontiguousarray(b.T), scale, zp, 0 if scale.size > 1 else None, b_name)
    w = _int8_weights(t, "FullyConnected", qc, lambda v: v)
    ys, yz = t.quant_params(y_s, y_z, "y")
    y = t.new_activation(node.output[0], (x_shape[0], b.shape[1]), "int8", t.ir_quant(ys, yz))
    t.mark_uint8(y, y_z)
    t.add_op(node, "FullyConnected", [x, w], [y], FullyConnectedAttrs(requant="onnx"))


HANDLERS = {"Conv": conv, "ConvTranspose": conv_transpose, "Gemm": gemm, "MatMul": matmul,
            "QLinearConv": qlinear_conv, "QLinearMatMul": qlinear_matmul}
