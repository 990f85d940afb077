"""Load the JSON graph format (docs/graph-format.md) into the IR.

This module only translates syntax; semantic checks (shapes, dtypes, quantization) are in validate.py
so every importer gets them.
"""
from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path

import numpy as np

from ..errors import DwsError
from ..ir import (ACTIVATIONS, DTYPES, OP_TYPES, Activation, AddAttrs, ConcatAttrs, Conv2DAttrs, FullyConnectedAttrs,
                  Graph, LeakyReluAttrs, MeanAttrs, MulAttrs, NoAttrs, Op, PadAttrs, PoolAttrs, Quant, QuantizeAttrs,
                  ResizeAttrs, SliceAttrs, SoftmaxAttrs, Tensor, TransposeConv2DAttrs, same_padding, transpose_conv_crop)
from ..ops import OPS


class _Ctx:
    """Carries the file name so every message can say where it comes from."""

    def __init__(self, path: Path):
        self.path = path
        self.npz = None

    def fail(self, where: str, what: str) -> DwsError:
        return DwsError(f"{self.path}: {where}: {what}")


def load_json_graph(path: Path) -> Graph:
    path = Path(path)
    ctx = _Ctx(path)
    try:
        doc = json.loads(path.read_text())
    except OSError as exc:
        raise DwsError(f"{path}: cannot read: {exc.strerror}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DwsError(f"{path}: not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise ctx.fail("top level", "expected an object with name, tensors, ops, inputs, outputs")
    for key in ("name", "tensors", "ops", "inputs", "outputs"):
        if key not in doc:
            raise ctx.fail("top level", f"missing key '{key}'")
    name = doc["name"]
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise ctx.fail("name", f"{name!r} is not a C identifier (it prefixes the generated API)")
    if "weights" in doc:
        ctx.npz = _open_npz(ctx, path.parent / doc["weights"])
    try:
        tensors: dict[str, Tensor] = {}
        for i, spec in enumerate(_list(ctx, doc, "tensors")):
            t = _tensor(ctx, i, spec)
            if t.name in tensors:
                raise ctx.fail(f"tensor {i} '{t.name}'", "duplicate tensor name")
            tensors[t.name] = t
        ops = [_op(ctx, i, spec, tensors) for i, spec in enumerate(_list(ctx, doc, "ops"))]
    finally:
        if ctx.npz is not None:
            ctx.npz.close()
    return Graph(name=name, tensors=tensors, ops=ops, inputs=_names(ctx, doc, "inputs"),
                 outputs=_names(ctx, doc, "outputs"), source=str(path))


def _open_npz(ctx: _Ctx, npz_path: Path):
    if not npz_path.is_file():
        raise ctx.fail("weights", f"side file '{npz_path}' not found (it holds the constant tensors; "
                                  "keep it next to the JSON)")
    try:
        return np.load(npz_path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise ctx.fail("weights", f"'{npz_path}' is not a readable .npz: {exc}") from None


def _list(ctx: _Ctx, doc: dict, key: str) -> list:
    value = doc[key]
    if not isinstance(value, list):
        raise ctx.fail(key, "expected a list")
    return value


def _names(ctx: _Ctx, doc: dict, key: str) -> list[str]:
    names = _list(ctx, doc, key)
    if not names or not all(isinstance(n, str) for n in names):
        raise ctx.fail(key, "expected a non-empty list of tensor names")
    return names


def _ints(ctx: _Ctx, where: str, key: str, value, length: int) -> tuple[int, ...]:
    if (not isinstance(value, list) or len(value) != length
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)):
        raise ctx.fail(where, f"'{key}' must be a list of {length} integers, got {value!r}")
    return tuple(value)


def _tensor(ctx: _Ctx, i: int, spec) -> Tensor:
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
        raise ctx.fail(f"tensor {i}", "expected an object with a string 'name'")
    where = f"tensor '{spec['name']}'"
    for key in ("shape", "dtype"):
        if key not in spec:
            raise ctx.fail(where, f"missing key '{key}'")
    shape = spec["shape"]
    if (not isinstance(shape, list) or not shape
            or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape)):
        raise ctx.fail(where, f"shape must be a list of positive integers, got {shape!r}")
    dtype = spec["dtype"]
    if dtype not in DTYPES:
        raise ctx.fail(where, f"unsupported dtype {dtype!r}; supported: {', '.join(DTYPES)}")
    t = Tensor(name=spec["name"], shape=tuple(shape), dtype=dtype)
    if "quant" in spec:
        t.quant = _quant(ctx, where, spec["quant"])
    if "data" in spec:
        t.data = _data(ctx, where, spec["data"], t)
    return t


