"""TVM backend: every op is a TE compute (compute*.py), scheduled with s_tir from a parameter
dict (knobs.py, schedules*.py) and lowered to one plain C99 function (lower.py, emit.py).

Same contract as the templates backend, for every op type of the IR: one Kernel per op whose source
holds the op's constant arrays, the TVM-emitted function (`static void <fn>_tvm(input, filter, bias,
[multiplier, shift | scale,] output)`) and the wrapper `static void <fn>(const T *restrict input,
T *restrict output)` (Add: `(a, b, output)`; Concatenation: `(input0, input1, ..., output)`) that the
library's run function calls.  Conv2D, DepthwiseConv2D and Add are built here; the glue ops and hybrid
Conv2D in glue.py.  The int8 parameters come from qparams.py, like every backend's, so the two roads are
interchangeable and bit-identical on int8.  A row-fused chain (row_fusion.py) takes row_kernels: each fused
layer built again on its one-row graphs (row_pipeline.py), one TVM build per instance, tensorized where
simd.py takes that shape.

TVM is imported only inside generate_kernels (and the modules it calls into).
"""
from __future__ import annotations

import json

import numpy as np

from ...errors import DwsError
from ...ir import OP_TYPES, Graph, Op
from ...ops import conv_kind
from ...qparams import add_qparams, conv_qparams, fold_input_offset, is_hybrid, onnx_requant_scales
from ...row_fusion import RowFusion
from ...targets import Target
from ..kernel import Kernel, kernel_name
from ..render import C_TYPES, c_array_body, comment_safe
from ..row_pipeline import RowKernels, fusion_kernels
from . import compute, knobs, schedules, simd, simd_glue
from .compute import ConvSpec
from .emit import lower_kernel
from .glue import glue_kernel, hybrid_kernel
from .glue_spatial import resize_kernel, transpose_conv_kernel

SUPPORTED_OPS = OP_TYPES
# op type -> schedule family of the glue ops (tvm_backend_glue.py)
GLUE_KINDS = {"AveragePool2D": "pool", "MaxPool2D": "pool", "Mean": "mean", "FullyConnected": "fully_connected",
              "Softmax": "softmax", "Pad": "pad", "Concatenation": "concat", "Quantize": "elementwise",
              "Dequantize": "elementwise", "Relu": "elementwise", "Relu6": "elementwise", "Reshape": "elementwise",
              "Mul": "binary", "Maximum": "binary", "Minimum": "binary", "PRelu": "binary",
              "HardSwish": "activation", "Logistic": "activation", "Tanh": "activation", "LeakyRelu": "activation", "Table": "activation",
              "Slice": "slice"}
# op type -> kernel kind of the spatial ops (glue_spatial.py)
SPATIAL_KINDS = {"ResizeBilinear": "resize", "ResizeNearest": "resize", "TransposeConv2D": "transpose_conv"}


def _op_dtype(graph: Graph, op: Op) -> str:
    return graph.tensor(op.inputs[0]).dtype


def kernel_kind(graph: Graph, op: Op) -> str:
    """Schedule family of an op: depthwise | pointwise | conv | add, or a glue family (GLUE_KINDS).
    Hybrid Conv2D (float32 input, int8 filter) is pointwise or conv like any Conv2D."""
    if op.type not in SUPPORTED_OPS or _op_dtype(graph, op) not in ("float32", "int8"):
        raise DwsError(f"{op.where()}: the tvm backend generates {', '.join(SUPPORTED_OPS)} in float32 and int8 "
                       f"only; use --backend templates for this graph")
    if op.type in GLUE_KINDS:
        return GLUE_KINDS[op.type]
    if op.type in SPATIAL_KINDS:
        return SPATIAL_KINDS[op.type]
    if op.type == "Add":   # broadcast or with a constant operand: the binary kernels (glue_elementwise.py)
        plain = all(not graph.tensor(n).is_const and graph.tensor(n).shape == graph.tensor(op.outputs[0]).shape
                    for n in op.inputs)
        return "add" if plain else "binary"
    return conv_kind(graph, op)


def _array(ctype: str, name: str, values, per_line: int) -> str:
    values = np.asarray(values).reshape(-1)
    return f"static const {ctype} {name}[{values.size}] = {{\n{c_array_body(values, per_line)}\n}};\n"


