"""TFLite operators of segmentation and detector heads: RESIZE_BILINEAR, RESIZE_NEAREST_NEIGHBOR, TRANSPOSE_CONV
and MediaPipe's custom `Convolution2DTransposeBias`, translated 1:1 into the IR (called by tflite_model._op).

TRANSPOSE_CONV takes (output_shape, weights [OC][KH][KW][IC], input, bias?). Its padding is TFLite's
(transpose_conv.cc): ComputePaddingHeightWidth run from the *output* size, as if the op were the forward
convolution of its output; SAME crops total // 2 rows at the top, VALID none. The IR keeps what is cropped
from the full (H - 1) * stride + K result at each side (a negative bottom/right means rows that only the
bias reaches).

`Convolution2DTransposeBias` (MediaPipe) is the same computation with inputs (input, weights, bias) and a
12-byte custom option, the C struct TfLiteTransposeConvParams {padding (1 SAME, 2 VALID), stride_width,
stride_height} as little-endian int32; float32 only.
"""
from __future__ import annotations

import struct

from ..ir import Activation, Op, ResizeAttrs, TransposeConv2DAttrs, transpose_conv_crop

SPATIAL = ("RESIZE_BILINEAR", "RESIZE_NEAREST_NEIGHBOR", "TRANSPOSE_CONV")
CUSTOM = ("Convolution2DTransposeBias",)
_CUSTOM_PADDING = {1: "SAME", 2: "VALID"}


def _crop(padding: str, x_shape, w_shape, y_shape, stride) -> tuple[int, int, int, int]:
    return transpose_conv_crop(padding, x_shape[1:3], w_shape[1:3], y_shape[1:3], stride)


def _size(r, where: str, t) -> tuple[int, int]:
    if t.data is None or t.data.size != 2:
        raise r.fail(where, f"the size input '{t.name}' must be a constant [height, width]; dynamic sizes are "
                            "not supported")
    return int(t.data.reshape(-1)[0]), int(t.data.reshape(-1)[1])


def spatial_op(r, op, kind: str, i: int, name: str, inputs: list[int], outputs: list[int], outs: list[str],
               tensor, where: str, activation) -> Op:
    """The IR op of a SPATIAL builtin. `activation(code)` maps a fused-activation code (tflite_model's)."""
    if kind in ("RESIZE_BILINEAR", "RESIZE_NEAREST_NEIGHBOR"):
        cls = "ResizeBilinearOptions" if kind == "RESIZE_BILINEAR" else "ResizeNearestNeighborOptions"
        o = getattr(r.tfl, cls)()
        table = op.BuiltinOptions()
        if table is not None:
            o.Init(table.Bytes, table.Pos)
        x, y = tensor(inputs[0]), tensor(outputs[0])
        size = _size(r, where, tensor(inputs[1]))
        if len(y.shape) != 4 or tuple(y.shape[1:3]) != size:
            raise r.fail(where, f"output shape {list(y.shape)} does not match the size input {list(size)}")
        attrs = ResizeAttrs(align_corners=bool(o.AlignCorners()) if table is not None else False,
                            half_pixel_centers=bool(o.HalfPixelCenters()) if table is not None else False)
        return Op(i, name, "ResizeBilinear" if kind == "RESIZE_BILINEAR" else "ResizeNearest", [x.name], outs, attrs)
    # TRANSPOSE_CONV: (output_shape, weights, input, bias?)
    o = r.tfl.TransposeConvOptions()
    table = op.BuiltinOptions()
    o.Init(table.Bytes, table.Pos)
    shape_t, w, x = tensor(inputs[0]), tensor(inputs[1]), tensor(inputs[2])
    y = tensor(outputs[0])
    if shape_t.data is None or [int(d) for d in shape_t.data.reshape(-1)] != list(y.shape):
        raise r.fail(where, "the output_shape input must be a constant equal to the output tensor's shape")
    if x.dtype != w.dtype:
        raise r.fail(where, f"{x.dtype} input with {w.dtype} weights (hybrid transpose convolution) is not "
                            "supported; use a fully int8 or fully float32 model")
    stride = (o.StrideH(), o.StrideW())
    padding = {0: "SAME", 1: "VALID"}.get(o.Padding())
    if padding is None or len(x.shape) != 4 or len(w.shape) != 4:
        raise r.fail(where, f"expects 4-D input and weights and SAME/VALID padding, got {list(x.shape)}, "
                            f"{list(w.shape)}, padding code {o.Padding()}")
    bias = [tensor(inputs[3]).name] if len(inputs) > 3 and inputs[3] >= 0 else []
    attrs = TransposeConv2DAttrs(stride=stride, pad=_crop(padding, x.shape, w.shape, y.shape, stride),
                                 activation=activation(o.FusedActivationFunction()))
    return Op(i, name, "TransposeConv2D", [x.name, w.name] + bias, outs, attrs)


def custom_op(r, op, code: str, i: int, inputs: list[int], outputs: list[int], outs: list[str], tensor,
              where: str) -> Op:
    """MediaPipe's Convolution2DTransposeBias: (input, weights, bias), options TfLiteTransposeConvParams."""
    raw = op.CustomOptionsAsNumpy().tobytes() if op.CustomOptionsLength() else b""
    if len(raw) < 12:
        raise r.fail(where, f"custom options of {code} are {len(raw)} bytes; expected TfLiteTransposeConvParams "
                            "(padding, stride_width, stride_height as int32)")
    padding_code, stride_w, stride_h = struct.unpack("<iii", raw[:12])
    padding = _CUSTOM_PADDING.get(padding_code)
    if padding is None or stride_w < 1 or stride_h < 1:
        raise r.fail(where, f"{code}: padding code {padding_code} (expected 1 SAME or 2 VALID) or strides "
                            f"{stride_h}x{stride_w} not supported")
    if len(inputs) != 3:
        raise r.fail(where, f"{code} takes (input, weights, bias), got {len(inputs)} inputs")
    x, w, b = (tensor(t) for t in inputs)
    y = tensor(outputs[0])
    if x.dtype != "float32" or len(x.shape) != 4 or len(w.shape) != 4 or len(y.shape) != 4:
        raise r.fail(where, f"{code} is supported in float32 on 4-D tensors, got {x.dtype} {list(x.shape)}")
    attrs = TransposeConv2DAttrs(stride=(stride_h, stride_w), pad=_crop(padding, x.shape, w.shape, y.shape,
                                                                      (stride_h, stride_w)),
                                 activation=Activation("none"))
    return Op(i, f"{code.lower()}_{i}", "TransposeConv2D", [x.name, w.name, b.name], outs, attrs)