def _quant(ctx: _Ctx, where: str, spec) -> Quant:
    if not isinstance(spec, dict) or "scale" not in spec or "zero_point" not in spec:
        raise ctx.fail(where, "quant must be an object with 'scale' and 'zero_point'")
    scales = spec["scale"] if isinstance(spec["scale"], list) else [spec["scale"]]
    if not scales or not all(isinstance(s, (int, float)) and not isinstance(s, bool) for s in scales):
        raise ctx.fail(where, f"quant scale must be a number or a list of numbers, got {spec['scale']!r}")
    # Scales are float32 in TFLite; store the float32 value so derived multipliers match it bit for bit.
    scale = np.atleast_1d(np.asarray(spec["scale"], dtype=np.float32)).astype(np.float64)
    zero_point = np.atleast_1d(np.asarray(spec["zero_point"]))
    if zero_point.dtype.kind not in "iu":
        raise ctx.fail(where, f"quant zero_point must be integers, got {spec['zero_point']!r}")
    axis = spec.get("axis")
    if axis is not None and not isinstance(axis, int):
        raise ctx.fail(where, f"quant axis must be an integer, got {axis!r}")
    return Quant(scale=scale, zero_point=zero_point.astype(np.int32), axis=axis)


def _data(ctx: _Ctx, where: str, spec, t: Tensor) -> np.ndarray:
    if isinstance(spec, dict) and "npz" in spec:
        if ctx.npz is None:
            raise ctx.fail(where, "data refers to an npz entry but the graph names no 'weights' file")
        key = spec["npz"]
        if key not in ctx.npz.files:
            raise ctx.fail(where, f"npz entry '{key}' not found in the weights file")
        raw = ctx.npz[key]
        if raw.dtype.kind not in "iuf":
            raise ctx.fail(where, f"npz entry '{key}' holds {raw.dtype} values, not numbers")
        if raw.shape != t.shape:
            raise ctx.fail(where, f"npz entry '{key}' has shape {list(raw.shape)}, the tensor {list(t.shape)}")
    else:
        try:
            raw = np.asarray(spec, dtype=np.float64)
        except (TypeError, ValueError):
            raise ctx.fail(where, "inline data must be a (nested) list of numbers") from None
        if raw.ndim > 1 and raw.shape != t.shape:    # a flat list is read in row-major order; a nested one must fit
            raise ctx.fail(where, f"inline data is nested as {list(raw.shape)}, the tensor is {list(t.shape)}")
    if raw.size != t.size:
        raise ctx.fail(where, f"data has {raw.size} values but shape {list(t.shape)} needs {t.size}")
    if t.dtype != "float32" and not np.all(np.equal(np.mod(raw, 1), 0)):
        raise ctx.fail(where, f"{t.dtype} data must be integers")
    info = np.iinfo(DTYPES[t.dtype]) if t.dtype != "float32" else None
    if info is not None and (raw.min() < info.min or raw.max() > info.max):
        raise ctx.fail(where, f"data values out of {t.dtype} range [{info.min}, {info.max}]")
    return raw.reshape(t.shape).astype(DTYPES[t.dtype])


def _activation(ctx: _Ctx, where: str, spec) -> Activation:
    if isinstance(spec, dict) and set(spec) == {"clamp"}:
        bounds = spec["clamp"]
        if (not isinstance(bounds, list) or len(bounds) != 2
                or not all(isinstance(b, (int, float)) for b in bounds) or bounds[0] >= bounds[1]):
            raise ctx.fail(where, f"clamp must be [low, high] with low < high, got {bounds!r}")
        return Activation("clamp", float(bounds[0]), float(bounds[1]))
    if spec in ACTIVATIONS and spec != "clamp":
        return Activation(spec)
    raise ctx.fail(where, f"unknown activation {spec!r}; use none, relu, relu6 or {{\"clamp\": [low, high]}}")


def _padding(ctx: _Ctx, where: str, spec, in_shape, kernel_hw, stride, dilation):
    if spec == "VALID":
        return (0, 0, 0, 0)
    if spec == "SAME":
        return (same_padding(in_shape[1], kernel_hw[0], stride[0], dilation[0])
                + same_padding(in_shape[2], kernel_hw[1], stride[1], dilation[1]))
    if isinstance(spec, list):
        pad = _ints(ctx, where, "padding", spec, 4)
        if min(pad) < 0:
            raise ctx.fail(where, f"explicit padding [top, bottom, left, right] must be >= 0, got {spec}")
        return pad
    raise ctx.fail(where, f"padding must be \"SAME\", \"VALID\" or [top, bottom, left, right], got {spec!r}")


