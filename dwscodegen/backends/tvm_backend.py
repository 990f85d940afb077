"""TVM backend: every op is a TE compute (tvm_compute*.py), scheduled with s_tir from a parameter
dict (tvm_schedules*.py) and lowered to one plain C99 function (tvm_lower.py).

Same contract as the templates backend, for every op type of the IR: one Kernel per op whose source
holds the op's constant arrays, the TVM-emitted function (`static void <fn>_tvm(input, filter, bias,
[multiplier, shift | scale,] output)`) and the wrapper `static void <fn>(const T *restrict input,
T *restrict output)` (Add: `(a, b, output)`; Concatenation: `(input0, input1, ..., output)`) that the
library's run function calls.  Conv2D, DepthwiseConv2D and Add are built here; the glue ops and hybrid
Conv2D in tvm_backend_glue.py.  The int8 parameters come from qparams.py, like every backend's, so
the two roads are interchangeable and bit-identical on int8.

TVM is imported only inside generate_kernels (and the modules it calls into).
"""
from __future__ import annotations

import json
import re

import numpy as np

from ..errors import DwsError
from ..ir import OP_TYPES, Graph, Op
from ..qparams import add_qparams, conv_qparams
from ..qparams import is_hybrid, onnx_requant_scales
from ..targets import Target
from .kernel import Kernel
from .render import C_TYPES, c_array_body
from .templates import kernel_name

MAX_STACK_BYTES = 256


SUPPORTED_OPS = OP_TYPES
# op type -> schedule family of the glue ops (tvm_backend_glue.py)
GLUE_KINDS = {"AveragePool2D": "pool", "MaxPool2D": "pool", "Mean": "mean", "FullyConnected": "fully_connected",
              "Softmax": "softmax", "Pad": "pad", "Concatenation": "concat", "Quantize": "elementwise",
              "Dequantize": "elementwise", "Relu": "elementwise", "Relu6": "elementwise", "Reshape": "elementwise"}


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
    if op.type == "Add":
        return "add"
    if op.type == "DepthwiseConv2D":
        return "depthwise"
    w = graph.tensor(op.inputs[1])
    return "pointwise" if w.shape[1:3] == (1, 1) and op.attrs.pad == (0, 0, 0, 0) else "conv"


def _array(ctype: str, name: str, values, per_line: int) -> str:
    values = np.asarray(values).reshape(-1)
    return f"static const {ctype} {name}[{values.size}] = {{\n{c_array_body(values, per_line)}\n}};\n"


def _activation_label(op: Op) -> str:
    act = op.attrs.activation
    return f"clamp [{act.low:g}, {act.high:g}]" if act.kind == "clamp" else act.kind


def _conv_constants(graph: Graph, op: Op, kind: str):
    """(spec, {suffix: (ctype, values)}) of a conv-like op."""
    from .tvm_compute import ConvSpec
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
    bias64 = bias.astype(np.int64)
    in_offset = q.input_offset
    if a.pad == (0, 0, 0, 0) and in_offset:
        # Every tap reads a real input: sum((x + off) * w) = sum(x * w) + off * sum(w) per channel.
        per_channel_w = (w.data.reshape(-1, oc).astype(np.int64).sum(axis=0) if kind == "depthwise"
                         else w.data.reshape(oc, -1).astype(np.int64).sum(axis=1))
        folded = bias64 + in_offset * per_channel_w
        if np.abs(folded).max() < 2**31:
            bias64, in_offset = folded, 0
    spec = ConvSpec(**common, input_offset=in_offset, output_offset=q.output_offset,
                    act_min=q.act_min, act_max=q.act_max, left_shift=bool(np.any(q.shift > 0)),
                    max_right=int(max(0, -int(q.shift.min()))), requant=a.requant)
    consts = dict(filter=("int8_t", filt), bias=("int32_t", bias64.astype(np.int32)))
    if a.requant == "onnx":
        return spec, dict(consts, scale=("float", onnx_requant_scales(graph, op)))
    return spec, dict(consts, multiplier=("int32_t", q.multiplier), shift=("int32_t", q.shift))


