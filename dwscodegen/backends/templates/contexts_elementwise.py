"""Contexts of the elementwise kernel templates: the binary ops over broadcast operands (Add, Mul, Maximum,
Minimum, PRelu; templates/kernels/_broadcast.j2 reads the loop nest) and the activations (HardSwish,
Logistic, Tanh, LeakyRelu: int8 by a 256-entry table, float32 computed)."""
from __future__ import annotations

import numpy as np

from ... import qparams as qp
from ...broadcast import loop_nest
from ...int8_elementwise import has_table, table
from ...ir import Graph, Op
from ...qparams import add_rescaled
from ..kernel import operand_names
from ..render import C_TYPES

SYMBOLS = {"Add": "+", "Mul": "*", "Maximum": "max", "Minimum": "min", "PRelu": "prelu"}
QPARAMS = {"Add": qp.add_qparams, "Mul": qp.mul_qparams, "PRelu": qp.prelu_qparams}     # int8


def _index(variables: list[str], strides: tuple[int, ...]) -> str:
    terms = [v if s == 1 else f"{v} * {s}" for v, s in zip(variables, strides) if s]
    return " + ".join(terms) or "0"


def binary_context(graph: Graph, op: Op) -> dict:
    """Operands broadcast over a loop nest with one flat loop when the shapes are equal (so that loop reads
    a[i], b[i]); a constant operand is an array of the kernel (`<fn>_constant`, `<fn>_alpha` for PRelu).
    int8 beside a one-element constant, the op is a table lookup instead (int8_elementwise.has_table)."""
    tensors = [graph.tensor(n) for n in op.inputs]
    y = graph.tensor(op.outputs[0])
    loops = loop_nest([t.shape for t in tensors], y.shape)
    variables = ["i"] if len(loops) == 1 else [f"i{d}" for d in range(len(loops))]
    ctype = C_TYPES[y.dtype]
    operands = []
    for d, (t, name) in enumerate(zip(tensors, operand_names(graph, op))):
        index = _index(variables, tuple(loop.strides[d] for loop in loops))
        operands.append(dict(name=name, const=t.is_const, ctype=ctype, shape=list(t.shape), size=t.size,
                             data=t.data, at=f"{name}[{index}]"))
    low, high = op.attrs.activation.bounds() if hasattr(op.attrs, "activation") else (None, None)
    ctx = dict(N=y.size, table=None, loops=[dict(var=v, extent=loop.extent) for v, loop in zip(variables, loops)],
               a=operands[0], b=operands[1], out_at=f"output[{_index(variables, tuple(o.out_stride for o in loops))}]",
               params=[o for o in operands if not o["const"]], ctype=ctype, out_shape=list(y.shape),
               broadcast=not all(t.shape == y.shape and not t.is_const for t in tensors), symbol=SYMBOLS[op.type],
               what=op.type.lower(),
               activation=op.attrs.activation.label() if hasattr(op.attrs, "activation") else "none",
               act_low=low, act_high=high, constant_keys=("constant",),
               constant=next((t.data for t in tensors if t.is_const), None))
    if has_table(graph, op):     # beside a one-element constant: a function of one int8 value
        value = int(next(t.data for t in tensors if t.is_const).reshape(-1)[0])
        ctx.update(table=table(graph, op), size=y.size, constant_keys=("table",),
                   what=f"elementwise {op.type.lower()} with the constant {value}",
                   recipe=f"TFLite's int8 {op.type} of each input with that constant")
        return ctx
    if y.dtype == "int8" and op.type in QPARAMS:
        ctx["q"] = q = QPARAMS[op.type](graph, op)
        if op.type == "Add":       # a constant addend is stored rescaled: its half of the sum done once, here
            sides = ((q.input1_offset, q.input1_multiplier, q.input1_shift),
                     (q.input2_offset, q.input2_multiplier, q.input2_shift))
            for operand, t, (offset, multiplier, shift) in zip(operands, tensors, sides):
                if t.is_const:
                    operand.update(ctype="int32_t", data=add_rescaled(t.data, offset, multiplier, shift, q.left_shift))
            ctx["constant"] = next((o["data"] for o in operands if o["const"]), None)
    return ctx


WHAT = {"HardSwish": "hard swish x * relu6(x + 3) / 6", "Logistic": "logistic 1 / (1 + e^-x)",
        "Tanh": "tanh", "LeakyRelu": "leaky relu"}
RECIPES = {"HardSwish": "TFLite's int16 fixed-point reference_ops::HardSwish of each input",
           "Logistic": "TFLite's own LUTPopulate<int8_t> table (float32 1 / (1 + exp(-x)), rounded)",
           "Tanh": "TFLite's own LUTPopulate<int8_t> table (float32 tanh(x), rounded)",
           "LeakyRelu": "TFLite's QuantizeLeakyRelu of each input"}


def activation_context(graph: Graph, op: Op) -> dict:
    ctx = dict(op=op.type, size=graph.tensor(op.inputs[0]).size, what=WHAT[op.type], constant_keys=("table",))
    if op.type == "LeakyRelu":
        ctx["alpha"] = op.attrs.alpha
        ctx["what"] += f", alpha {np.float32(op.attrs.alpha):g}"
    if graph.op_dtype(op) == "int8":
        ctx.update(table=table(graph, op), recipe=RECIPES[op.type])
    return ctx


def table_context(graph: Graph, op: Op) -> dict:
    """A fused chain of int8 elementwise ops (passes/fuse_tables.py): one lookup in the chain's table."""
    return dict(op=op.type, size=graph.tensor(op.inputs[0]).size, what=op.attrs.what, constant_keys=("table",),
                table=table(graph, op), recipe="each op of the chain computed as TFLite does, for every int8 input")
