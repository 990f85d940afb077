"""Semantic checks of a Graph, run once after import: structure, shapes, dtypes, quantization.

Every message names the op or tensor and says what was expected, so a user can fix the model file.
"""
from __future__ import annotations



from .errors import DwsError
from .ir import DTYPES, OP_TYPES, Conv2DAttrs, Graph, Op, Tensor, conv_output_hw
from .ops import OPS, io_dtypes
from .validate_limits import check_activation_bounds, check_limits
from .validate_ops import check_activation, check_binary, check_resize, check_table, check_transpose_conv
from .validate_tensors import check_bias, check_filter_quant, check_quant_values, same_quant, single_input


def validate(graph: Graph) -> Graph:
    src = graph.source or graph.name

    def fail(what: str) -> DwsError:
        return DwsError(f"{src}: {what}")

    _check_structure(graph, fail)
    check_limits(graph, fail)
    for t in graph.activation_tensors():
        _check_activation_tensor(t, fail)
    checks = {"Add": check_binary, "Conv2D": _check_conv, "DepthwiseConv2D": _check_conv,
              "AveragePool2D": _check_pool, "MaxPool2D": _check_pool, "FullyConnected": _check_fully_connected,
              "Softmax": _check_softmax, "Reshape": _check_reshape, "Mean": _check_mean, "Pad": _check_pad,
              "Concatenation": _check_concat, "Quantize": _check_quantize, "Dequantize": _check_quantize,
              "Relu": _check_relu, "Relu6": _check_relu,
              "ResizeBilinear": check_resize, "ResizeNearest": check_resize, "TransposeConv2D": check_transpose_conv,
              "Mul": check_binary, "Maximum": check_binary, "Minimum": check_binary, "PRelu": check_binary,
              "HardSwish": check_activation, "Logistic": check_activation, "Tanh": check_activation,
              "LeakyRelu": check_activation, "Table": check_table,
              "Slice": _check_slice}
    for op in graph.ops:
        _check_op_facts(op, fail)
        dtype = graph.op_dtype(op)
        _check_io_dtypes(graph, op, fail)
        checks[op.type](graph, op, dtype, fail)
        check_activation_bounds(graph, op, dtype, fail)
    return graph


def _check_op_facts(op: Op, fail) -> None:
    """What the op table (ops.OPS) says of every op: a known type, its number of inputs, its attrs class."""
    if op.type not in OP_TYPES:
        raise fail(f"{op.where()}: op type {op.type!r} is not supported; supported: {', '.join(OP_TYPES)}")
    f = OPS[op.type]
    low, high = f.inputs
    if not low <= len(op.inputs) <= high:
        count = f"{low}" if low == high else f"{low} to {high}" if high < 1 << 16 else f"at least {low}"
        raise fail(f"{op.where()}: expects {count} input(s), got {len(op.inputs)}")
    if not isinstance(op.attrs, f.attrs):
        raise fail(f"{op.where()}: attributes are {type(op.attrs).__name__}, expected {f.attrs.__name__}")


def _check_io_dtypes(graph: Graph, op: Op, fail) -> None:
    """Activations of an op share its dtype; only the ops the table says convert (Quantize float32 -> int8,
    Dequantize) change it."""
    in_dtype, out_dtype = io_dtypes(graph, op)
    for name in op.inputs:
        t = graph.tensor(name)
        if t.dtype not in DTYPES:
            raise fail(f"{op.where()}: input '{name}' is {t.dtype}, which only an import pass may take (float16 "
                       "weights behind a DEQUANTIZE are folded to float32); other ops need float32, int8 or int32")
        if not t.is_const and t.dtype != in_dtype:
            raise fail(f"{op.where()}: input '{name}' is {t.dtype} but the op computes in {in_dtype}")
    y = graph.tensor(op.outputs[0])
    if y.dtype != out_dtype:
        raise fail(f"{op.where()}: output '{y.name}' is {y.dtype}; expected {out_dtype} (only Quantize and "
                   "Dequantize change an activation's dtype)")