_SSA_NAME = re.compile(r"\bv_(?:_\d+)?\b")
_SSA_DEF = re.compile(r"^\s*[\w ]+ (v_(?:_\d+)?) = (.*);$")
_STORE = re.compile(r"^\s*(\w+)\[[^\]]*\] = ")


def stale_ssa_use(body: str) -> str | None:
    """The first line of TVM-emitted C that reuses a stale cached value, or None.

    TVM's C code generator prints each min/max operand once as `T v_N = <text>;` and reuses v_N
    wherever the same <text> is printed again in a scope where v_N is visible, without checking
    whether a buffer the text reads was stored to in between (a scalar temporary rewritten by the
    next unrolled copy).  Flags any use of v_N after a store to a buffer its definition reads, and
    any use inside a loop that starts after the definition and stores to such a buffer."""
    lines = body.splitlines()
    written = {m.group(1) for line in lines if (m := _STORE.match(line))}
    defs: dict[str, list] = {}                   # name -> [buffers read (temporaries only), stale]
    for line in lines:
        d = _SSA_DEF.match(line)
        used = _SSA_NAME.findall(d.group(2) if d else line)
        if any(defs.get(n, [set(), False])[1] for n in used):
            return line.strip()
        if d:
            reads = set(re.findall(r"\b(\w+)\[", d.group(2))) & written
            for n in used:
                reads |= defs.get(n, [set()])[0]
            defs[d.group(1)] = [reads, False]
            continue
        store = _STORE.match(line)
        for entry in defs.values():
            if entry[0] and ((store and store.group(1) in entry[0]) or re.match(r"\s*for \(", line)):
                entry[1] = True
    return None


def _lower(func, name: str, where: str) -> str:
    from .tvm_lower import prim_func_to_c
    try:
        # Every kernel's output is its last parameter (te.create_prim_func order).
        text = prim_func_to_c(func, name, with_includes=False, max_stack_bytes=MAX_STACK_BYTES,
                              outputs=(len(func.params) - 1,))
    except DwsError as exc:
        raise DwsError(f"{where}: {exc}") from None
    if re.search(r"\b(bool|true|false)\b|#include", text):
        raise DwsError(f"{where}: TVM emitted C that needs headers beyond <stdint.h>")
    stale = stale_ssa_use(text)
    if stale:
        raise DwsError(f"{where}: this schedule makes TVM's C code generator reuse a stale cached value "
                       f"({stale!r}); choose other schedule parameters")
    return "static " + text


def _conv_kernel(graph: Graph, op: Op, kind: str, overrides: dict | None) -> Kernel:
    from . import tvm_compute, tvm_schedules
    fn = kernel_name(op)
    spec, consts = _conv_constants(graph, op, kind)
    params = tvm_schedules.resolve(kind, op.where(), overrides, spec.kernel, spec.out_shape[3], spec.in_shape[3])
    func = tvm_compute.conv_func(spec)
    stages = tvm_compute.conv_stages(spec)
    if kind == "depthwise":
        func = tvm_schedules.schedule_depthwise(func, params, stages, spec.padded, spec.kernel)
    else:
        func = tvm_schedules.schedule_conv(func, params, stages, spec.padded,
                                           spec.kernel if kind == "conv" else None, spec.in_shape[3])
    body = _lower(func, f"{fn}_tvm", op.where())
    dtype = spec.dtype
    ctype = C_TYPES[dtype]
    (kh, kw), (sh, sw), (dh, dw) = spec.kernel, spec.stride, spec.dilation
    _, h, w, c = spec.in_shape
    _, oh, ow, oc = spec.out_shape
    what = {"depthwise": f"depthwise {kh}x{kw}, multiplier {spec.multiplier}",
            "pointwise": "pointwise (1x1) convolution", "conv": f"convolution {kh}x{kw}"}[kind]
    header = (f"/*\n * op {op.index} '{op.name}' ({op.type}), TVM backend\n"
              f" * {dtype} {what}, stride {sh}x{sw}, dilation {dh}x{dw}, padding (top, bottom, left, "
              f"right) {spec.pad}, activation {_activation_label(op)}\n"
              f" * input [{h}][{w}][{c}] -> output [{oh}][{ow}][{oc}]\n"
              f" * schedule {json.dumps(params, sort_keys=True)}\n */\n")
    per_line = {"filter": 16 if dtype == "int8" else 8, "bias": 8, "multiplier": 8, "shift": 16, "scale": 8}
    arrays = "".join(_array(t, f"{fn}_{k}", v, per_line[k]) for k, (t, v) in consts.items())
    args = ", ".join(["input"] + [f"{fn}_{k}" for k in consts] + ["output"])
    wrapper = (f"static void {fn}(const {ctype} *restrict input, {ctype} *restrict output)\n"
               f"{{\n    {fn}_tvm({args});\n}}\n")
    const_bytes = sum(np.asarray(v).nbytes for _, v in consts.values())
    return Kernel(op_index=op.index, fn=fn, source=f"{header}{arrays}\n{body}\n{wrapper}", const_bytes=const_bytes)