def _conv_constants(graph: Graph, op: Op, kind: str):
    """(spec, {suffix: (ctype, values)}) of a conv-like op."""
    x, w, y = graph.tensor(op.inputs[0]), graph.tensor(op.inputs[1]), graph.tensor(op.outputs[0])
    a = op.attrs
    oc = y.shape[3]
    if kind == "depthwise":
        filt = w.data.reshape(w.shape[1], w.shape[2], oc)            # [KH][KW][OC], TFLite's layout
    elif kind == "pointwise":
        filt = w.data.reshape(oc, -1)                                # [OC][C]
    else:
        filt = w.data                                                # [OC][KH][KW][C]
    bias = graph.tensor(op.inputs[2]).data if len(op.inputs) > 2 else np.zeros(oc, w.data.dtype)
    common = dict(kind=kind, dtype=x.dtype, in_shape=tuple(x.shape), out_shape=tuple(y.shape),
                  kernel=(w.shape[1], w.shape[2]), stride=tuple(a.stride), dilation=tuple(a.dilation),
                  pad=tuple(a.pad), multiplier=a.depth_multiplier if kind == "depthwise" else 1)
    if x.dtype != "int8":
        low, high = a.activation.bounds()
        spec = ConvSpec(**common, act_low=low, act_high=high)
        return spec, dict(filter=("float", filt), bias=("float", bias.astype(np.float32)))
    q = conv_qparams(graph, op)
    if a.requant != "onnx" and np.any(q.multiplier < 0):
        raise DwsError(f"{op.where()}: negative requantize multiplier")   # qparams never make one
    bias64, in_offset = fold_input_offset(graph, op, bias.astype(np.int64), q.input_offset)
    spec = ConvSpec(**common, input_offset=in_offset, output_offset=q.output_offset,
                    act_min=q.act_min, act_max=q.act_max, left_shift=bool(np.any(q.shift > 0)),
                    max_right=int(max(0, -int(q.shift.min()))), requant=a.requant)
    consts = dict(filter=("int8_t", filt), bias=("int32_t", bias64.astype(np.int32)))
    if a.requant == "onnx":
        return spec, dict(consts, scale=("float", onnx_requant_scales(graph, op)))
    return spec, dict(consts, multiplier=("int32_t", q.multiplier), shift=("int32_t", q.shift))


def _conv_kernel(graph: Graph, op: Op, kind: str, overrides: dict | None, lanes: int) -> Kernel:
    fn = kernel_name(op)
    spec, consts = _conv_constants(graph, op, kind)
    params = knobs.resolve(kind, op.where(), overrides, spec.kernel, spec.out_shape[3], spec.in_shape[3], lanes)
    func = compute.conv_func(spec)
    stages = compute.conv_stages(spec)
    if kind == "depthwise":
        func = schedules.scheduled(schedules.schedule_depthwise, func, params, stages, spec.padded, spec.kernel)
    else:
        func = schedules.scheduled(schedules.schedule_conv, func, params, stages, spec.padded,
                                   spec.kernel if kind == "conv" else None, spec.in_shape[3])
    body = lower_kernel(func, f"{fn}_tvm", op.where())
    dtype = spec.dtype
    ctype = C_TYPES[dtype]
    (kh, kw), (sh, sw), (dh, dw) = spec.kernel, spec.stride, spec.dilation
    _, h, w, c = spec.in_shape
    _, oh, ow, oc = spec.out_shape
    what = {"depthwise": f"depthwise {kh}x{kw}, multiplier {spec.multiplier}",
            "pointwise": "pointwise (1x1) convolution", "conv": f"convolution {kh}x{kw}"}[kind]
    header = (f"/*\n * op {op.index} '{comment_safe(op.name)}' ({op.type}), TVM backend\n"
              f" * {dtype} {what}, stride {sh}x{sw}, dilation {dh}x{dw}, padding (top, bottom, left, "
              f"right) {spec.pad}, activation {op.attrs.activation.label()}\n"
              f" * input [{h}][{w}][{c}] -> output [{oh}][{ow}][{oc}]\n"
              f" * schedule {json.dumps(params, sort_keys=True)}\n */\n")
    if dtype == "int8" and spec.act_min == spec.act_max:
        header = header.replace(" */\n", f" * activation range [{spec.act_min}, {spec.act_max}]: the output is "
                                          f"that one value (schedules.constant_output)\n */\n")
    per_line = {"filter": 16 if dtype == "int8" else 8, "bias": 8, "multiplier": 8, "shift": 16, "scale": 8}
    arrays = "".join(_array(t, f"{fn}_{k}", v, per_line[k]) for k, (t, v) in consts.items())
    args = ", ".join(["input"] + [f"{fn}_{k}" for k in consts] + ["output"])
    wrapper = (f"static void {fn}(const {ctype} *restrict input, {ctype} *restrict output)\n"
               f"{{\n    {fn}_tvm({args});\n}}\n")
    const_bytes = sum(np.asarray(v).nbytes for _, v in consts.values())
    return Kernel(op_index=op.index, fn=fn, source=f"{header}{arrays}\n{body}\n{wrapper}", const_bytes=const_bytes)