def _check_structure(graph: Graph, fail) -> None:
    names = set()
    for op in graph.ops:
        if op.name in names:
            raise fail(f"{op.where()}: duplicate op name")
        names.add(op.name)
    available = set(graph.inputs) | {n for n, t in graph.tensors.items() if t.is_const}
    for name in graph.inputs:
        if name not in graph.tensors:
            raise fail(f"graph input '{name}' is not declared in 'tensors'")
        if graph.tensors[name].is_const:
            raise fail(f"graph input '{name}' has constant data; inputs are supplied at run time")
    for op in graph.ops:
        for name in op.inputs:
            if name not in available:
                raise fail(f"{op.where()}: input '{name}' is neither a graph input, a constant, nor the "
                           "output of an earlier op (ops must be listed in execution order)")
        if len(op.outputs) != 1:
            raise fail(f"{op.where()}: expects exactly one output, got {len(op.outputs)}")
        out = op.outputs[0]
        if out in available:
            raise fail(f"{op.where()}: output '{out}' is already defined (a graph input, constant or "
                       "earlier op output); every tensor has one producer")
        available.add(out)
    for name in graph.outputs:
        if name not in graph.tensors:
            raise fail(f"graph output '{name}' is not declared in 'tensors'")
        if name in graph.inputs or graph.tensors[name].is_const:
            raise fail(f"graph output '{name}' must be produced by an op")
        if name not in available:
            raise fail(f"graph output '{name}' is not produced by any op")


def _check_activation_tensor(t: Tensor, fail) -> None:
    if t.dtype not in ("float32", "int8"):
        raise fail(f"tensor '{t.name}' is {t.dtype}; activations must be float32 or int8")
    if t.dtype == "int8":
        if t.quant is None or t.quant.per_channel or len(t.quant.scale) != 1:
            raise fail(f"tensor '{t.name}': int8 activations need per-tensor quant {{scale, zero_point}}")
        check_quant_values(t, fail)


def _check_conv(graph: Graph, op: Op, dtype: str, fail) -> None:
    x, w = graph.tensor(op.inputs[0]), graph.tensor(op.inputs[1])
    y = graph.tensor(op.outputs[0])
    where = op.where()
    if not w.is_const:
        raise fail(f"{where}: filter '{w.name}' must be a constant tensor with data")
    _, kh, kw, _ = w.shape
    in_c = x.shape[3]
    if op.type == "DepthwiseConv2D":
        out_c = in_c * op.attrs.depth_multiplier
        expected = (1, kh, kw, out_c)
        if w.shape != expected:
            raise fail(f"{where}: filter shape {list(w.shape)} does not match input channels {in_c} x "
                       f"multiplier {op.attrs.depth_multiplier} (expected {list(expected)})")
        channel_axis = 3
    else:
        out_c = w.shape[0]
        if w.shape[3] != in_c:
            raise fail(f"{where}: filter shape {list(w.shape)} has {w.shape[3]} input channels but input "
                       f"'{x.name}' has {in_c}")
        channel_axis = 0
    oh, ow = conv_output_hw(x.shape[1:3], (kh, kw), op.attrs)
    if oh < 1 or ow < 1:
        raise fail(f"{where}: kernel {kh}x{kw} (dilation {list(op.attrs.dilation)}) does not fit input "
                   f"{x.shape[1]}x{x.shape[2]} with padding {list(op.attrs.pad)}")
    expected_out = (x.shape[0], oh, ow, out_c)
    if y.shape != expected_out:
        raise fail(f"{where}: output '{y.name}' has shape {list(y.shape)} but the op computes "
                   f"{list(expected_out)}")
    check_bias(graph, op, dtype, out_c, fail)
    hybrid = dtype == "float32" and w.dtype == "int8"
    if w.dtype != dtype and not hybrid:
        raise fail(f"{where}: filter '{w.name}' is {w.dtype} but the op's activations are {dtype} (only an int8 "
                   "filter with float32 activations, TFLite's hybrid quantization, may differ)")
    if w.dtype == "int8":
        check_filter_quant(w, channel_axis, out_c, where, fail)