def _add_kernel(graph: Graph, op: Op, overrides: dict | None) -> Kernel:
    from . import tvm_compute, tvm_schedules
    fn = kernel_name(op)
    size = graph.tensor(op.outputs[0]).size
    params = tvm_schedules.resolve("add", op.where(), overrides)
    low, high = op.attrs.activation.bounds()
    dtype = _op_dtype(graph, op)
    q = add_qparams(graph, op) if dtype == "int8" else None
    func = tvm_compute.add_func(size, dtype, q, low, high)
    func = tvm_schedules.schedule_add(func, params, tvm_compute.ADD_STAGES[dtype])
    body = _lower(func, f"{fn}_tvm", op.where())
    ctype = C_TYPES[dtype]
    header = (f"/*\n * op {op.index} '{op.name}' (Add), TVM backend\n"
              f" * {dtype} elementwise add of {size} values, activation {_activation_label(op)}\n"
              f" * schedule {json.dumps(params, sort_keys=True)}\n */\n")
    wrapper = (f"static void {fn}(const {ctype} *restrict a, const {ctype} *restrict b, {ctype} *restrict output)\n"
               f"{{\n    {fn}_tvm(a, b, output);\n}}\n")
    return Kernel(op_index=op.index, fn=fn, source=f"{header}{body}\n{wrapper}", const_bytes=0)


def generate_kernels(graph: Graph, target: Target, schedules: dict | None = None) -> list[Kernel]:
    """One Kernel per op, like templates.generate_kernels.  `schedules` maps op index -> schedule
    parameter overrides (see tvm_schedules.DEFAULTS); missing ops and knobs take the defaults."""
    del target   # portable C: the same kernels for every target
    try:
        import tvm  # noqa: F401
    except ImportError:
        raise DwsError("the tvm backend needs apache-tvm: pip install 'dwscodegen[tvm]'") from None
    schedules = schedules or {}
    unknown = sorted(set(schedules) - {op.index for op in graph.ops})
    if unknown:
        raise DwsError(f"schedules given for op indices {unknown}, which {graph.name} does not have")
    kinds = [kernel_kind(graph, op) for op in graph.ops]   # unsupported ops fail before any lowering
    from .tvm_backend_glue import glue_kernel, hybrid_kernel
    kernels = []
    for op, kind in zip(graph.ops, kinds):
        overrides = schedules.get(op.index)
        if kind == "add":
            kernels.append(_add_kernel(graph, op, overrides))
        elif kind in GLUE_KINDS.values():
            kernels.append(glue_kernel(graph, op, kind, overrides))
        elif is_hybrid(graph, op):
            kernels.append(hybrid_kernel(graph, op, kind, overrides))
        else:
            kernels.append(_conv_kernel(graph, op, kind, overrides))
    return kernels
