"""TVM backend kernels of the elementwise ops (compute_elementwise.py): constants, schedule, lowering and the
wrapper with the library's calling convention (one const pointer per non-constant input, then the
output), named as the templates name them: `a, b` for two activations, `input` for one (and `alpha` for
PRelu's), a constant operand a `static const` array `<fn>_constant` (`<fn>_alpha`).

Kinds (knobs.py): "binary" (Add when broadcast or with a constant, Mul, Maximum, Minimum, PRelu) and
"activation" (HardSwish, Logistic, Tanh, LeakyRelu); both split and optionally unroll the innermost loop.
An int8 op whose output is a function of one int8 value (int8_elementwise.has_table) is a table lookup.
"""
from __future__ import annotations

import json

import numpy as np

from ... import qparams as qp
from ...int8_elementwise import has_table, table
from ...broadcast import loop_nest
from ...ir import Graph, Op
from ..kernel import Kernel, kernel_name, operand_names
from ..render import C_TYPES, c_array_body
from . import compute_elementwise as ce
from . import knobs
from .emit import lower_kernel
from .schedules import split

KINDS = ("binary", "activation")
QPARAMS = {"Add": qp.add_qparams, "Mul": qp.mul_qparams, "PRelu": qp.prelu_qparams}


def schedule_innermost(func, params: dict, stages):
    """The output's innermost loop split by `split` (unrolled with `unroll`); every stage computed inside
    it, as an array over the unrolled part (see schedules_glue)."""
    from tvm import s_tir
    sch = s_tir.Schedule(func)
    outer, inner = split(sch, sch.get_loops(sch.get_sblock("output"))[-1], params["split"])
    unroll = params["unroll"] and outer is not None
    for name in stages:
        sch.compute_at(sch.get_sblock(name), outer if unroll else inner)
    if unroll:
        sch.unroll(inner)
        for name in stages:
            sch.unroll(sch.get_loops(sch.get_sblock(name))[-1])
    return sch.mod["main"]


def _array(ctype: str, name: str, values) -> str:
    values = np.asarray(values).reshape(-1)
    per_line = 16 if ctype == "int8_t" else 8
    return f"static const {ctype} {name}[{values.size}] = {{\n{c_array_body(values, per_line)}\n}};\n"


def elementwise_kernel(graph: Graph, op: Op, kind: str, overrides: dict | None) -> Kernel:
    fn = kernel_name(op)
    params = knobs.resolve(kind, op.where(), overrides)
    y = graph.tensor(op.outputs[0])
    dtype = graph.op_dtype(op)
    ctype = C_TYPES[dtype]
    tensors = [graph.tensor(n) for n in op.inputs]
    consts: dict[str, tuple[str, np.ndarray]] = {}
    if has_table(graph, op):       # a function of one int8 value: a table lookup
        func, stages = ce.activation_func(op.type, dtype, y.size)
        consts["table"] = ("int8_t", table(graph, op))
        detail = f"int8 {op.type.lower()} of {y.size} values by table lookup"
        if kind == "binary":
            detail += f" (beside the constant {int(next(t.data for t in tensors if t.is_const).reshape(-1)[0])})"
        args = ["input", "table", "output"]
        inputs = [(next(t for t in tensors if not t.is_const), "input")]
    elif kind == "binary":
        # a constant's TVM parameter is named as its array without the kernel's prefix
        names = [n.removeprefix(f"{fn}_") for n in operand_names(graph, op)]
        consts.update((n, (ctype, t.data)) for n, t in zip(names, tensors) if t.is_const)
        act = op.attrs.activation.bounds() if hasattr(op.attrs, "activation") else (None, None)
        q = QPARAMS[op.type](graph, op) if dtype == "int8" and op.type in QPARAMS else None
        rescaled = (False, False)
        if op.type == "Add" and q is not None:      # a constant addend is stored on the common scale
            rescaled = tuple(t.is_const for t in tensors)
            sides = ((q.input1_offset, q.input1_multiplier, q.input1_shift),
                     (q.input2_offset, q.input2_multiplier, q.input2_shift))
            consts.update((n, ("int32_t", qp.add_rescaled(t.data, *side, q.left_shift)))
                          for n, t, side in zip(names, tensors, sides) if t.is_const)
        loops = loop_nest([t.shape for t in tensors], y.shape)
        func, stages = ce.binary_func(op.type, dtype, loops, (tensors[0].size, tensors[1].size), tuple(names), q, act,
                                      rescaled)
        shapes = " and ".join(f"{list(t.shape)}{' (constant)' if t.is_const else ''}" for t in tensors)
        detail = f"{dtype} elementwise {op.type.lower()} of {shapes}, broadcast NumPy-style"
        if hasattr(op.attrs, "activation"):
            detail += f", activation {op.attrs.activation.label()}"
        args = names + ["output"]
        inputs = [(t, n) for t, n in zip(tensors, names) if not t.is_const]
    else:
        func, stages = ce.activation_func(op.type, dtype, y.size)
        if op.type == "LeakyRelu":
            consts["alpha"] = ("float", np.array([op.attrs.alpha], np.float32))
        detail = f"{dtype} {op.type.lower()} of {y.size} values"
        args = ["input"] + list(consts) + ["output"]
        inputs = [(tensors[0], "input")]
    func = schedule_innermost(func, params, stages)
    body = lower_kernel(func, f"{fn}_tvm", op.where())
    header = (f"/*\n * op {op.index} '{op.name}' ({op.type}), TVM backend\n * {detail}\n"
              f" * schedule {json.dumps(params, sort_keys=True)}\n */\n")
    arrays = "".join(_array(t, f"{fn}_{k}", v) for k, (t, v) in consts.items())
    decl = ", ".join([f"const {ctype} *restrict {n}" for _, n in inputs] + [f"{C_TYPES[y.dtype]} *restrict output"])
    call = ", ".join(f"{fn}_{a}" if a in consts else a for a in args)
    wrapper = f"static void {fn}({decl})\n{{\n    {fn}_tvm({call});\n}}\n"
    const_bytes = sum(np.asarray(v).nbytes for _, v in consts.values())
    return Kernel(op_index=op.index, fn=fn, source=f"{header}{arrays}\n{body}\n{wrapper}", const_bytes=const_bytes)
