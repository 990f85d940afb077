"""Load a .tflite flatbuffer into the IR with the `tflite` package (no TensorFlow needed).

Each operator is translated 1:1: into an IR op, or into a source op (passes/shape_source_ops.py) that the passes
then fold (static shape chains, float16 weights) or rewrite (slices, squeezes) into IR ops. Only what the
IR can express exactly is accepted; anything else (an op, dtype, option or quantization scheme) is an
error naming the operator, never an approximation. Every unsupported operator is named in one error.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..errors import DwsError
from ..ir import (Activation, AddAttrs, ConcatAttrs, Conv2DAttrs, FullyConnectedAttrs, Graph, LeakyReluAttrs,
                  MeanAttrs, MulAttrs, NoAttrs, Op, PadAttrs, PoolAttrs, Quant, QuantizeAttrs, SoftmaxAttrs, Tensor,
                  same_padding)
from ..passes.fold_shape_chains import fold_shape_chains
from ..passes.fold_float16 import fold_float16
from ..passes.requantize_into_concat import requantize_into_concat
from ..passes.shape_to_reshape import shape_to_reshape
from ..passes.slices import slices
from ..passes.shape_source_ops import SourceAttrs, require_none_left
from . import tflite_spatial

# float16 only as constant weights behind a DEQUANTIZE, which fold_float16 turns into float32
TENSOR_TYPES = {0: "float32", 1: "float16", 2: "int32", 9: "int8"}
TENSOR_TYPE_NAMES = {0: "FLOAT32", 1: "FLOAT16", 2: "INT32", 3: "UINT8", 4: "INT64", 6: "BOOL", 7: "INT16", 9: "INT8"}
ACTIVATIONS = {0: Activation("none"), 1: Activation("relu"), 2: Activation("clamp", -1.0, 1.0), 3: Activation("relu6")}
ACTIVATION_NAMES = {4: "TANH", 5: "SIGN_BIT"}
SUPPORTED = ("CONV_2D", "DEPTHWISE_CONV_2D", "ADD", "AVERAGE_POOL_2D", "MAX_POOL_2D", "FULLY_CONNECTED", "SOFTMAX",
             "RESHAPE", "MEAN", "PAD", "CONCATENATION", "QUANTIZE", "DEQUANTIZE", "RELU", "RELU6",
             "MUL", "MAXIMUM", "MINIMUM", "HARD_SWISH", "LOGISTIC", "TANH", "LEAKY_RELU", "PRELU",
             *tflite_spatial.SPATIAL, *(f"CUSTOM {c}" for c in tflite_spatial.CUSTOM),
             "SHAPE", "STRIDED_SLICE", "SLICE", "SPLIT", "SPLIT_V", "PACK", "GATHER", "SQUEEZE", "EXPAND_DIMS",
             "REDUCE_PROD")
# After the 1:1 import, in order: weights first (later folds may read them), then shape chains, then the
# rewrites of what is left of the source ops on activations.
PASSES = (fold_float16, fold_shape_chains, shape_to_reshape, slices, requantize_into_concat, require_none_left)
# TFLite operator -> IR op type of the elementwise ops without options
ELEMENTWISE = {"MAXIMUM": "Maximum", "MINIMUM": "Minimum", "HARD_SWISH": "HardSwish", "LOGISTIC": "Logistic",
               "TANH": "Tanh", "PRELU": "PRelu"}


def _tflite():
    import tflite   # imported lazily: only this importer needs it
    return tflite


class _Reader:
    def __init__(self, path: Path, buf: bytes):
        self.path = path
        self.tfl = _tflite()
        self.model = self.tfl.Model.GetRootAsModel(buf, 0)
        self.names = {v: k for k, v in vars(self.tfl.BuiltinOperator).items() if not k.startswith("_")}

    def fail(self, where: str, what: str) -> DwsError:
        return DwsError(f"{self.path}: {where}: {what}")


def load_tflite(path: Path) -> Graph:
    path = Path(path)
    try:
        buf = path.read_bytes()
    except OSError as exc:
        raise DwsError(f"{path}: cannot read: {exc.strerror}") from None
    if len(buf) < 8 or buf[4:8] != b"TFL3":
        raise DwsError(f"{path}: not a TFLite model (no 'TFL3' flatbuffer identifier); is the file truncated "
                       "or of another format?")
    try:
        graph = _convert(_Reader(path, buf))
    except DwsError:
        raise
    except Exception as exc:   # a damaged flatbuffer surfaces as any error while walking offsets
        raise DwsError(f"{path}: corrupt or truncated TFLite flatbuffer ({type(exc).__name__}: {exc})") from None
    for graph_pass in PASSES:
        graph = graph_pass(graph)
    return graph


def _convert(r: _Reader) -> Graph:
    if r.model.SubgraphsLength() != 1:
        raise r.fail("model", f"{r.model.SubgraphsLength()} subgraphs; only single-subgraph models (no control "
                              "flow) are supported")
    sg = r.model.Subgraphs(0)
    tensors: dict[int, Tensor] = {}
    used = set()
    origin: dict[str, str] = {}

    def tensor(index: int) -> Tensor:
        if index not in tensors:
            tensors[index] = _tensor(r, sg, index, used, origin)
        return tensors[index]

    _check_supported(r, sg)
    ops = []
    for i in range(sg.OperatorsLength()):
        ops.append(_op(r, sg, i, tensor))
    graph_tensors = {t.name: t for t in tensors.values()}
    name = re.sub(r"\W", "_", r.path.stem)
    name = name if re.match(r"[A-Za-z_]", name) else "model_" + name
    return Graph(name=name, tensors=graph_tensors, ops=ops,
                 inputs=[tensor(int(i)).name for i in sg.InputsAsNumpy()],
                 outputs=[tensor(int(i)).name for i in sg.OutputsAsNumpy()], source=str(r.path), origin=origin)


def _kind(r: _Reader, op) -> str:
    code_table = r.model.OperatorCodes(op.OpcodeIndex())
    code = max(code_table.BuiltinCode(), code_table.DeprecatedBuiltinCode())
    kind = r.names.get(code, f"builtin {code}")
    if kind == "CUSTOM":
        kind = f"CUSTOM {(code_table.CustomCode() or b'').decode(errors='replace')}"
    return kind


def _check_supported(r: _Reader, sg) -> None:
    """One error naming every unsupported operator type, with how often it occurs and where it first does."""
    found: dict[str, list[int]] = {}
    for i in range(sg.OperatorsLength()):
        kind = _kind(r, sg.Operators(i))
        if kind not in SUPPORTED:
            found.setdefault(kind, []).append(i)
    if not found:
        return
    listed = "; ".join(f"{kind} x{len(where)} (operator{'s' if len(where) > 1 else ''} "
                       f"{', '.join(map(str, where[:5]))}{', ...' if len(where) > 5 else ''})"
                       for kind, where in sorted(found.items(), key=lambda kv: (-len(kv[1]), kv[0])))
    total = sum(len(w) for w in found.values())
    raise r.fail("model", f"{len(found)} operator type(s) not supported ({total} of {sg.OperatorsLength()} "
                          f"operators): {listed}. Supported: {', '.join(SUPPORTED)}")


def _tensor(r: _Reader, sg, index: int, used: set, origin: dict) -> Tensor:
    t = sg.Tensors(index)
    raw_name = t.Name().decode(errors="replace") if t.Name() else f"tensor{index}"
    # TFLite names fuse every source op ("a/Relu;a/BiasAdd;..."): keep the first part, made unique.
    name = raw_name.split(";")[0] or f"tensor{index}"
    if name in used:
        name = f"{name}#{index}"
    used.add(name)
    origin[name] = raw_name
    if t.Type() not in TENSOR_TYPES:
        type_name = TENSOR_TYPE_NAMES.get(t.Type(), str(t.Type()))
        raise r.fail(f"tensor {index} '{name}'", f"unsupported type {type_name}; supported: float32, int8, int32")
    dtype = TENSOR_TYPES[t.Type()]
    shape = tuple(int(d) for d in t.ShapeAsNumpy()) if t.ShapeLength() else ()
    # A scalar activation is one value; int32 scalars keep their rank: shape chains fold them (PACK stacks them)
    tensor = Tensor(name=name, shape=shape if shape or dtype == "int32" else (1,), dtype=dtype)
    q = t.Quantization()
    if q is not None and q.ScaleLength():
        if q.DetailsType() != 0:
            raise r.fail(f"tensor '{name}'", "custom quantization details are not supported")
        scale = q.ScaleAsNumpy().astype(np.float32).astype(np.float64)
        zero_point = (q.ZeroPointAsNumpy().astype(np.int32) if q.ZeroPointLength()
                      else np.zeros(len(scale), np.int32))
        axis = int(q.QuantizedDimension()) if len(scale) > 1 else None
        tensor.quant = Quant(scale=scale, zero_point=zero_point, axis=axis)
    buffer = r.model.Buffers(t.Buffer()) if t.Buffer() < r.model.BuffersLength() else None
    if buffer is not None and buffer.DataLength():
        data = buffer.DataAsNumpy().tobytes()
        expected = tensor.nbytes
        if len(data) != expected:
            raise r.fail(f"tensor '{name}'", f"buffer has {len(data)} bytes, shape {list(shape)} needs {expected}")
        tensor.data = np.frombuffer(data, dtype=np.dtype(dtype).newbyteorder("<")).reshape(tensor.shape).copy()
    return tensor


def _padding(r, where: str, code: int, in_shape, kernel, stride, dilation) -> tuple[int, int, int, int]:
    if code == 1:   # VALID
        return (0, 0, 0, 0)
    if code == 0:   # SAME
        return (same_padding(in_shape[1], kernel[0], stride[0], dilation[0])
                + same_padding(in_shape[2], kernel[1], stride[1], dilation[1]))
    raise r.fail(where, f"unknown padding code {code}")


def _activation(r, where: str, code: int) -> Activation:
    if code not in ACTIVATIONS:
        raise r.fail(where, f"fused activation {ACTIVATION_NAMES.get(code, code)} is not supported")
    return ACTIVATIONS[code]


def _positive(r, where: str, **pairs) -> None:
    """Strides, dilations and filter sizes must be >= 1 before any padding arithmetic divides by them."""
    for what, (h, w) in pairs.items():
        if min(h, w) < 1:
            raise r.fail(where, f"{what} must be >= 1, got [{h}, {w}] (height, width)")


def _options(r, op, cls_name: str):
    table = op.BuiltinOptions()
    cls = getattr(r.tfl, cls_name)
    opts = cls()
    if table is None:
        return None
    opts.Init(table.Bytes, table.Pos)
    return opts


def _op(r: _Reader, sg, i: int, tensor) -> Op:
    op = sg.Operators(i)
    kind = _kind(r, op)
    inputs = [int(t) for t in op.InputsAsNumpy()] if op.InputsLength() else []
    outputs = [int(t) for t in op.OutputsAsNumpy()] if op.OutputsLength() else []
    out_name = tensor(outputs[0]).name if outputs else f"op{i}"
    where = f"operator {i} ({kind}, output '{out_name}')"
    name = f"{kind.lower()}_{i}"
    ins = [tensor(t).name for t in inputs if t >= 0]
    outs = [tensor(t).name for t in outputs]
    if kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        cls = "Conv2DOptions" if kind == "CONV_2D" else "DepthwiseConv2DOptions"
        o = _options(r, op, cls)
        x, w = tensor(inputs[0]), tensor(inputs[1])
        if len(x.shape) != 4 or len(w.shape) != 4:
            raise r.fail(where, f"expects 4-D input and filter, got {list(x.shape)} and {list(w.shape)}")
        stride = (o.StrideH(), o.StrideW())
        dilation = (o.DilationHFactor(), o.DilationWFactor())   # the schema default (field absent) is 1
        _positive(r, where, stride=stride, dilation=dilation)
        multiplier = 1
        if kind == "DEPTHWISE_CONV_2D":
            multiplier = o.DepthMultiplier() or w.shape[3] // max(x.shape[3], 1)
        if w.dtype != x.dtype and (x.dtype, w.dtype) != ("float32", "int8"):
            raise r.fail(where, f"{x.dtype} input with {w.dtype} filter is not supported; only int8 filters with "
                                "float32 activations (hybrid / dynamic-range quantization) may differ")
        attrs = Conv2DAttrs(stride=stride, dilation=dilation, depth_multiplier=multiplier,
                            pad=_padding(r, where, o.Padding(), x.shape, w.shape[1:3], stride, dilation),
                            activation=_activation(r, where, o.FusedActivationFunction()))
        return Op(i, name, "Conv2D" if kind == "CONV_2D" else "DepthwiseConv2D", ins, outs, attrs)
    if kind == "ADD":
        o = _options(r, op, "AddOptions")
        return Op(i, name, "Add", ins, outs, AddAttrs(_activation(r, where, o.FusedActivationFunction() if o else 0)))
    if kind in ("AVERAGE_POOL_2D", "MAX_POOL_2D"):
        o = _options(r, op, "Pool2DOptions")
        x = tensor(inputs[0])
        filt, stride = (o.FilterHeight(), o.FilterWidth()), (o.StrideH(), o.StrideW())
        _positive(r, where, filter=filt, stride=stride)
        attrs = PoolAttrs(filter=filt, stride=stride, pad=_padding(r, where, o.Padding(), x.shape, filt, stride, (1, 1)),
                          activation=_activation(r, where, o.FusedActivationFunction()))
        return Op(i, name, "AveragePool2D" if kind == "AVERAGE_POOL_2D" else "MaxPool2D", ins, outs, attrs)
    if kind == "FULLY_CONNECTED":
        o = _options(r, op, "FullyConnectedOptions")
        if o is not None and o.WeightsFormat() != 0:
            raise r.fail(where, "shuffled weights format is not supported")
        if tensor(inputs[1]).dtype != tensor(inputs[0]).dtype:
            raise r.fail(where, "hybrid (float input, int8 weights) fully connected is not supported")
        act = _activation(r, where, o.FusedActivationFunction() if o else 0)
        return Op(i, name, "FullyConnected", ins, outs, FullyConnectedAttrs(act))
    if kind == "SOFTMAX":
        o = _options(r, op, "SoftmaxOptions")
        return Op(i, name, "Softmax", ins, outs, SoftmaxAttrs(beta=float(np.float32(o.Beta() if o else 1.0))))
    if kind == "RESHAPE":   # [x, new_shape?]: fold_shape_chains checks a new shape tensor and drops it
        return Op(i, name, "Reshape", ins, outs, NoAttrs())
    if kind == "MEAN":
        x, axes = tensor(inputs[0]), tensor(inputs[1])
        o = _options(r, op, "ReducerOptions")
        if axes.data is None:
            raise r.fail(where, "MEAN needs constant axes")
        resolved = sorted({int(a) % len(x.shape) for a in axes.data.reshape(-1)})
        if resolved != list(range(resolved[0], resolved[-1] + 1)):
            raise r.fail(where, f"MEAN over axes {resolved} of a {len(x.shape)}-D tensor is not supported; the "
                                "reduced axes must be adjacent (e.g. [1, 2], H and W of NHWC)")
        return Op(i, name, "Mean", ins[:1], outs, MeanAttrs(keep_dims=bool(o.KeepDims()) if o else False,
                                                            axes=tuple(resolved)))
    if kind == "PAD":
        paddings = tensor(inputs[1])
        if len(inputs) > 2 or paddings.data is None:
            raise r.fail(where, "PAD needs constant paddings and no explicit constant value (PADV2)")
        pads = tuple((int(a), int(b)) for a, b in paddings.data.reshape(-1, 2))
        return Op(i, name, "Pad", ins[:1], outs, PadAttrs(paddings=pads))
    if kind == "CONCATENATION":
        o = _options(r, op, "ConcatenationOptions")
        rank = len(tensor(outputs[0]).shape)
        if o is not None and o.FusedActivationFunction() != 0:
            raise r.fail(where, "a fused activation on CONCATENATION is not supported")
        return Op(i, name, "Concatenation", ins, outs, ConcatAttrs(axis=(o.Axis() if o else 0) % rank))
    if kind in ("QUANTIZE", "DEQUANTIZE"):
        x, y = tensor(inputs[0]), tensor(outputs[0])
        if (kind, x.dtype, y.dtype) == ("QUANTIZE", "int8", "int8"):   # requantize_into_concat takes it
            return Op(i, name, "Requantize", ins, outs, SourceAttrs(source=where))
        expected = ("float32", "int8") if kind == "QUANTIZE" else ("int8", "float32")
        if (x.dtype, y.dtype) != expected and (kind, x.dtype, y.dtype) != ("DEQUANTIZE", "float16", "float32"):
            raise r.fail(where, f"{kind} from {x.dtype} to {y.dtype} is not supported; only "
                                f"{expected[0]} -> {expected[1]}")
        return Op(i, name, kind.capitalize(), ins, outs, QuantizeAttrs() if kind == "QUANTIZE" else NoAttrs())
    if kind in ("RELU", "RELU6"):
        return Op(i, name, kind.capitalize(), ins, outs, NoAttrs())
    if kind in tflite_spatial.SPATIAL:
        return tflite_spatial.spatial_op(r, op, kind, i, name, inputs, outputs, outs, tensor, where,
                                         lambda c: _activation(r, where, c))
    if kind.removeprefix("CUSTOM ") in tflite_spatial.CUSTOM:
        return tflite_spatial.custom_op(r, op, kind.removeprefix("CUSTOM "), i, inputs, outputs, outs, tensor, where)
    if kind == "MUL":
        o = _options(r, op, "MulOptions")
        return Op(i, name, "Mul", ins, outs, MulAttrs(_activation(r, where, o.FusedActivationFunction() if o else 0)))
    if kind == "LEAKY_RELU":
        o = _options(r, op, "LeakyReluOptions")
        alpha = float(np.float32(o.Alpha() if o else 0.0))
        return Op(i, name, "LeakyRelu", ins, outs, LeakyReluAttrs(alpha=alpha))
    if kind in ELEMENTWISE:
        return Op(i, name, ELEMENTWISE[kind], ins, outs, NoAttrs())
    if kind in SOURCE_OPS:
        return _source_op(r, op, i, kind, name, where, ins, outs, tensor)
    raise r.fail(where, f"operator {kind} is not supported; supported: {', '.join(SUPPORTED)}")


# TFLite operator -> (source op type, options class); the passes fold or rewrite them (passes/shape_source_ops.py)
SOURCE_OPS = {"SHAPE": ("Shape", None), "STRIDED_SLICE": ("StridedSlice", "StridedSliceOptions"),
              "SLICE": ("SliceSize", None), "SPLIT": ("Split", "SplitOptions"), "SPLIT_V": ("SplitSizes", None),
              "PACK": ("Pack", "PackOptions"), "GATHER": ("Gather", "GatherOptions"),
              "SQUEEZE": ("Squeeze", None), "EXPAND_DIMS": ("ExpandDims", None),
              "REDUCE_PROD": ("ReduceProd", "ReducerOptions")}


def _source_op(r: _Reader, op, i: int, kind: str, name: str, where: str, ins: list[str], outs: list[str],
               tensor) -> Op:
    op_type, cls = SOURCE_OPS[kind]
    o = _options(r, op, cls) if cls else None
    options: dict = {}
    x = tensor(int(op.Inputs(0)))
    if kind == "STRIDED_SLICE" and o is not None:
        options = dict(begin_mask=o.BeginMask(), end_mask=o.EndMask(), shrink_axis_mask=o.ShrinkAxisMask(),
                       ellipsis_mask=o.EllipsisMask(), new_axis_mask=o.NewAxisMask(), offset=bool(o.Offset()))
    elif kind in ("SPLIT", "SPLIT_V"):
        # SPLIT is [axis, x]; SPLIT_V [x, size_splits, axis]: the source op takes [x] and both as options
        value, sizes, axis = ((tensor(int(op.Inputs(1))), None, tensor(int(op.Inputs(0)))) if kind == "SPLIT" else
                              (x, tensor(int(op.Inputs(1))), tensor(int(op.Inputs(2)))))
        if not axis.is_const or (sizes is not None and not sizes.is_const):
            raise r.fail(where, "the split axis and sizes must be constant")
        dim = int(axis.data.reshape(-1)[0]) % len(value.shape)
        options = dict(axis=dim, num_splits=len(outs))
        if sizes is not None:
            split = [int(v) for v in sizes.data.reshape(-1)]
            if split.count(-1) == 1:
                split[split.index(-1)] = value.shape[dim] - (sum(split) + 1)
            options["sizes"] = split
        ins = [value.name]
    elif kind == "PACK":
        options = dict(axis=o.Axis() % (len(x.shape) + 1) if o is not None else 0)
    elif kind == "GATHER":
        if o is not None and o.BatchDims():
            raise r.fail(where, "GATHER with batch_dims is not supported")
        options = dict(axis=(o.Axis() if o is not None else 0) % len(x.shape))
    elif kind == "REDUCE_PROD":
        options = dict(keep_dims=bool(o.KeepDims()) if o is not None else False)
    return Op(i, name, op_type, ins, outs, SourceAttrs(source=where, options=options))