def _simple_attrs(ctx: _Ctx, where: str, kind: str, spec: dict, activation: Activation, tensors, inputs):
    """Attributes of every op but the convolutions (None for those)."""
    if kind == "Add":
        return AddAttrs(activation=activation)
    if OPS[kind].kind == "pool":
        filt = _ints(ctx, where, "filter", spec.get("filter"), 2)
        stride = _ints(ctx, where, "stride", spec.get("stride", [1, 1]), 2)
        if min(filt) < 1 or min(stride) < 1:
            raise ctx.fail(where, f"filter and stride must be >= 1, got {list(filt)} and {list(stride)}")
        x = tensors[inputs[0]] if inputs else None
        if x is None or len(x.shape) != 4:
            raise ctx.fail(where, "expects one 4-D NHWC input")
        pad = _padding(ctx, where, spec.get("padding", "VALID"), x.shape, filt, stride, (1, 1))
        return PoolAttrs(filter=filt, stride=stride, pad=pad, activation=activation)
    if kind == "FullyConnected":
        return FullyConnectedAttrs(activation=activation)
    if kind == "Softmax":
        beta = spec.get("beta", 1.0)
        if not isinstance(beta, (int, float)) or beta <= 0:
            raise ctx.fail(where, f"beta must be a positive number, got {beta!r}")
        return SoftmaxAttrs(beta=float(np.float32(beta)))
    if kind == "Mean":
        axes = spec.get("axes", [1, 2])
        if (not isinstance(axes, list) or not axes
                or not all(isinstance(a, int) and not isinstance(a, bool) for a in axes)):
            raise ctx.fail(where, f"axes must be a non-empty list of integers, got {axes!r}")
        rank = len(tensors[inputs[0]].shape) if inputs else 4
        return MeanAttrs(keep_dims=bool(spec.get("keep_dims", True)), axes=tuple(sorted({a % rank for a in axes})))
    if kind in ("ResizeBilinear", "ResizeNearest"):
        flags = {key: spec.get(key, False) for key in ("align_corners", "half_pixel_centers")}
        if not all(isinstance(v, bool) for v in flags.values()):
            raise ctx.fail(where, f"align_corners and half_pixel_centers must be true or false, got {flags}")
        return ResizeAttrs(**flags)
    if kind == "TransposeConv2D":
        return _transpose_conv_attrs(ctx, where, spec, activation, tensors, inputs)
    if kind == "Pad":
        pads = spec.get("paddings")
        if not isinstance(pads, list) or not all(isinstance(p, list) and len(p) == 2 for p in pads):
            raise ctx.fail(where, f"paddings must be a list of [before, after] pairs, got {pads!r}")
        return PadAttrs(paddings=tuple(_ints(ctx, where, "paddings", p, 2) for p in pads))
    if kind == "Concatenation":
        axis = spec.get("axis", 3)
        rank = len(tensors[inputs[0]].shape) if inputs else 0
        if not isinstance(axis, int) or isinstance(axis, bool) or not -rank <= axis < max(rank, 1):
            raise ctx.fail(where, f"axis must be an integer in [{-rank}, {rank}) (negative counts from the end), "
                                  f"got {axis!r}")
        return ConcatAttrs(axis=axis % max(rank, 1))
    if kind == "Slice":
        rank = len(tensors[inputs[0]].shape) if inputs else 0
        begin = _ints(ctx, where, "begin", spec.get("begin"), rank)
        strides = _ints(ctx, where, "strides", spec.get("strides", [1] * rank), rank)
        return SliceAttrs(begin=begin, strides=strides)
    if kind == "Quantize":
        rounding = spec.get("rounding", "half_away")
        if rounding not in ("half_away", "half_even"):
            raise ctx.fail(where, f"rounding must be \"half_away\" (TFLite) or \"half_even\" (ONNX), got {rounding!r}")
        return QuantizeAttrs(rounding=rounding)
    if kind == "Mul":
        return MulAttrs(activation=activation)
    if kind == "LeakyRelu":
        alpha = spec.get("alpha", 0.2)
        if not isinstance(alpha, (int, float)) or isinstance(alpha, bool) or not np.isfinite(alpha):
            raise ctx.fail(where, f"alpha must be a number, got {alpha!r}")
        return LeakyReluAttrs(alpha=float(np.float32(alpha)))
    if OPS[kind].attrs is NoAttrs:
        return NoAttrs()
    return None


