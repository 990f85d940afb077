"""Build single-operator .tflite models in memory and run them on TFLite's
reference kernels.

This is a test oracle: it needs no TensorFlow.  Models are serialised with the
``tflite`` package's generated flatbuffer builder functions plus
``flatbuffers.Builder``, and executed with ``ai_edge_litert``'s interpreter
using ``OpResolverType.BUILTIN_REF`` (the portable reference kernels; the
default resolver would route float ops through XNNPACK and int8 ops through
optimized kernels).

Example::

    x = TensorSpec("x", (1, 8, 8, 4), "float32")
    w = TensorSpec("w", (1, 3, 3, 4), "float32", data=weights)
    b = TensorSpec("b", (4,), "float32", data=bias)
    y = TensorSpec("y", (1, 8, 8, 4), "float32")
    model = build_single_op_model("DEPTHWISE_CONV_2D", [x, w, b], [y],
                                  {"padding": "SAME"})
    (out,) = run_reference(model, [x_value])

Conventions
-----------
* An input ``TensorSpec`` with ``data`` becomes a constant tensor backed by its
  own buffer; an input without ``data`` becomes a subgraph input, in the order
  given.  ``None`` in ``inputs`` is an omitted optional input (tensor index -1),
  e.g. a missing bias.
* Every output spec is a subgraph output.
* Auxiliary int32 tensors that TFLite expects as operator inputs are created
  from options when not passed explicitly: ``paddings`` for PAD,
  ``axis`` for MEAN, ``new_shape`` for RESHAPE (which also goes into
  ``ReshapeOptions``).
* Unknown option keys raise ``ValueError`` (typos must not silently fall back
  to defaults).  Missing keys: padding SAME (the schema default), stride 1,
  dilation 1, fused_activation NONE, beta 1.0, axis 0, keep_dims False;
  depth_multiplier is inferred from the filter/input channel counts (else 1);
  pools require filter_h and filter_w.
* Trailing ``None`` inputs are dropped (the conv kernels reject a -1 bias
  index but accept an absent one).  CONV_2D without bias gets an explicit zero
  bias, because the TFLite conv kernel refuses to prepare without one.
* Op versions follow tflite/tools/versioning/op_version.cc (see ``op_version``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import flatbuffers
import numpy as np
import tflite

__all__ = [
    "TensorSpec",
    "OpSpec",
    "build_single_op_model",
    "build_model",
    "build_custom_op_model",
    "make_interpreter",
    "run_reference",
    "op_version",
    "SUPPORTED_OPS",
]

_BUFFER_ALIGNMENT = 16  # the TFLite converter aligns constant buffers to 16 bytes

_DTYPES: dict[str, tuple[int, type]] = {
    "float32": (tflite.TensorType.FLOAT32, np.float32),
    "int8": (tflite.TensorType.INT8, np.int8),
    "int32": (tflite.TensorType.INT32, np.int32),
    "uint8": (tflite.TensorType.UINT8, np.uint8),
    "int16": (tflite.TensorType.INT16, np.int16),
    "int64": (tflite.TensorType.INT64, np.int64),
    "float16": (tflite.TensorType.FLOAT16, np.float16),
}

_PADDING = {"SAME": tflite.Padding.SAME, "VALID": tflite.Padding.VALID}

_ACTIVATION = {
    "NONE": tflite.ActivationFunctionType.NONE,
    "RELU": tflite.ActivationFunctionType.RELU,
    "RELU_N1_TO_1": tflite.ActivationFunctionType.RELU_N1_TO_1,
    "RELU6": tflite.ActivationFunctionType.RELU6,
}


@dataclass
class TensorSpec:
    name: str
    shape: tuple[int, ...]
    dtype: str  # "float32" | "int8" | "int32" (also "uint8", "int16", "int64")
    data: np.ndarray | None = None  # constant tensors (weights, bias) carry data
    scale: float | list[float] | None = None  # per-tensor or per-channel
    zero_point: int | list[int] | None = None
    quantized_dimension: int = 0


# --------------------------------------------------------------------------- #
# Op versions (mirrors tensorflow/lite/tools/versioning/op_version.cc for the
# float32 / int8 cases this oracle builds).
# --------------------------------------------------------------------------- #


def _t(specs: Sequence[TensorSpec | None], i: int) -> str | None:
    if i < len(specs) and specs[i] is not None:
        return specs[i].dtype
    return None


def op_version(
    op: str,
    inputs: Sequence[TensorSpec | None],
    outputs: Sequence[TensorSpec],
    options: dict[str, Any],
) -> int:
    """The operator version the TFLite converter would assign."""
    i0, i1, o0 = _t(inputs, 0), _t(inputs, 1), _t(outputs, 0)
    if op == "CONV_2D":
        if i0 == "int8" and i1 == "int8" and o0 == "int8":
            return 3
        if i0 == "float32" and i1 == "int8":  # hybrid
            return 5 if _is_per_channel(inputs[1]) else 2
        return 1
    if op == "DEPTHWISE_CONV_2D":
        if i0 == "float32" and i1 == "int8" and o0 == "float32":  # hybrid
            return 6 if _is_per_channel(inputs[1]) else 4
        if i0 == "int8" and i1 == "int8" and o0 == "int8":
            return 3
        if options.get("dilation_h", 1) != 1 or options.get("dilation_w", 1) != 1:
            return 2
        return 1
    if op == "FULLY_CONNECTED":
        n_inputs = sum(1 for s in inputs if s is not None)
        if n_inputs == 2:
            return 6
        if options.get("keep_num_dims", False):
            return 5
        if i0 == "int8" and i1 == "int8" and o0 == "int8":
            return 4
        if i0 == "float32" and i1 == "int8":
            return 3
        return 1
    if op == "DEQUANTIZE":
        if i0 == "int8":
            return 5 if _is_per_channel(inputs[0]) else 2
        if i0 == "int16":
            return 3
        return 1
    if op == "QUANTIZE":
        if _is_per_channel(outputs[0]):
            return 3
        if o0 == "int16":
            return 2
        return 1
    if op == "PAD":
        if inputs and inputs[0] is not None and len(inputs[0].shape) > 4:
            return 4
    if op in ("RESIZE_BILINEAR", "RESIZE_NEAREST_NEIGHBOR"):
        if options.get("half_pixel_centers", False):
            return 3
        return 2 if i0 == "int8" else 1
    if op == "TRANSPOSE_CONV":
        if options.get("fused_activation", "NONE") != "NONE":
            return 4
        if sum(1 for s in inputs if s is not None) == 4:
            return 3
        return 2 if i0 == "int8" else 1
    if op == "ADD" and i0 == "int64":
        return 4
    if op in ("ADD", "AVERAGE_POOL_2D", "MAX_POOL_2D", "CONCATENATION", "PAD",
              "SOFTMAX", "MEAN", "RELU", "RELU6", "MUL", "MAXIMUM", "MINIMUM", "LOGISTIC",
              "TANH", "LEAKY_RELU"):
        if i0 == "int16":
            return 3
        if i0 == "int8":
            return 2
        return 1
    if op in ("STRIDED_SLICE", "SLICE", "PACK", "GATHER", "SPLIT", "SPLIT_V") and i0 == "int8":
        return 2
    return 1  # RESHAPE and anything else


def _is_per_channel(spec: TensorSpec | None) -> bool:
    return spec is not None and spec.scale is not None and np.ndim(spec.scale) == 1 \
        and len(spec.scale) > 1


# --------------------------------------------------------------------------- #
# Options
# --------------------------------------------------------------------------- #


def _enum(table: dict[str, int], value: Any, what: str) -> int:
    if isinstance(value, str):
        try:
            return table[value.upper()]
        except KeyError:
            raise ValueError(f"unknown {what} {value!r}; expected one of {sorted(table)}")
    return int(value)


def _check_keys(op: str, options: dict[str, Any], allowed: set[str]) -> None:
    unknown = set(options) - allowed
    if unknown:
        raise ValueError(f"{op}: unknown option(s) {sorted(unknown)}; allowed: {sorted(allowed)}")


def _conv_options(b: flatbuffers.Builder, o: dict[str, Any]) -> int:
    tflite.Conv2DOptionsStart(b)
    tflite.Conv2DOptionsAddPadding(b, _enum(_PADDING, o.get("padding", "SAME"), "padding"))
    tflite.Conv2DOptionsAddStrideW(b, int(o.get("stride_w", 1)))
    tflite.Conv2DOptionsAddStrideH(b, int(o.get("stride_h", 1)))
    tflite.Conv2DOptionsAddFusedActivationFunction(
        b, _enum(_ACTIVATION, o.get("fused_activation", "NONE"), "fused_activation"))
    tflite.Conv2DOptionsAddDilationWFactor(b, int(o.get("dilation_w", 1)))
    tflite.Conv2DOptionsAddDilationHFactor(b, int(o.get("dilation_h", 1)))
    return tflite.Conv2DOptionsEnd(b)


def _dw_options(b: flatbuffers.Builder, o: dict[str, Any]) -> int:
    tflite.DepthwiseConv2DOptionsStart(b)
    tflite.DepthwiseConv2DOptionsAddPadding(
        b, _enum(_PADDING, o.get("padding", "SAME"), "padding"))
    tflite.DepthwiseConv2DOptionsAddStrideW(b, int(o.get("stride_w", 1)))
    tflite.DepthwiseConv2DOptionsAddStrideH(b, int(o.get("stride_h", 1)))
    tflite.DepthwiseConv2DOptionsAddDepthMultiplier(b, int(o.get("depth_multiplier", 1)))
    tflite.DepthwiseConv2DOptionsAddFusedActivationFunction(
        b, _enum(_ACTIVATION, o.get("fused_activation", "NONE"), "fused_activation"))
    tflite.DepthwiseConv2DOptionsAddDilationWFactor(b, int(o.get("dilation_w", 1)))
    tflite.DepthwiseConv2DOptionsAddDilationHFactor(b, int(o.get("dilation_h", 1)))
    return tflite.DepthwiseConv2DOptionsEnd(b)


def _pool_options(b: flatbuffers.Builder, o: dict[str, Any]) -> int:
    if "filter_h" not in o or "filter_w" not in o:
        raise ValueError("pooling needs options filter_h and filter_w")
    tflite.Pool2DOptionsStart(b)
    tflite.Pool2DOptionsAddPadding(b, _enum(_PADDING, o.get("padding", "SAME"), "padding"))
    tflite.Pool2DOptionsAddStrideW(b, int(o.get("stride_w", 1)))
    tflite.Pool2DOptionsAddStrideH(b, int(o.get("stride_h", 1)))
    tflite.Pool2DOptionsAddFilterWidth(b, int(o["filter_w"]))
    tflite.Pool2DOptionsAddFilterHeight(b, int(o["filter_h"]))
    tflite.Pool2DOptionsAddFusedActivationFunction(
        b, _enum(_ACTIVATION, o.get("fused_activation", "NONE"), "fused_activation"))
    return tflite.Pool2DOptionsEnd(b)


def _add_options(b: flatbuffers.Builder, o: dict[str, Any]) -> int:
    tflite.AddOptionsStart(b)
    tflite.AddOptionsAddFusedActivationFunction(
        b, _enum(_ACTIVATION, o.get("fused_activation", "NONE"), "fused_activation"))
    return tflite.AddOptionsEnd(b)


def _mul_options(b: flatbuffers.Builder, o: dict[str, Any]) -> int:
    tflite.MulOptionsStart(b)
    tflite.MulOptionsAddFusedActivationFunction(
        b, _enum(_ACTIVATION, o.get("fused_activation", "NONE"), "fused_activation"))
    return tflite.MulOptionsEnd(b)


def _leaky_relu_options(b: flatbuffers.Builder, o: dict[str, Any]) -> int:
    tflite.LeakyReluOptionsStart(b)
    tflite.LeakyReluOptionsAddAlpha(b, float(o.get("alpha", 0.2)))
    return tflite.LeakyReluOptionsEnd(b)


def _fc_options(b: flatbuffers.Builder, o: dict[str, Any]) -> int:
    tflite.FullyConnectedOptionsStart(b)
    tflite.FullyConnectedOptionsAddFusedActivationFunction(
        b, _enum(_ACTIVATION, o.get("fused_activation", "NONE"), "fused_activation"))
    tflite.FullyConnectedOptionsAddKeepNumDims(b, bool(o.get("keep_num_dims", False)))
    return tflite.FullyConnectedOptionsEnd(b)


def _softmax_options(b: flatbuffers.Builder, o: dict[str, Any]) -> int:
    tflite.SoftmaxOptionsStart(b)
    tflite.SoftmaxOptionsAddBeta(b, float(o.get("beta", 1.0)))
    return tflite.SoftmaxOptionsEnd(b)


def _concat_options(b: flatbuffers.Builder, o: dict[str, Any]) -> int:
    tflite.ConcatenationOptionsStart(b)
    tflite.ConcatenationOptionsAddAxis(b, int(o.get("axis", 0)))
    tflite.ConcatenationOptionsAddFusedActivationFunction(
        b, _enum(_ACTIVATION, o.get("fused_activation", "NONE"), "fused_activation"))
    return tflite.ConcatenationOptionsEnd(b)


def _reducer_options(b: flatbuffers.Builder, o: dict[str, Any]) -> int:
    tflite.ReducerOptionsStart(b)
    tflite.ReducerOptionsAddKeepDims(b, bool(o.get("keep_dims", False)))
    return tflite.ReducerOptionsEnd(b)


def _reshape_options(b: flatbuffers.Builder, o: dict[str, Any]) -> int | None:
    if "new_shape" not in o:
        return None
    vec = _int32_vector(b, tflite.ReshapeOptionsStartNewShapeVector, o["new_shape"])
    tflite.ReshapeOptionsStart(b)
    tflite.ReshapeOptionsAddNewShape(b, vec)
    return tflite.ReshapeOptionsEnd(b)


def _resize_options(start: Callable, align: Callable, half: Callable, end: Callable) -> Callable:
    def build(b: flatbuffers.Builder, o: dict[str, Any]) -> int:
        start(b)
        align(b, bool(o.get("align_corners", False)))
        half(b, bool(o.get("half_pixel_centers", False)))
        return end(b)
    return build


def _transpose_conv_options(b: flatbuffers.Builder, o: dict[str, Any]) -> int:
    tflite.TransposeConvOptionsStart(b)
    tflite.TransposeConvOptionsAddPadding(b, _enum(_PADDING, o.get("padding", "SAME"), "padding"))
    tflite.TransposeConvOptionsAddStrideW(b, int(o.get("stride_w", 1)))
    tflite.TransposeConvOptionsAddStrideH(b, int(o.get("stride_h", 1)))
    tflite.TransposeConvOptionsAddFusedActivationFunction(
        b, _enum(_ACTIVATION, o.get("fused_activation", "NONE"), "fused_activation"))
    return tflite.TransposeConvOptionsEnd(b)


def _shape_options(b: flatbuffers.Builder, o: dict[str, Any]) -> int:
    tflite.ShapeOptionsStart(b)
    tflite.ShapeOptionsAddOutType(b, tflite.TensorType.INT32)
    return tflite.ShapeOptionsEnd(b)


def _strided_slice_options(b: flatbuffers.Builder, o: dict[str, Any]) -> int:
    tflite.StridedSliceOptionsStart(b)
    tflite.StridedSliceOptionsAddBeginMask(b, int(o.get("begin_mask", 0)))
    tflite.StridedSliceOptionsAddEndMask(b, int(o.get("end_mask", 0)))
    tflite.StridedSliceOptionsAddEllipsisMask(b, int(o.get("ellipsis_mask", 0)))
    tflite.StridedSliceOptionsAddNewAxisMask(b, int(o.get("new_axis_mask", 0)))
    tflite.StridedSliceOptionsAddShrinkAxisMask(b, int(o.get("shrink_axis_mask", 0)))
    tflite.StridedSliceOptionsAddOffset(b, bool(o.get("offset", False)))
    return tflite.StridedSliceOptionsEnd(b)


def _pack_options(b: flatbuffers.Builder, o: dict[str, Any]) -> int:
    tflite.PackOptionsStart(b)
    tflite.PackOptionsAddValuesCount(b, int(o["values_count"]))
    tflite.PackOptionsAddAxis(b, int(o.get("axis", 0)))
    return tflite.PackOptionsEnd(b)


def _gather_options(b: flatbuffers.Builder, o: dict[str, Any]) -> int:
    tflite.GatherOptionsStart(b)
    tflite.GatherOptionsAddAxis(b, int(o.get("axis", 0)))
    tflite.GatherOptionsAddBatchDims(b, int(o.get("batch_dims", 0)))
    return tflite.GatherOptionsEnd(b)


def _squeeze_options(b: flatbuffers.Builder, o: dict[str, Any]) -> int:
    dims = _int32_vector(b, tflite.SqueezeOptionsStartSqueezeDimsVector, o.get("squeeze_dims", []))
    tflite.SqueezeOptionsStart(b)
    tflite.SqueezeOptionsAddSqueezeDims(b, dims)
    return tflite.SqueezeOptionsEnd(b)


def _split_options(start: Callable, add: Callable, end: Callable) -> Callable[[flatbuffers.Builder, dict], int]:
    def build(b: flatbuffers.Builder, o: dict[str, Any]) -> int:
        start(b)
        add(b, int(o["num_splits"]))
        return end(b)
    return build


def _empty(start: Callable, end: Callable) -> Callable[[flatbuffers.Builder, dict], int]:
    def build(b: flatbuffers.Builder, o: dict[str, Any]) -> int:
        start(b)
        return end(b)
    return build


_ACT = {"fused_activation"}
_WINDOW = {"padding", "stride_h", "stride_w"}

# op -> (BuiltinOptions union type, options builder or None, allowed keys)
_OPS: dict[str, tuple[int, Callable | None, set[str]]] = {
    "CONV_2D": (tflite.BuiltinOptions.Conv2DOptions, _conv_options,
                _WINDOW | _ACT | {"dilation_h", "dilation_w"}),
    "DEPTHWISE_CONV_2D": (tflite.BuiltinOptions.DepthwiseConv2DOptions, _dw_options,
                          _WINDOW | _ACT | {"dilation_h", "dilation_w", "depth_multiplier"}),
    "ADD": (tflite.BuiltinOptions.AddOptions, _add_options, _ACT),
    "AVERAGE_POOL_2D": (tflite.BuiltinOptions.Pool2DOptions, _pool_options,
                        _WINDOW | _ACT | {"filter_h", "filter_w"}),
    "MAX_POOL_2D": (tflite.BuiltinOptions.Pool2DOptions, _pool_options,
                    _WINDOW | _ACT | {"filter_h", "filter_w"}),
    "FULLY_CONNECTED": (tflite.BuiltinOptions.FullyConnectedOptions, _fc_options,
                        _ACT | {"keep_num_dims"}),
    "SOFTMAX": (tflite.BuiltinOptions.SoftmaxOptions, _softmax_options, {"beta"}),
    "RESHAPE": (tflite.BuiltinOptions.ReshapeOptions, _reshape_options, {"new_shape"}),
    "MEAN": (tflite.BuiltinOptions.ReducerOptions, _reducer_options, {"keep_dims", "axis"}),
    "PAD": (tflite.BuiltinOptions.PadOptions,
            _empty(tflite.PadOptionsStart, tflite.PadOptionsEnd), {"paddings"}),
    "CONCATENATION": (tflite.BuiltinOptions.ConcatenationOptions, _concat_options,
                      _ACT | {"axis"}),
    "QUANTIZE": (tflite.BuiltinOptions.QuantizeOptions,
                 _empty(tflite.QuantizeOptionsStart, tflite.QuantizeOptionsEnd), set()),
    "DEQUANTIZE": (tflite.BuiltinOptions.DequantizeOptions,
                   _empty(tflite.DequantizeOptionsStart, tflite.DequantizeOptionsEnd), set()),
    "RELU": (tflite.BuiltinOptions.NONE, None, set()),
    "RELU6": (tflite.BuiltinOptions.NONE, None, set()),
    "RESIZE_BILINEAR": (tflite.BuiltinOptions.ResizeBilinearOptions, _resize_options(
        tflite.ResizeBilinearOptionsStart, tflite.ResizeBilinearOptionsAddAlignCorners,
        tflite.ResizeBilinearOptionsAddHalfPixelCenters, tflite.ResizeBilinearOptionsEnd),
        {"size", "align_corners", "half_pixel_centers"}),
    "RESIZE_NEAREST_NEIGHBOR": (tflite.BuiltinOptions.ResizeNearestNeighborOptions, _resize_options(
        tflite.ResizeNearestNeighborOptionsStart, tflite.ResizeNearestNeighborOptionsAddAlignCorners,
        tflite.ResizeNearestNeighborOptionsAddHalfPixelCenters, tflite.ResizeNearestNeighborOptionsEnd),
        {"size", "align_corners", "half_pixel_centers"}),
    # inputs given as [input, weights, bias?]; the builder writes TFLite's order (output_shape, weights, input, bias?)
    "TRANSPOSE_CONV": (tflite.BuiltinOptions.TransposeConvOptions, _transpose_conv_options, _WINDOW | _ACT),
    # elementwise ops (LOGISTIC and TANH take no options)
    "LOGISTIC": (tflite.BuiltinOptions.NONE, None, set()),
    "TANH": (tflite.BuiltinOptions.NONE, None, set()),
    "MUL": (tflite.BuiltinOptions.MulOptions, _mul_options, _ACT),
    "MAXIMUM": (tflite.BuiltinOptions.MaximumMinimumOptions,
                _empty(tflite.MaximumMinimumOptionsStart, tflite.MaximumMinimumOptionsEnd), set()),
    "MINIMUM": (tflite.BuiltinOptions.MaximumMinimumOptions,
                _empty(tflite.MaximumMinimumOptionsStart, tflite.MaximumMinimumOptionsEnd), set()),
    "HARD_SWISH": (tflite.BuiltinOptions.HardSwishOptions,
                   _empty(tflite.HardSwishOptionsStart, tflite.HardSwishOptionsEnd), set()),
    "LEAKY_RELU": (tflite.BuiltinOptions.LeakyReluOptions, _leaky_relu_options, {"alpha"}),
    "PRELU": (tflite.BuiltinOptions.NONE, None, set()),
    # Shape ops (inputs such as begin/end/strides, axis, size_splits are passed as constant TensorSpecs).
    "SHAPE": (tflite.BuiltinOptions.ShapeOptions, _shape_options, set()),
    "STRIDED_SLICE": (tflite.BuiltinOptions.StridedSliceOptions, _strided_slice_options,
                      {"begin_mask", "end_mask", "ellipsis_mask", "new_axis_mask", "shrink_axis_mask", "offset"}),
    "SLICE": (tflite.BuiltinOptions.SliceOptions, _empty(tflite.SliceOptionsStart, tflite.SliceOptionsEnd), set()),
    "PACK": (tflite.BuiltinOptions.PackOptions, _pack_options, {"values_count", "axis"}),
    "GATHER": (tflite.BuiltinOptions.GatherOptions, _gather_options, {"axis", "batch_dims"}),
    "SQUEEZE": (tflite.BuiltinOptions.SqueezeOptions, _squeeze_options, {"squeeze_dims"}),
    "EXPAND_DIMS": (tflite.BuiltinOptions.ExpandDimsOptions,
                    _empty(tflite.ExpandDimsOptionsStart, tflite.ExpandDimsOptionsEnd), set()),
    "SPLIT": (tflite.BuiltinOptions.SplitOptions, _split_options(
        tflite.SplitOptionsStart, tflite.SplitOptionsAddNumSplits, tflite.SplitOptionsEnd), {"num_splits"}),
    "SPLIT_V": (tflite.BuiltinOptions.SplitVOptions, _split_options(
        tflite.SplitVOptionsStart, tflite.SplitVOptionsAddNumSplits, tflite.SplitVOptionsEnd), {"num_splits"}),
    "REDUCE_PROD": (tflite.BuiltinOptions.ReducerOptions, _reducer_options, {"keep_dims"}),
    # Ops dwscodegen does not support, for tests of the importer's error messages.
    "FLOOR": (tflite.BuiltinOptions.NONE, None, set()),
    "SQRT": (tflite.BuiltinOptions.NONE, None, set()),
    "COS": (tflite.BuiltinOptions.NONE, None, set()),
}

SUPPORTED_OPS = tuple(_OPS)


# --------------------------------------------------------------------------- #
# Flatbuffer helpers
# --------------------------------------------------------------------------- #


def _int32_vector(b: flatbuffers.Builder, start_fn: Callable, values: Sequence[int]) -> int:
    values = [int(v) for v in values]
    start_fn(b, len(values))
    for v in reversed(values):
        b.PrependInt32(v)
    return b.EndVector()


def _offset_vector(b: flatbuffers.Builder, start_fn: Callable, offsets: Sequence[int]) -> int:
    start_fn(b, len(offsets))
    for off in reversed(offsets):
        b.PrependUOffsetTRelative(off)
    return b.EndVector()


def _aligned_bytes(b: flatbuffers.Builder, payload: bytes) -> int:
    """A ubyte vector whose data starts on a _BUFFER_ALIGNMENT boundary."""
    b.StartVector(1, len(payload), _BUFFER_ALIGNMENT)
    b.head = b.head - len(payload)
    b.Bytes[b.head:b.head + len(payload)] = payload
    return b.EndVector()


def _quantization(b: flatbuffers.Builder, spec: TensorSpec) -> int | None:
    if spec.scale is None and spec.zero_point is None:
        return None
    scales = np.atleast_1d(np.asarray(spec.scale if spec.scale is not None else 1.0,
                                      dtype=np.float32))
    if spec.zero_point is None:
        zps = np.zeros(scales.shape, dtype=np.int64)
    else:
        zps = np.atleast_1d(np.asarray(spec.zero_point, dtype=np.int64))
        if zps.size == 1 and scales.size > 1:
            zps = np.full(scales.shape, int(zps[0]), dtype=np.int64)
    if scales.ndim != 1 or zps.shape != scales.shape:
        raise ValueError(f"{spec.name}: scale/zero_point length mismatch "
                         f"({scales.size} vs {zps.size})")
    if scales.size > 1:
        qd = spec.quantized_dimension
        if not 0 <= qd < len(spec.shape) or spec.shape[qd] != scales.size:
            raise ValueError(f"{spec.name}: {scales.size} scales but shape {spec.shape} "
                             f"has {spec.shape[qd] if 0 <= qd < len(spec.shape) else '?'} "
                             f"along quantized_dimension {qd}")
    tflite.QuantizationParametersStartScaleVector(b, scales.size)
    for s in reversed(scales.tolist()):
        b.PrependFloat32(s)
    scale_vec = b.EndVector()
    tflite.QuantizationParametersStartZeroPointVector(b, zps.size)
    for z in reversed(zps.tolist()):
        b.PrependInt64(int(z))
    zp_vec = b.EndVector()
    tflite.QuantizationParametersStart(b)
    tflite.QuantizationParametersAddScale(b, scale_vec)
    tflite.QuantizationParametersAddZeroPoint(b, zp_vec)
    tflite.QuantizationParametersAddQuantizedDimension(b, int(spec.quantized_dimension))
    return tflite.QuantizationParametersEnd(b)


def _constant_payload(spec: TensorSpec) -> bytes:
    np_dtype = _DTYPES[spec.dtype][1]
    arr = np.asarray(spec.data)
    if tuple(arr.shape) != tuple(spec.shape):
        if arr.size != int(np.prod(spec.shape, dtype=np.int64)):
            raise ValueError(f"{spec.name}: data shape {arr.shape} does not fit {spec.shape}")
        arr = arr.reshape(spec.shape)
    if arr.dtype != np_dtype:
        if np.issubdtype(np_dtype, np.integer):
            info = np.iinfo(np_dtype)
            if arr.size and (np.any(arr != np.round(arr)) or arr.min() < info.min
                             or arr.max() > info.max):
                raise ValueError(f"{spec.name}: data not representable as {spec.dtype}")
        arr = arr.astype(np_dtype)
    return np.ascontiguousarray(arr).astype(np.dtype(np_dtype).newbyteorder("<")).tobytes()


def _aux_inputs(op: str, inputs: list[TensorSpec | None], options: dict[str, Any],
                outputs: Sequence[TensorSpec] = ()) -> list[TensorSpec | None]:
    """Materialise option-carried constants TFLite expects as tensor inputs."""
    inputs = list(inputs)
    if op == "PAD" and len(inputs) == 1:
        if "paddings" not in options:
            raise ValueError("PAD needs a paddings input tensor or options['paddings']")
        pads = np.asarray(options["paddings"], dtype=np.int32)
        inputs.append(TensorSpec("paddings", tuple(pads.shape), "int32", data=pads))
    elif op == "MEAN" and len(inputs) == 1:
        if "axis" not in options:
            raise ValueError("MEAN needs an axis input tensor or options['axis']")
        axis = np.atleast_1d(np.asarray(options["axis"], dtype=np.int32))
        inputs.append(TensorSpec("axis", tuple(axis.shape), "int32", data=axis))
    elif op in ("RESIZE_BILINEAR", "RESIZE_NEAREST_NEIGHBOR") and len(inputs) == 1:
        size = np.asarray(options.pop("size"), dtype=np.int32)
        inputs.append(TensorSpec("size", (2,), "int32", data=size))
    elif op == "TRANSPOSE_CONV":
        # [input, weights, bias?] -> (output_shape, weights, input, bias?), TFLite's order
        shape = np.asarray(outputs[0].shape, dtype=np.int32)
        inputs = [TensorSpec("output_shape", (4,), "int32", data=shape), inputs[1], inputs[0]] + inputs[2:]
    elif op == "RESHAPE" and len(inputs) == 1 and "new_shape" in options:
        shape = np.asarray(options["new_shape"], dtype=np.int32)
        inputs.append(TensorSpec("new_shape", tuple(shape.shape), "int32", data=shape))
    return inputs


def _zero_bias(x: TensorSpec, w: TensorSpec) -> TensorSpec:
    """CONV_2D kernels refuse to run without a bias (conv.cc: has_bias), so a
    bias-less conv gets an all-zero one, typed the way the converter would."""
    n = int(w.shape[0])
    if x.dtype == "float32":
        return TensorSpec(f"{w.name}_zero_bias", (n,), "float32", data=np.zeros(n, np.float32))
    if x.scale is None or w.scale is None:
        raise ValueError("quantized CONV_2D without bias needs input and filter scales")
    if np.size(x.scale) != 1:
        raise ValueError("input scale must be per-tensor")
    x_scale = np.float32(np.asarray(x.scale).reshape(-1)[0])
    w_scales = np.broadcast_to(np.asarray(w.scale, dtype=np.float32).reshape(-1), (n,))
    bias_scale = [float(x_scale * s) for s in w_scales]
    bias_dtype = "int64" if x.dtype == "int16" else "int32"
    return TensorSpec(f"{w.name}_zero_bias", (n,), bias_dtype,
                      data=np.zeros(n, _DTYPES[bias_dtype][1]),
                      scale=bias_scale if np.size(w.scale) > 1 else bias_scale[0],
                      zero_point=0)


def _infer_depth_multiplier(inputs: list[TensorSpec | None], options: dict[str, Any]) -> None:
    """depth_multiplier omitted: derive it from shapes (TFLite's default, 1, only
    fits out_channels == in_channels)."""
    if "depth_multiplier" in options or len(inputs) < 2 or None in inputs[:2]:
        return
    x, w = inputs[0], inputs[1]
    if len(x.shape) == 4 and len(w.shape) == 4 and x.shape[3] > 0 \
            and w.shape[3] % x.shape[3] == 0:
        options["depth_multiplier"] = w.shape[3] // x.shape[3]


# --------------------------------------------------------------------------- #
# Public API
# --------------------------------------------------------------------------- #


def build_single_op_model(
    op: str,
    inputs: list[TensorSpec | None],
    outputs: list[TensorSpec],
    options: dict[str, Any] | None = None,
) -> bytes:
    """Serialise a one-operator TFLite model (schema version 3)."""
    return build_model([OpSpec(op, inputs, outputs, options or {})])


def build_custom_op_model(custom_code: str, inputs: list[TensorSpec | None], outputs: list[TensorSpec],
                          custom_options: bytes = b"") -> bytes:
    """A one-operator model whose operator is the CUSTOM op `custom_code` with raw `custom_options`
    (flexbuffer or, as MediaPipe's ops, a plain C struct); the interpreter can only run it with a
    registered kernel."""
    return build_model([OpSpec("CUSTOM", inputs, outputs, custom_code=custom_code,
                               custom_options=bytes(custom_options))])


@dataclass
class OpSpec:
    """One operator of a model built with ``build_model`` (op "CUSTOM" with a custom_code: a custom op)."""
    op: str
    inputs: list[TensorSpec | None]
    outputs: list[TensorSpec]
    options: dict[str, Any] = field(default_factory=dict)
    custom_code: str | None = None
    custom_options: bytes = b""


def build_model(ops: Sequence[OpSpec], outputs: Sequence[TensorSpec] | None = None) -> bytes:
    """Serialise a model of several operators, in execution order (schema version 3).

    A tensor is one spec object, shared by the ops that use it (activations may also be matched by name).
    Subgraph inputs: the data-less specs no op produces, in first-use order. Subgraph outputs: ``outputs``,
    default every produced tensor no op consumes, in production order. Each operator gets the single-op
    conveniences (zero bias, depth multiplier, option-carried constants)."""
    prepared = [_prepared(o) for o in ops]
    tensors: list[TensorSpec] = []
    index: dict[int, int] = {}
    by_name: dict[str, int] = {}

    def tensor_index(spec: TensorSpec, generated: bool = False) -> int:
        if id(spec) in index:
            return index[id(spec)]
        if spec.name in by_name and spec.data is None and tensors[by_name[spec.name]].data is None:
            return by_name[spec.name]
        if spec.name in by_name and generated:   # a zero bias or option-carried constant of a later op
            spec = TensorSpec(f"{spec.name}_{len(tensors)}", spec.shape, spec.dtype, spec.data, spec.scale,
                              spec.zero_point, spec.quantized_dimension)
        index[id(spec)] = by_name[spec.name] = len(tensors)
        tensors.append(spec)
        return len(tensors) - 1

    operators = []
    for given, (spec, inputs) in zip(ops, prepared):
        mine = {id(t) for t in given.inputs}
        ins = [-1 if t is None else tensor_index(t, id(t) not in mine) for t in inputs]
        operators.append((spec, ins, [tensor_index(t) for t in spec.outputs]))
    produced = [t for _, _, outs in operators for t in outs]
    consumed = {t for _, ins, _ in operators for t in ins}
    graph_inputs = list(dict.fromkeys(t for _, ins, _ in operators for t in ins
                                      if t >= 0 and tensors[t].data is None and t not in produced))
    graph_outputs = ([tensor_index(s) for s in outputs] if outputs is not None
                     else [t for t in produced if t not in consumed])
    return _serialize(tensors, operators, graph_inputs, graph_outputs)


def _prepared(spec: OpSpec) -> tuple[OpSpec, list[TensorSpec | None]]:
    """(spec with op upper-cased, options copied and its version in `version`, inputs with the single-op
    conveniences applied)."""
    op, options, inputs, outputs = spec.op.upper(), dict(spec.options), list(spec.inputs), list(spec.outputs)
    if op != "CUSTOM" and op not in _OPS:
        raise ValueError(f"unsupported op {op!r}; supported: {', '.join(SUPPORTED_OPS)}")
    if op != "CUSTOM":
        _check_keys(op, options, _OPS[op][2])
    for t in [s for s in inputs if s is not None] + outputs:
        if t.dtype not in _DTYPES:
            raise ValueError(f"{t.name}: unsupported dtype {t.dtype!r}")
    if any(s.data is not None for s in outputs):
        raise ValueError("output tensors cannot carry data")
    if op == "CUSTOM":
        return OpSpec(op, inputs, outputs, options, spec.custom_code, spec.custom_options), inputs
    while inputs and inputs[-1] is None:  # kernels want trailing optionals omitted
        inputs.pop()
    if op == "DEPTHWISE_CONV_2D":
        _infer_depth_multiplier(inputs, options)
    if op == "CONV_2D" and len(inputs) == 2:
        inputs.append(_zero_bias(inputs[0], inputs[1]))
    inputs = _aux_inputs(op, inputs, options, outputs)
    return OpSpec(op, inputs, outputs, options), inputs


def _version(spec: OpSpec) -> int:
    return 1 if spec.op == "CUSTOM" else op_version(spec.op, spec.inputs, spec.outputs, spec.options)


def _serialize(tensors: list[TensorSpec], operators: list, graph_inputs: list[int],
               graph_outputs: list[int]) -> bytes:
    """operators: (OpSpec, input indices, output indices) in execution order."""
    names = [t.name for t in tensors]
    if len(set(names)) != len(names):
        raise ValueError(f"tensor names must be unique: {names}")

    b = flatbuffers.Builder(1024)

    # Buffers: 0 is the mandatory empty buffer; each constant gets its own.
    buffer_offsets = []
    tflite.BufferStart(b)
    buffer_offsets.append(tflite.BufferEnd(b))
    tensor_buffer: list[int] = []
    for spec in tensors:
        if spec.data is None:
            tensor_buffer.append(0)
            continue
        data_vec = _aligned_bytes(b, _constant_payload(spec))
        tflite.BufferStart(b)
        tflite.BufferAddData(b, data_vec)
        tensor_buffer.append(len(buffer_offsets))
        buffer_offsets.append(tflite.BufferEnd(b))

    tensor_offsets = []
    for spec, buf in zip(tensors, tensor_buffer):
        name = b.CreateString(spec.name)
        shape = _int32_vector(b, tflite.TensorStartShapeVector, spec.shape)
        quant = _quantization(b, spec)
        tflite.TensorStart(b)
        tflite.TensorAddShape(b, shape)
        tflite.TensorAddType(b, _DTYPES[spec.dtype][0])
        tflite.TensorAddBuffer(b, buf)
        tflite.TensorAddName(b, name)
        if quant is not None:
            tflite.TensorAddQuantization(b, quant)
        tensor_offsets.append(tflite.TensorEnd(b))

    # one operator code per distinct (op, version, custom code), in first-use order
    codes = list(dict.fromkeys((spec.op, _version(spec), spec.custom_code) for spec, _, _ in operators))
    operator_offsets = []
    for spec, op_in_idx, op_out_idx in operators:
        options_type, options_fn = _OPS[spec.op][:2] if spec.op != "CUSTOM" else (tflite.BuiltinOptions.NONE, None)
        builtin_options = options_fn(b, spec.options) if options_fn is not None else None
        custom_vec = None
        if spec.custom_options:
            b.StartVector(1, len(spec.custom_options), 1)
            b.head = b.head - len(spec.custom_options)
            b.Bytes[b.head:b.head + len(spec.custom_options)] = spec.custom_options
            custom_vec = b.EndVector()
        op_inputs = _int32_vector(b, tflite.OperatorStartInputsVector, op_in_idx)
        op_outputs = _int32_vector(b, tflite.OperatorStartOutputsVector, op_out_idx)
        tflite.OperatorStart(b)
        tflite.OperatorAddOpcodeIndex(b, codes.index((spec.op, _version(spec), spec.custom_code)))
        tflite.OperatorAddInputs(b, op_inputs)
        tflite.OperatorAddOutputs(b, op_outputs)
        if builtin_options is not None:
            tflite.OperatorAddBuiltinOptionsType(b, options_type)
            tflite.OperatorAddBuiltinOptions(b, builtin_options)
        if custom_vec is not None:
            tflite.OperatorAddCustomOptions(b, custom_vec)
        operator_offsets.append(tflite.OperatorEnd(b))

    sg_tensors = _offset_vector(b, tflite.SubGraphStartTensorsVector, tensor_offsets)
    sg_inputs = _int32_vector(b, tflite.SubGraphStartInputsVector, graph_inputs)
    sg_outputs = _int32_vector(b, tflite.SubGraphStartOutputsVector, graph_outputs)
    sg_ops = _offset_vector(b, tflite.SubGraphStartOperatorsVector, operator_offsets)
    sg_name = b.CreateString("main")
    tflite.SubGraphStart(b)
    tflite.SubGraphAddTensors(b, sg_tensors)
    tflite.SubGraphAddInputs(b, sg_inputs)
    tflite.SubGraphAddOutputs(b, sg_outputs)
    tflite.SubGraphAddOperators(b, sg_ops)
    tflite.SubGraphAddName(b, sg_name)
    subgraph = tflite.SubGraphEnd(b)

    opcode_offsets = []
    for op, version, custom_code in codes:
        code = getattr(tflite.BuiltinOperator, op)
        custom_name = b.CreateString(custom_code) if custom_code is not None else None
        tflite.OperatorCodeStart(b)
        if custom_name is not None:
            tflite.OperatorCodeAddCustomCode(b, custom_name)
        tflite.OperatorCodeAddDeprecatedBuiltinCode(b, min(code, 127))
        tflite.OperatorCodeAddBuiltinCode(b, code)
        tflite.OperatorCodeAddVersion(b, version)
        opcode_offsets.append(tflite.OperatorCodeEnd(b))

    opcodes = _offset_vector(b, tflite.ModelStartOperatorCodesVector, opcode_offsets)
    subgraphs = _offset_vector(b, tflite.ModelStartSubgraphsVector, [subgraph])
    buffers = _offset_vector(b, tflite.ModelStartBuffersVector, buffer_offsets)
    description = b.CreateString("dwscodegen single-op oracle")
    tflite.ModelStart(b)
    tflite.ModelAddVersion(b, 3)
    tflite.ModelAddOperatorCodes(b, opcodes)
    tflite.ModelAddSubgraphs(b, subgraphs)
    tflite.ModelAddDescription(b, description)
    tflite.ModelAddBuffers(b, buffers)
    model = tflite.ModelEnd(b)
    b.Finish(model, file_identifier=b"TFL3")
    return bytes(b.Output())


def make_interpreter(model: bytes):
    """An allocated interpreter on the reference kernels (never XNNPACK)."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interp = Interpreter(
        model_content=bytes(model),
        experimental_op_resolver_type=OpResolverType.BUILTIN_REF,
    )
    interp.allocate_tensors()
    return interp


def run_reference(model: bytes, inputs: list[np.ndarray]) -> list[np.ndarray]:
    """Run ``model`` on TFLite's reference kernels; outputs are numpy copies.

    Inputs must match the model's input dtypes and shapes exactly (no silent
    casting: a float array fed to an int8 input is an error).
    """
    interp = make_interpreter(model)
    details = interp.get_input_details()
    if len(inputs) != len(details):
        raise ValueError(f"model has {len(details)} inputs, got {len(inputs)}")
    for d, value in zip(details, inputs):
        arr = np.asarray(value)
        if arr.dtype != d["dtype"]:
            raise TypeError(f"input {d['name']!r}: dtype {arr.dtype}, model wants "
                            f"{np.dtype(d['dtype'])}")
        if tuple(arr.shape) != tuple(d["shape"]):
            raise ValueError(f"input {d['name']!r}: shape {arr.shape}, model wants "
                             f"{tuple(d['shape'])}")
        interp.set_tensor(d["index"], np.ascontiguousarray(arr))
    interp.invoke()
    return [np.array(interp.get_tensor(d["index"]), copy=True)
            for d in interp.get_output_details()]
