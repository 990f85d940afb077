"""TVM backend kernels of the glue ops and of hybrid Conv2D: constants, compute, schedule, lowering and
the wrapper with the library's calling convention (one const pointer per non-constant input, then the
output), as tvm_backend does for Conv2D / DepthwiseConv2D / Add.
"""
from __future__ import annotations

import json

import numpy as np

from ... import qparams as qp
from ...errors import DwsError
from ...ir import Graph, Op
from ...ops import touches_int8
from ...qparams import onnx_requant_scales
from ...targets import Target
from ..kernel import Kernel, kernel_name
from ..render import C_TYPES, c_array_body, comment_safe
from . import compute_glue as cg
from . import knobs, simd_fc
from . import schedules as ts
from . import schedules_glue as sg
from .compute import ConvSpec
from .compute_hybrid import HYBRID_STAGES, hybrid_conv_func
from .compute_softmax import EXP_TABLE, softmax_func
from .emit import lower_kernel
from .glue_elementwise import KINDS as ELEMENTWISE_KINDS
from .glue_elementwise import elementwise_kernel
from .schedules_glue import schedule_hybrid_input

# per op type: the word in the header comment
WHAT = {"AveragePool2D": "average pool", "MaxPool2D": "max pool", "Mean": "mean over H, W",
        "FullyConnected": "fully connected", "Softmax": "softmax over the last axis", "Pad": "constant pad",
        "Concatenation": "concatenation", "Quantize": "quantize", "Dequantize": "dequantize", "Relu": "relu",
        "Relu6": "relu6", "Reshape": "reshape (a copy)", "Slice": "slice"}


def _values(ctype: str, values, per_line: int) -> str:
    values = np.asarray(values).reshape(-1)
    if ctype == "double":   # shortest repr round-trips a double exactly
        items = [repr(float(v)) for v in values]
        return ",\n".join("    " + ", ".join(items[i:i + per_line]) for i in range(0, len(items), per_line))
    return c_array_body(values, per_line)


def _emit(graph: Graph, op: Op, body: str, consts: dict, args: list[str], params: dict, detail: str,
          extra: str = "") -> Kernel:
    """consts: suffix -> (ctype, values); args: the TVM function's arguments in order, where a const
    suffix names its array and anything else is a wrapper parameter or a name defined in `extra`."""
    fn = kernel_name(op)
    out = graph.tensor(op.outputs[0])
    inputs = [n for n in op.inputs if not graph.tensor(n).is_const]
    names = ["input"] if len(inputs) == 1 else [f"input{k}" for k in range(len(inputs))]
    header = (f"/*\n * op {op.index} '{comment_safe(op.name)}' ({op.type}), TVM backend\n * {detail}\n"
              f" * input {' + '.join(str(list(graph.tensor(n).shape)) for n in inputs)} -> output {list(out.shape)}\n"
              f" * schedule {json.dumps(params, sort_keys=True)}\n */\n")
    arrays = "".join(f"static const {t} {fn}_{k}[{np.asarray(v).size}] = {{\n{_values(t, v, 8)}\n}};\n"
                     for k, (t, v) in consts.items())
    call = ", ".join(f"{fn}_{a}" if a in consts else a for a in args)
    decl = ", ".join([f"const {C_TYPES[graph.tensor(n).dtype]} *restrict {p}" for n, p in zip(inputs, names)]
                     + [f"{C_TYPES[out.dtype]} *restrict output"])
    wrapper = f"static void {fn}({decl})\n{{\n    {fn}_tvm({call});\n}}\n"
    const_bytes = sum(np.asarray(v).nbytes for _, v in consts.values())
    return Kernel(op_index=op.index, fn=fn, source=f"{header}{arrays}{extra}\n{body}\n{wrapper}",
                  const_bytes=const_bytes)


emit_kernel = _emit   # the same assembly for the spatial ops' kernels (glue_spatial.py)