def _transpose_conv_attrs(ctx: _Ctx, where: str, spec: dict, activation: Activation, tensors, inputs):
    """padding "SAME" / "VALID" as TFLite's TRANSPOSE_CONV computes it from the output size, or explicit
    [top, bottom, left, right] cropped from the full (H - 1) * stride + K output."""
    stride = _ints(ctx, where, "stride", spec.get("stride", [1, 1]), 2)
    if min(stride) < 1:
        raise ctx.fail(where, f"stride must be >= 1, got {list(stride)}")
    if len(inputs) not in (2, 3):
        raise ctx.fail(where, "expects inputs [input, filter] or [input, filter, bias]")
    if "outputs" not in spec or not spec["outputs"] or spec["outputs"][0] not in tensors:
        raise ctx.fail(where, "needs its output tensor declared (its shape gives the output size)")
    x, w, y = tensors[inputs[0]], tensors[inputs[1]], tensors[spec["outputs"][0]]
    if len(x.shape) != 4 or len(w.shape) != 4 or len(y.shape) != 4:
        raise ctx.fail(where, f"input, filter [OC, KH, KW, IC] and output must be 4-D, got {list(x.shape)}, "
                              f"{list(w.shape)}, {list(y.shape)}")
    padding = spec.get("padding", "VALID")
    if isinstance(padding, list):
        pad = _ints(ctx, where, "padding", padding, 4)
    elif padding in ("SAME", "VALID"):
        pad = transpose_conv_crop(padding, x.shape[1:3], w.shape[1:3], y.shape[1:3], stride)
    else:
        raise ctx.fail(where, f"padding must be \"SAME\", \"VALID\" or [top, bottom, left, right], got {padding!r}")
    return TransposeConv2DAttrs(stride=stride, pad=pad, activation=activation)


def _op(ctx: _Ctx, i: int, spec, tensors: dict[str, Tensor]) -> Op:
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
        raise ctx.fail(f"op {i}", "expected an object with a string 'name'")
    kind = spec.get("type")
    where = f"op {i} '{spec['name']}' ({kind})"
    if kind not in OP_TYPES:
        raise ctx.fail(where, f"unsupported op type {kind!r}; supported: {', '.join(OP_TYPES)}")
    inputs, outputs = spec.get("inputs"), spec.get("outputs")
    for key, names in (("inputs", inputs), ("outputs", outputs)):
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ctx.fail(where, f"'{key}' must be a list of tensor names")
        for n in names:
            if n not in tensors:
                raise ctx.fail(where, f"{key[:-1]} tensor '{n}' is not declared in 'tensors'")
    activation = _activation(ctx, where, spec.get("activation", "none"))
    attrs = _simple_attrs(ctx, where, kind, spec, activation, tensors, inputs)
    if attrs is None:
        if len(inputs) not in (2, 3):
            raise ctx.fail(where, "expects inputs [input, filter] or [input, filter, bias]")
        stride = _ints(ctx, where, "stride", spec.get("stride", [1, 1]), 2)
        dilation = _ints(ctx, where, "dilation", spec.get("dilation", [1, 1]), 2)
        if min(stride) < 1:
            raise ctx.fail(where, f"stride must be >= 1, got {list(stride)}")
        if min(dilation) < 1:
            raise ctx.fail(where, f"dilation must be >= 1, got {list(dilation)}")
        multiplier = spec.get("depth_multiplier", 1)
        if kind == "Conv2D" and "depth_multiplier" in spec:
            raise ctx.fail(where, "depth_multiplier applies to DepthwiseConv2D only")
        if not isinstance(multiplier, int) or multiplier < 1:
            raise ctx.fail(where, f"depth_multiplier must be a positive integer, got {multiplier!r}")
        x, w = tensors[inputs[0]], tensors[inputs[1]]
        if len(x.shape) != 4 or len(w.shape) != 4:
            raise ctx.fail(where, f"input and filter must be 4-D (NHWC, [O,KH,KW,I]), got "
                                  f"{list(x.shape)} and {list(w.shape)}")
        pad = _padding(ctx, where, spec.get("padding", "VALID"), x.shape, w.shape[1:3], stride, dilation)
        attrs = Conv2DAttrs(stride=stride, dilation=dilation, pad=pad, depth_multiplier=multiplier,
                            activation=activation)
    return Op(index=i, name=spec["name"], type=kind, inputs=list(inputs), outputs=list(outputs), attrs=attrs)
