"""The elementwise glue ops of MobileNetV3 and EfficientNet on x86 (see avx.py): table lookups, Mul, HardSwish.

- Table lookups (every int8 op whose output is a function of one int8 value, int8_elementwise.has_table /
  the activations' tables: HardSwish, Logistic, Tanh, LeakyRelu, and Add / Mul / Maximum / Minimum / PRelu
  beside a one-element constant): vpshufb looks up 16 entries per 128-bit lane, so the 256 entries are 16
  sub-tables T_0 .. T_15 of 16, in two chains of 8. The low chain serves the indices u = x + 128 < 128: with
  v_j = u - 16 j (byte arithmetic), vpshufb(L_j, v_j) reads L_j[u & 15] where v_j >= 0 (j <= u >> 4) and 0
  where v_j's sign bit is set (j > u >> 4); with L_0 = T_0 and L_j = T_j ^ T_(j-1) the XOR of the chain
  telescopes to T_(u >> 4)[u & 15]. The high chain does the same for u >= 128 with v_0 = x = u - 128 and
  H_j = T_(8+j) ^ T_(8+j-1) (H_0 = T_8); the input's sign picks the chain. The table holds exactly the
  portable kernel's entries, so the lookup is bit-exact by construction.
- Mul (int8 and float32) and float32 Add over NumPy-style broadcast operands (broadcast.loop_nest): the
  outer loops of the nest in C, the innermost one in vectors, each operand either read along it (stride 1)
  or broadcast across it (stride 0: the squeeze-excite scale of a pixel). int8: (a + off1) * (b + off2) in
  32-bit lanes (|product| <= 255 * 255), then MultiplyByQuantizedMultiplier (dws_*_mbqm, exact for every
  int32), the zero point and the activation; float32: one multiply (add), as the portable kernel.
- float32 HardSwish: x * clamp(x + 3, 0, 6) / 6 in the portable kernel's order (multiply, then divide), so
  the result is the portable kernel's to the bit.
- int8 Softmax: the gemmlowp exp of a difference to the row maximum depends on that difference alone, one of
  256, so both of its uses are tables made here by the NumPy reference's own functions: the exp in Q0.31 and
  its Q12.19 term of the sum (0 where the difference is below diff_min); the reciprocal of the sum and the
  final scaling stay the portable kernel's.
- Quantize (float32 -> int8; the input of a QDQ ONNX model): the portable kernel's quotient and rounding (half
  away, or ONNX's half to even) on every lane, saturated to int8 by the narrowing store.
"""
from __future__ import annotations

import numpy as np

from ....broadcast import loop_nest
from ....ir import Graph, Op
from ....quant import multiply_by_quantized_multiplier
from ....fixedpoint import exp_on_negative_values, saturating_rounding_multiply_by_pot
from .avx_common import Level, template, wanted
from .common import INT32_MAX

SUBTABLE = 16
SUM_INTEGER_BITS = 12          # TFLite sums the exps in Q12.19


def chains(table: np.ndarray) -> np.ndarray:
    """The 256-entry int8 table (index x + 128) -> [16][16] int8: the low chain's L_0 .. L_7, then the high
    chain's H_0 .. H_7 (see the module docstring)."""
    t = np.asarray(table, np.int8).view(np.uint8).reshape(16, SUBTABLE)
    out = t.copy()
    for half in (0, 8):
        out[half + 1:half + 8] = t[half + 1:half + 8] ^ t[half:half + 7]
    return out.view(np.int8)


def lookup(table: np.ndarray, x: np.ndarray) -> np.ndarray:
    """What the vector kernel computes for int8 inputs x, in NumPy (tests/test_x86_elementwise.py checks it
    against table[x + 128] for all 256 values)."""
    c = chains(table).view(np.uint8)
    u = (np.asarray(x, np.int8).view(np.uint8) ^ 0x80).astype(np.int64)
    low, high = np.zeros(u.shape, np.uint8), np.zeros(u.shape, np.uint8)
    for j in range(8):
        for start, out, base in ((u, low, 0), ((u - 128) % 256, high, 8)):
            v = (start - SUBTABLE * j) % 256
            out ^= np.where(v < 128, c[base + j][v & 15], 0).astype(np.uint8)
    return np.where(u < 128, low, high).view(np.int8)