def glue_kernel(graph: Graph, op: Op, kind: str, overrides: dict | None, target: Target | None = None) -> Kernel:
    """target: where int8 FullyConnected may be tensorized (simd_fc.py); None: the portable schedules only."""
    if kind in ELEMENTWISE_KINDS:
        return elementwise_kernel(graph, op, kind, overrides)
    fn = kernel_name(op)
    x, y = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    dtype = graph.op_dtype(op)
    int8 = dtype == "int8"
    consts: dict = {}
    detail = f"{'int8' if touches_int8(graph, op) else 'float32'} {WHAT[op.type]}"
    extra = ""      # definitions the call names (softmax's exp table)
    if kind == "elementwise":
        params = knobs.resolve(kind, op.where(), overrides)
        q, zp = None, 0
        if op.type in ("Quantize", "Dequantize"):
            quant = (y if op.type == "Quantize" else x).quant
            consts["scale"] = ("float", np.array([quant.scale[0]], np.float32))
            zp = int(quant.zero_point[0])
            detail += f", scale {float(np.float32(quant.scale[0])):.9g}, zero point {zp}"
        elif op.type in ("Relu", "Relu6") and int8:
            q = qp.relu_qparams(graph, op)
            detail += f", clamp [{q.act_min}, {q.act_max}]"
        func, stages = cg.elementwise_func(op.type, x.size, dtype, q, zp, op.attrs.rounding if op.type == "Quantize" else "half_away")
        func = ts.scheduled(sg.schedule_elementwise, func, params, stages)
        args = ["input"] + list(consts) + ["output"]
    elif kind in ("pool", "mean"):
        in_shape = tuple(x.shape)
        if kind == "mean" and (len(x.shape) != 4 or tuple(op.attrs.axes) != (1, 2)):
            # other adjacent axes: [outer][count][1][inner], the reduced run as the pooled rows
            axes = op.attrs.axes
            in_shape = (int(np.prod(x.shape[:axes[0]])), int(np.prod(x.shape[axes[0]:axes[-1] + 1])), 1,
                        int(np.prod(x.shape[axes[-1] + 1:])))
            detail += f" (axes {list(axes)})"
        window = (in_shape[1], in_shape[2]) if kind == "mean" else tuple(op.attrs.filter)
        params = knobs.resolve(kind, op.where(), overrides, window, in_shape[3])
        out_shape = (in_shape[0], 1, 1, in_shape[3]) if kind == "mean" else tuple(y.shape)
        if kind == "mean":
            func, stages = cg.pool_func("Mean", dtype, in_shape, out_shape, window, (1, 1), (0, 0, 0, 0),
                                        mean_q=qp.mean_qparams(graph, op) if int8 else None)
        else:
            a = op.attrs
            act_range = qp.output_activation_range(graph, op) if int8 else (-128, 127)
            func, stages = cg.pool_func(op.type, dtype, x.shape, out_shape, a.filter, a.stride, a.pad,
                                        a.activation.bounds(), act_range)
            detail += (f" {a.filter[0]}x{a.filter[1]}, stride {a.stride[0]}x{a.stride[1]}, padding (top, bottom, "
                       f"left, right) {tuple(a.pad)}, activation {op.attrs.activation.label()}")
        func = ts.scheduled(sg.schedule_pool, func, params, stages, window)
        args = ["input", "output"]
    elif kind == "fully_connected":
        w = graph.tensor(op.inputs[1])
        units, depth = w.shape
        bias = graph.tensor(op.inputs[2]).data if len(op.inputs) > 2 else None
        fc_isa = simd_fc.isa(graph, op, target) if target is not None else None
        if fc_isa is not None:      # the dot products tensorized (simd_fc.py), the weights padded to whole tiles
            params = knobs.resolve(f"{kind}_{fc_isa}", op.where(), overrides)
            consts["weights"] = ("int8_t", simd_fc.padded_weights(fc_isa, w.data))
        else:
            params = knobs.resolve(kind, op.where(), overrides, (1, 1), units, depth)
            consts["weights"] = ("int8_t" if int8 else "float", w.data)
        q, per_channel = None, True
        if int8:
            q = qp.fully_connected_qparams(graph, op)
            consts["bias"] = ("int32_t", qp.folded_bias(w.data, bias, q))
            if op.attrs.requant == "onnx":
                consts["scale"] = ("float", onnx_requant_scales(graph, op))
            else:
                per_channel = len(set(float(s) for s in q.scale)) > 1
                consts["scale"] = ("double", q.scale if per_channel else q.scale[:1])
            detail += f", clamp [{q.act_min}, {q.act_max}], requantize {op.attrs.requant}"
        elif bias is not None:
            consts["bias"] = ("float", bias.astype(np.float32))
        detail += f" [{x.size // depth}][{depth}] x [{units}][{depth}]^T, activation {op.attrs.activation.label()}"
        padded = simd_fc.padded_shape(fc_isa, units, depth) if fc_isa else None
        func, stages = cg.fc_func(dtype, x.size // depth, depth, units, bias is not None,
                                  op.attrs.activation.bounds(), q, op.attrs.requant, per_channel, padded)
        args = ["input"] + list(consts) + ["output"]
        if fc_isa is not None:
            func, extra = simd_fc.schedule(func, fn, fc_isa, units, depth, stages, params)
            detail += f"; tensorized for {fc_isa.upper()}: {simd_fc.ROWS} rows per micro-kernel call"
            body = lower_kernel(func, f"{fn}_tvm", op.where(), calls=True, attributes="__attribute__((noinline)) ")
            return _emit(graph, op, body, consts, args, params, detail, extra)
        func = ts.scheduled(sg.schedule_fully_connected, func, params, stages, depth)
    elif kind == "softmax":
        depth = x.shape[-1]
        params = knobs.resolve(kind, op.where(), overrides, (1, 1), x.size, depth)
        if not int8:        # float32 exps are not a function of 256 differences
            if "exp_table" in (overrides or {}):
                raise DwsError(f"{op.where()}: schedule parameter exp_table applies to int8 softmax only")
            del params["exp_table"]
        p = qp.softmax_qparams(graph, op) if int8 else None
        table = int8 and params["exp_table"]
        func, plan = softmax_func(dtype, x.size // depth, depth, params["cache_exp"], p, op.attrs.beta, table)
        func = sg.schedule_softmax(func, params, plan)
        detail += f" of {x.size // depth} rows of {depth}, beta {op.attrs.beta:g}"
        args = ["input", "output"]
        if table:
            extra = (f"/* exp of the differences 0 .. -{EXP_TABLE - 1} to the row maximum, rebuilt on every run. */\n"
                     f"static int32_t {fn}_exps[{EXP_TABLE}];\n")
            args = ["input", f"{fn}_exps", "output"]
    elif kind == "pad":
        params = knobs.resolve(kind, op.where(), overrides)
        pad_value = int(y.quant.zero_point[0]) if int8 else 0.0
        func, _ = cg.pad_func(dtype, x.shape, op.attrs.paddings, pad_value)
        func = sg.schedule_pad(func, params)
        detail += f" with {pad_value}, paddings {[tuple(p) for p in op.attrs.paddings]}"
        args = ["input", "output"]
    elif kind == "slice":
        params = knobs.resolve(kind, op.where(), overrides)
        a = op.attrs
        func, _ = cg.slice_func(dtype, x.shape, a.begin, a.strides, y.shape)
        func = sg.schedule_slice(func, params, knobs.MAX_UNROLLED_SLICE)
        detail += f" from {list(a.begin)} in steps of {list(a.strides)}"
        args = ["input", "output"]
    else:   # concat
        params = knobs.resolve(kind, op.where(), overrides)
        axis = op.attrs.axis
        shapes = [graph.tensor(n).shape for n in op.inputs]
        sizes = [int(np.prod(s[axis:])) for s in shapes]
        qs = qp.concat_qparams(graph, op) if int8 else None
        func, _ = cg.concat_func(dtype, int(np.prod(shapes[0][:axis])), sizes, qs)
        func = sg.schedule_concat(func, params, sizes)
        detail += f" of {len(sizes)} inputs along axis {axis}"
        args = [f"input{k}" for k in range(len(sizes))] + ["output"]
        if len(sizes) == 1:
            args = ["input", "output"]
    body = lower_kernel(func, f"{fn}_tvm", op.where())
    return _emit(graph, op, body, consts, args, params, detail, extra)


def hybrid_kernel(graph: Graph, op: Op, kind: str, overrides: dict | None, lanes: int = 0) -> Kernel:
    """Conv2D / DepthwiseConv2D with float32 activations and an int8 filter (TFLite EvalHybrid /
    EvalHybridPerChannel; depthwise always quantizes the input asymmetrically)."""
    fn = kernel_name(op)
    x, w, y = graph.tensor(op.inputs[0]), graph.tensor(op.inputs[1]), graph.tensor(op.outputs[0])
    a = op.attrs
    oc = y.shape[3]
    low, high = a.activation.bounds()
    spec = ConvSpec(kind=kind, dtype="float32", in_shape=tuple(x.shape), out_shape=tuple(y.shape),
                    kernel=(w.shape[1], w.shape[2]), stride=tuple(a.stride), dilation=tuple(a.dilation),
                    pad=tuple(a.pad), act_low=low, act_high=high,
                    multiplier=a.depth_multiplier if kind == "depthwise" else 1)
    params = knobs.resolve(kind, op.where(), overrides, spec.kernel, oc, x.shape[3], lanes)
    per_channel = kind == "depthwise" or qp.hybrid_per_channel(w.quant.scale)
    func = hybrid_conv_func(spec, per_channel)
    if kind == "depthwise":
        func = ts.schedule_depthwise(func, params, HYBRID_STAGES, spec.padded, spec.kernel)
    else:
        func = ts.schedule_conv(func, params, HYBRID_STAGES, spec.padded, spec.kernel if kind == "conv" else None,
                                x.shape[3])
    func = schedule_hybrid_input(func)
    body = lower_kernel(func, f"{fn}_tvm", op.where())
    bias = graph.tensor(op.inputs[2]).data if len(op.inputs) > 2 else np.zeros(oc, np.float32)
    filt = (w.data.reshape(oc, -1) if kind == "pointwise" else w.data.reshape(w.shape[1], w.shape[2], oc)
            if kind == "depthwise" else w.data)
    consts = {"filter": ("int8_t", filt),
              "filter_scale": ("float", np.broadcast_to(w.quant.scale.astype(np.float32), (oc,))),
              "bias": ("float", bias.astype(np.float32))}
    extra = f"/* The input quantized to int8, rebuilt on every run. */\nstatic int8_t {fn}_quantized[{x.size}];\n"
    (kh, kw), (sh, sw) = spec.kernel, spec.stride
    mode = "asymmetric (per-channel filter)" if per_channel else "symmetric (per-tensor filter)"
    what = f"depthwise {kh}x{kw}, multiplier {spec.multiplier}," if kind == "depthwise" else f"convolution {kh}x{kw}"
    detail = (f"float32 {what} with int8 weights (hybrid, {mode} input quantization), stride "
              f"{sh}x{sw}, dilation {spec.dilation[0]}x{spec.dilation[1]}, padding (top, bottom, left, right) "
              f"{spec.pad}, activation {op.attrs.activation.label()}")
    args = ["input", "filter", "filter_scale", "bias", f"{fn}_quantized", "output"]
    return _emit(graph, op, body, consts, args, params, detail, extra)