def _check_pool(graph: Graph, op: Op, dtype: str, fail) -> None:
    x, y = single_input(graph, op, fail)
    a = op.attrs
    if len(x.shape) != 4:
        raise fail(f"{op.where()}: input must be 4-D NHWC, got {list(x.shape)}")
    if min(a.filter) < 1 or min(a.stride) < 1:
        raise fail(f"{op.where()}: filter {list(a.filter)} and stride {list(a.stride)} must be >= 1")
    oh, ow = conv_output_hw(x.shape[1:3], a.filter, Conv2DAttrs(stride=a.stride, pad=a.pad))
    expected = (x.shape[0], oh, ow, x.shape[3])
    if y.shape != expected:
        raise fail(f"{op.where()}: output '{y.name}' has shape {list(y.shape)} but the op computes {list(expected)}")
    if dtype == "int8":
        same_quant(op, x, y, fail)


def _check_fully_connected(graph: Graph, op: Op, dtype: str, fail) -> None:
    where = op.where()
    if len(op.inputs) not in (2, 3):
        raise fail(f"{where}: expects inputs [input, weights] or [input, weights, bias]")
    x, w, y = graph.tensor(op.inputs[0]), graph.tensor(op.inputs[1]), graph.tensor(op.outputs[0])
    if not w.is_const or len(w.shape) != 2:
        raise fail(f"{where}: weights '{w.name}' must be a constant [outputs, inputs] matrix, got {list(w.shape)}")
    units, depth = w.shape
    if x.size % depth:
        raise fail(f"{where}: input '{x.name}' {list(x.shape)} has {x.size} values, not a multiple of the "
                   f"weights' input size {depth}")
    if y.size != x.size // depth * units or y.shape[-1] != units:
        raise fail(f"{where}: output '{y.name}' has shape {list(y.shape)}; expected [{x.size // depth}, {units}]")
    if len(op.inputs) == 3:
        b = graph.tensor(op.inputs[2])
        bias_dtype = "int32" if dtype == "int8" else "float32"
        if not b.is_const or b.shape != (units,) or b.dtype != bias_dtype:
            raise fail(f"{where}: bias '{b.name}' must be a constant {bias_dtype} tensor of shape [{units}]")
    if w.dtype != dtype:
        raise fail(f"{where}: weights '{w.name}' are {w.dtype} but the op's activations are {dtype}")
    if dtype == "int8":
        check_filter_quant(w, 0, units, where, fail)


def _check_softmax(graph: Graph, op: Op, dtype: str, fail) -> None:
    x, y = single_input(graph, op, fail)
    if x.shape != y.shape:
        raise fail(f"{op.where()}: output shape {list(y.shape)} must equal input shape {list(x.shape)}")
    if dtype == "int8" and (abs(y.quant.scale[0] - 1 / 256) > 1e-12 or y.quant.zero_point[0] != -128):
        raise fail(f"{op.where()}: int8 softmax output must have scale 1/256 and zero point -128 (TFLite's "
                   f"requirement), got {y.quant.scale[0]:g} and {y.quant.zero_point[0]}")


def _check_reshape(graph: Graph, op: Op, dtype: str, fail) -> None:
    x, y = single_input(graph, op, fail)
    if x.size != y.size:
        raise fail(f"{op.where()}: cannot reshape {list(x.shape)} ({x.size} values) to {list(y.shape)} "
                   f"({y.size} values)")
    if dtype == "int8":
        same_quant(op, x, y, fail)