def _table(level: Level, graph: Graph, op: Op, ctx: dict, name: str) -> tuple[str, dict] | None:
    if ctx.get("table") is None or graph.tensor(op.outputs[0]).dtype != "int8":
        return None
    width = 4 * level.lanes
    rows = np.tile(chains(ctx["table"]), (1, width // SUBTABLE))      # each sub-table in every 128-bit lane
    size = ctx.get("size", graph.tensor(op.outputs[0]).size)
    return template(name), dict(fn=ctx["fn"], title=ctx["title"], what=ctx["what"], recipe=ctx["recipe"],
                                size=size, L=level.lanes, B=width, isa=level.name, chains=rows,
                                constant_keys=("chains",))


def _binary(level: Level, graph: Graph, op: Op, ctx: dict, name: str) -> tuple[str, dict] | None:
    int8 = graph.op_dtype(op) == "int8"
    if ctx.get("table") is not None:
        return None
    if int8:
        q = ctx["q"]
        if not (0 <= q.multiplier <= INT32_MAX and -31 <= q.shift <= 31):
            return None
    tensors = [graph.tensor(n) for n in op.inputs]
    y = graph.tensor(op.outputs[0])
    loops = loop_nest([t.shape for t in tensors], y.shape)
    outer = [dict(var=f"i{d}", extent=loop.extent, a=loop.strides[0], b=loop.strides[1], out=loop.out_stride)
             for d, loop in enumerate(loops[:-1])]
    inner = loops[-1]

    def offset(key: str) -> str:
        terms = [l["var"] if l[key] == 1 else f"{l['var']} * {l[key]}" for l in outer if l[key]]
        return " + ".join(terms) or "0"

    operands = [dict(ctx[side], stride=inner.strides[d], base=offset(side)) for d, side in enumerate(("a", "b"))]
    return template(name), dict(ctx, L=level.lanes, isa=level.name, int8=int8, op=op.type, outer=outer,
                                E=inner.extent, A=operands[0], B=operands[1], out_base=offset("out"))


def _hard_swish(level: Level, graph: Graph, op: Op, ctx: dict, name: str) -> tuple[str, dict] | None:
    if graph.op_dtype(op) != "float32":
        return None
    return template(name), dict(ctx, L=level.lanes, isa=level.name)


def _softmax(level: Level, graph: Graph, op: Op, ctx: dict, name: str) -> tuple[str, dict] | None:
    distance = np.arange(256, dtype=np.int64)                 # row maximum - input: diff = -distance
    exps = exp_on_negative_values(multiply_by_quantized_multiplier(-distance, ctx["input_multiplier"],
                                                                   ctx["input_left_shift"]))
    terms = np.where(-distance >= ctx["diff_min"], saturating_rounding_multiply_by_pot(exps, -SUM_INTEGER_BITS), 0)
    return template(name), dict(ctx, isa=level.name, exps=exps.astype(np.int32), terms=terms.astype(np.int32),
                                live=int(np.clip(-np.int64(ctx["diff_min"]), -1, 255)),
                                constant_keys=("exps", "terms"))


def _quantize(level: Level, graph: Graph, op: Op, ctx: dict, name: str) -> tuple[str, dict] | None:
    if graph.tensor(op.outputs[0]).dtype != "int8":
        return None
    return template(name), dict(ctx, L=level.lanes, isa=level.name)


def _names(level: Level) -> dict[tuple[str, str], str]:
    isa, lanes = level.name, level.lanes
    return {("Mul", "s8"): f"mul_s8_{isa}_{lanes}c", ("Mul", "f32"): f"mul_f32_{isa}_{lanes}c",
            ("Add", "f32"): f"add_f32_{isa}_{lanes}c_broadcast", ("HardSwish", "f32"): f"hard_swish_f32_{isa}_{lanes}c",
            ("table", "s8"): f"lookup_table_s8_{isa}_{4 * lanes}c", ("Softmax", "s8"): f"softmax_s8_{isa}_exp_table",
            ("Quantize", "f32"): f"quantize_s8_{isa}_{lanes}c"}


def variants(level: Level) -> tuple[str, ...]:
    return tuple(_names(level).values())


BUILDERS = {"Mul": _binary, "Add": _binary, "HardSwish": _hard_swish, "Softmax": _softmax, "Quantize": _quantize}


def select(level: Level, graph: Graph, op: Op, ctx: dict, kernel: str | None) -> tuple[str, dict] | None:
    names = _names(level)
    if ctx.get("table") is not None:
        name = names["table", "s8"]
        return _table(level, graph, op, ctx, name) if wanted(name, kernel) else None
    dtype = "s8" if graph.op_dtype(op) == "int8" else "f32"
    name = names.get((op.type, dtype))
    if name is None or not wanted(name, kernel) or (dtype == "s8" and ctx.get("requant", "tflite") != "tflite"):
        return None
    return BUILDERS[op.type](level, graph, op, ctx, name)