def _add_kernel(graph: Graph, op: Op, overrides: dict | None) -> Kernel:
    fn = kernel_name(op)
    size = graph.tensor(op.outputs[0]).size
    params = knobs.resolve("add", op.where(), overrides)
    low, high = op.attrs.activation.bounds()
    dtype = _op_dtype(graph, op)
    q = add_qparams(graph, op) if dtype == "int8" else None
    func = compute.add_func(size, dtype, q, low, high)
    func = schedules.scheduled(schedules.schedule_add, func, params, compute.ADD_STAGES[dtype])
    body = lower_kernel(func, f"{fn}_tvm", op.where())
    ctype = C_TYPES[dtype]
    header = (f"/*\n * op {op.index} '{comment_safe(op.name)}' (Add), TVM backend\n"
              f" * {dtype} elementwise add of {size} values, activation {op.attrs.activation.label()}\n"
              f" * schedule {json.dumps(params, sort_keys=True)}\n */\n")
    wrapper = (f"static void {fn}(const {ctype} *restrict a, const {ctype} *restrict b, {ctype} *restrict output)\n"
               f"{{\n    {fn}_tvm(a, b, output);\n}}\n")
    return Kernel(op_index=op.index, fn=fn, source=f"{header}{body}\n{wrapper}", const_bytes=0)


def schedule_kind(graph: Graph, op: Op, target: Target) -> str:
    """The knob family of op's kernel on `target` (knobs.KNOBS): kernel_kind, with the ISA appended where
    the layer is tensorized (simd.py)."""
    base = kernel_kind(graph, op)
    if base in GLUE_KINDS.values() or base == "add":
        return simd_glue.schedule_kind(graph, op, target, base)
    return simd.schedule_kind(graph, op, target, base)


def generate_kernels(graph: Graph, target: Target, schedules: dict | None = None) -> list[Kernel]:
    """One Kernel per op, like templates.generate_kernels.  `schedules` maps op index -> schedule
    parameter overrides (see knobs.py); missing ops and knobs take the defaults.  int8 Conv2D and
    DepthwiseConv2D are tensorized with the target's micro-kernels where they apply (simd.py); elsewhere the
    convolutions' default channel tiles follow the target's vector width (vector_lanes)."""
    lanes = vector_lanes(target)
    try:
        import tvm  # noqa: F401
    except ImportError:
        raise DwsError("the tvm backend needs apache-tvm: pip install 'dwscodegen[tvm]'") from None
    schedules = schedules or {}
    unknown = sorted(set(schedules) - {op.index for op in graph.ops})
    if unknown:
        raise DwsError(f"schedules given for op indices {unknown}, which {graph.name} does not have")
    kinds = [kernel_kind(graph, op) for op in graph.ops]   # unsupported ops fail before any lowering
    kernels = []
    for op, kind in zip(graph.ops, kinds):
        overrides = schedules.get(op.index)
        if kind == "add":
            tensorized = simd_glue.tensorized_kernel(graph, op, target, kind, overrides)
            kernels.append(tensorized or _add_kernel(graph, op, overrides))
        elif kind in GLUE_KINDS.values():
            tensorized = simd_glue.tensorized_kernel(graph, op, target, kind, overrides)
            kernels.append(tensorized or glue_kernel(graph, op, kind, overrides, target))
        elif kind == "resize":
            kernels.append(resize_kernel(graph, op, overrides))
        elif kind == "transpose_conv":
            kernels.append(transpose_conv_kernel(graph, op, overrides))
        elif is_hybrid(graph, op):
            kernels.append(hybrid_kernel(graph, op, kind, overrides, lanes))
        else:
            tensorized = simd.tensorized_kernel(graph, op, target, kind, overrides)
            kernels.append(tensorized or _conv_kernel(graph, op, kind, overrides, lanes))
    return kernels


def row_kernels(graph: Graph, target: Target, fusion: RowFusion, schedules: dict | None = None) -> RowKernels:
    """The kernels of a row fusion (row_pipeline.py), each this road's kernel of the one-row graph: tensorized
    where simd.py takes that shape. A layer's tuned knobs apply where the instance has the layer's knob family
    (schedule_kind) and build on its shape; otherwise the instance takes the defaults."""
    def one(g: Graph) -> Kernel:
        op = g.ops[0]
        overrides = (schedules or {}).get(op.index)
        if overrides and schedule_kind(g, op, target) == schedule_kind(graph, graph.ops[op.index], target):
            try:
                return generate_kernels(g, target, {op.index: overrides})[0]
            except DwsError:   # e.g. a pixel tile whose patches exceed the stack on this shape
                pass
        return generate_kernels(g, target)[0]
    return fusion_kernels(graph, fusion, one)


def vector_lanes(target: Target) -> int:
    """32-bit lanes of the target's vectors that gcc may auto-vectorize the emitted C into: 16 with AVX-512,
    8 with AVX2, 0 elsewhere (the Cortex-M targets keep the tiles measured under QEMU)."""
    return 16 if "avx512" in target.features else 8 if "avx2" in target.features else 0