def _check_mean(graph: Graph, op: Op, dtype: str, fail) -> None:
    x, y = single_input(graph, op, fail)
    axes = tuple(op.attrs.axes)
    if (not axes or list(axes) != list(range(axes[0], axes[-1] + 1)) or axes[0] < 0
            or axes[-1] >= len(x.shape)):
        raise fail(f"{op.where()}: Mean axes {list(axes)} must be ascending, adjacent dimensions of the "
                   f"{len(x.shape)}-D input (e.g. [1, 2], H and W of NHWC); other sets of axes are not supported")
    kept = [1 if i in axes else d for i, d in enumerate(x.shape)]
    expected = tuple(kept if op.attrs.keep_dims else [d for i, d in enumerate(x.shape) if i not in axes]) or (1,)
    if y.shape != expected:
        raise fail(f"{op.where()}: output '{y.name}' has shape {list(y.shape)} but the op computes {list(expected)}")


def _check_pad(graph: Graph, op: Op, dtype: str, fail) -> None:
    x, y = single_input(graph, op, fail)
    pads = op.attrs.paddings
    if len(pads) != len(x.shape) or any(len(p) != 2 or min(p) < 0 for p in pads):
        raise fail(f"{op.where()}: paddings must be [before, after] >= 0 for each of the {len(x.shape)} "
                   f"dimensions, got {[list(p) for p in pads]}")
    expected = tuple(d + a + b for d, (a, b) in zip(x.shape, pads))
    if y.shape != expected:
        raise fail(f"{op.where()}: output '{y.name}' has shape {list(y.shape)} but the op computes {list(expected)}")
    if dtype == "int8":
        same_quant(op, x, y, fail)


def _check_concat(graph: Graph, op: Op, dtype: str, fail) -> None:
    y = graph.tensor(op.outputs[0])
    xs = [graph.tensor(n) for n in op.inputs]
    axis = op.attrs.axis
    if not 0 <= axis < len(y.shape):
        raise fail(f"{op.where()}: axis {axis} is out of range for rank {len(y.shape)}")
    for x in xs:
        if x.is_const or len(x.shape) != len(y.shape) or any(
                a != b for i, (a, b) in enumerate(zip(x.shape, y.shape)) if i != axis):
            raise fail(f"{op.where()}: input '{x.name}' {list(x.shape)} does not concatenate into "
                       f"{list(y.shape)} along axis {axis}")
    if sum(x.shape[axis] for x in xs) != y.shape[axis]:
        raise fail(f"{op.where()}: inputs add up to {sum(x.shape[axis] for x in xs)} along axis {axis}, output "
                   f"has {y.shape[axis]}")


def _check_slice(graph: Graph, op: Op, dtype: str, fail) -> None:
    x, y = single_input(graph, op, fail)
    a = op.attrs
    if not len(a.begin) == len(a.strides) == len(y.shape) == len(x.shape):
        raise fail(f"{op.where()}: begin {list(a.begin)}, strides {list(a.strides)} and output {list(y.shape)} need "
                   f"one entry per dimension of the input {list(x.shape)}")
    for d, (n, begin, stride, size) in enumerate(zip(x.shape, a.begin, a.strides, y.shape)):
        if stride == 0 or not (0 <= begin < n and 0 <= begin + (size - 1) * stride < n):
            raise fail(f"{op.where()}: dimension {d}: {size} value(s) from index {begin} in steps of {stride} "
                       f"leave the input's range [0, {n})")
    if dtype == "int8":
        same_quant(op, x, y, fail)


def _check_quantize(graph: Graph, op: Op, dtype: str, fail) -> None:
    x, y = single_input(graph, op, fail)
    if x.shape != y.shape:
        raise fail(f"{op.where()}: output shape {list(y.shape)} must equal input shape {list(x.shape)}")
    if op.type == "Quantize" and getattr(op.attrs, "rounding", None) not in ("half_away", "half_even"):
        raise fail(f"{op.where()}: rounding must be half_away (TFLite) or half_even (ONNX), got {op.attrs!r}")


def _check_relu(graph: Graph, op: Op, dtype: str, fail) -> None:
    _check_quantize(graph, op, dtype, fail)


