"""The TVM road's int8 glue ops on Cortex-M55 (MVE) and the DSP cores, tensorized with micro-kernels like the
convolutions (simd.py):

- table lookups (HardSwish, Logistic, Tanh, LeakyRelu, binary ops beside a one-element constant): the flat values
  in chunks of `chunk`, each chunk one micro-kernel call of 16 lookups per gather load (VLDRB with 8-bit offsets);
- Mul in the broadcast forms of the templates road's MVE variant (templates/simd/arm_glue.py mul_form): "flat"
  (both operands of the output's shape, in chunks) and "channel" (a per-channel vector times every pixel,
  squeeze-excite: one micro-kernel call per pixel row), 4 products per vector requantized by VQRDMULH and VRSHL
  under the MVE conv variants' exact plan (mve.plan_layer_mve of a one-weight "convolution", arm_glue.product_info);
  on DSP cores (and nowhere else) one product at a time, pre-scaled by the plan's power of two and requantized by
  SMMLAR (common.requant_plan, as the templates road's mul_s8_dsp).

Each micro-kernel is a TVM tensor intrinsic (tir_build.register_intrin): its description is the same TIR block as
the kernel's (simd_arith.mve_requant, the table load), so tensorize proves the call computes the block; the
implementation calls the C micro-kernel of templates/micro/glue_<isa>.c.j2.  Elsewhere (no exact plan, other
broadcasts, other ISAs) the portable TVM schedule (glue_elementwise.py) computes the op.
"""
from __future__ import annotations

import json

import numpy as np

from ... import qparams as qp
from ...int8_elementwise import has_table, table
from ...ir import Graph, Op
from ...targets import Target
from ..kernel import Kernel, kernel_name
from ..render import c_array_body, render
from ..templates.simd.arm_glue import add_plan, mul_form, product_info
from ..templates.simd.common import requant_plan
from ..templates.simd.dsp import requant_records
from ..templates.simd.mve import plan_layer_mve, requant_vectors
from . import knobs, simd_fc
from .emit import lower_kernel
from .simd_arith import i32, mve_requant, plan_requant, smmlar_rescale
from .tir_build import Axis, Block, Buf, MicroKernels, prim_func, register_intrin

_isa = simd_fc.arm_isa      # MVE or DSP, most capable first; table lookups on MVE only (the templates road's variants)


def _mul_plan(graph: Graph, op: Op, isa: str) -> dict | None:
    """The Mul's form (arm_glue.mul_form) and requantization (MVE: the vectors; DSP: the SMMLAR record and the
    product's pre-scale), or None where the ISA's form is not exact."""
    tensors = [graph.tensor(n) for n in op.inputs]
    operand = lambda t, name: dict(const=t.is_const, shape=list(t.shape), name=name)  # noqa: E731
    form = mul_form(dict(a=operand(tensors[0], "a"), b=operand(tensors[1], "b"),
                         out_shape=list(graph.tensor(op.outputs[0]).shape)))
    if form is None:
        return None
    q = qp.mul_qparams(graph, op)
    if isa == "dsp":
        info = product_info(q)
        plan = requant_plan(info, prescale_doubling=True, weight_limit=None)
        if plan is None or plan.mode == "generic":
            return None
        return dict(form=form, q=q, rq=[int(v) for v in requant_records(info, plan)[0]], SCALE=int(plan.scale[0]),
                    rq_mode=plan.mode)
    planned = plan_layer_mve(product_info(q))
    if planned is None or planned[0].OC != 1:   # a folded constant channel: the portable kernel
        return None
    info, plan = planned
    names, vec = requant_vectors(info, plan)
    return dict(form=form, q=q, vectors=names, values={n: int(vec[n][0]) for n in names},
                rq_mode="round" if plan.rshift[0] >= 1 else "noround")


def _add_plan(graph: Graph, op: Op) -> dict | None:
    """Add of two activations of the output's shape: the DSP plan of the templates road (arm_glue.add_plan)."""
    tensors = [graph.tensor(n) for n in op.inputs]
    shape = graph.tensor(op.outputs[0]).shape
    if any(t.is_const or t.shape != shape for t in tensors):
        return None
    q = qp.add_qparams(graph, op)
    operand = dict(const=False, data=None)
    chosen = add_plan(graph, op, dict(q=q, a=operand, b=operand))
    return None if chosen is None else dict(chosen[1], form=dict(form="flat"))


def _add_value(plan: dict):
    q = plan["q"]

    def value(a, b):
        sides = []
        for v, offset, p in ((a, q.input1_offset, plan["inputs"][0]), (b, q.input2_offset, plan["inputs"][1])):
            x = (v.astype("int32") + i32(offset)) * i32(p["SCALE"])
            sides.append(smmlar_rescale(x, p["m"], p["rc"], p["e"], p["mask"]))
        total = sides[0] + sides[1]
        total = total * i32(plan["SCALE"]) if plan["SCALE"] != 1 else total
        return plan_requant(total, lambda i: i32(plan["rq"][i]), plan["rq_mode"], q.output_offset,
                            (q.act_min, q.act_max), {})
    return value


def applies(graph: Graph, op: Op, target: Target) -> str | None:
    """"lookup" (MVE), "mul" or "add" (DSP, also on MVE cores) when op is tensorized on target, else None."""
    isa = _isa(target)
    if isa is None or graph.op_dtype(op) != "int8":
        return None
    if has_table(graph, op):
        return "lookup" if isa == "mve" else None
    if op.type == "Mul" and _mul_plan(graph, op, isa) is not None:
        return "mul"
    if op.type == "Add" and "dsp" in target.features and _add_plan(graph, op) is not None:
        return "add"
    return None


def _kind_isa(kind: str, target: Target) -> str:
    return "dsp" if kind == "add" else _isa(target)


def schedule_kind(graph: Graph, op: Op, target: Target, base: str) -> str:
    """"<base>_<isa>" when tensorized (here or, FullyConnected, simd_fc.py; knobs.py), else base."""
    fc = simd_fc.isa(graph, op, target)
    if fc is not None:
        return f"{base}_{fc}"
    kind = applies(graph, op, target)
    return base if kind is None else f"{base}_{_kind_isa(kind, target)}"


def _chunks(size: int, chunk: int) -> list[tuple[int, int, int]]:
    """(origin, calls, values per call) covering [0, size): whole chunks, then the tail in one call."""
    whole = size // chunk
    parts = [(0, whole, chunk)] if whole else []
    return parts + ([(whole * chunk, 1, size - whole * chunk)] if size % chunk else [])


def _lookup_value(x, t):
    """table[x + 128] as the sum over all 256 entries of table[j] where j is x + 128, else 0 (exactly one term is
    nonzero): tensorize compares buffer indices arithmetically, and a data-dependent one has no form to compare."""
    from tvm import tirx
    index = x.astype("int32") + i32(128)
    terms = [tirx.Select(index == i32(j), t[j], tirx.const(0, "int8")) for j in range(256)]
    while len(terms) > 1:       # a balanced tree: no deep recursion in TVM's visitors
        terms = [terms[i] + terms[i + 1] for i in range(0, len(terms), 2)]
    return terms[0]


def _mul_value(plan: dict, isa: str):
    q = plan["q"]

    def value(a, b):
        product = (a.astype("int32") + i32(q.input1_offset)) * (b.astype("int32") + i32(q.input2_offset))
        if isa == "dsp":
            scaled = product * i32(plan["SCALE"]) if plan["SCALE"] != 1 else product
            return plan_requant(scaled, lambda i: i32(plan["rq"][i]), plan["rq_mode"], q.output_offset,
                                (q.act_min, q.act_max), {})
        return mve_requant(product, lambda name: i32(plan["values"][name]), plan["vectors"], plan["rq_mode"],
                           (q.act_min, q.act_max))
    return value


def _intrin(fn: str, kind: str, n: int, value, second: str) -> dict:
    """out[i] = value(x[i], second operand) over n values; second: "table" (256 entries) or "b" (n values)."""
    name = f"{fn}_{kind}_{n}"
    other = Buf("table", (256,), "int8") if second == "table" else Buf("b", (n,), "int8")
    operands = [Buf("a", (n,), "int8"), other, Buf("out", (n,), "int8")]
    if second == "table":
        expr = lambda b, v: value(b["a"][v["i"]], b["table"])    # noqa: E731
    else:
        expr = lambda b, v: value(b["a"][v["i"]], b["b"][v["i"]])   # noqa: E731
    block = Block("output", (Axis("i", n),), "out", lambda v: [v["i"]], expr)
    register_intrin(name, operands, block, name, lambda b: [b["a"].access_ptr("r"), b[other.name].access_ptr("r"),
                                                            b["out"].access_ptr("w")],
                    in_place=True)     # the kernel's blocks keep their loops, unit ones too (a part of one value)
    return dict(kind=kind, name=name, intrin=name, n=n)


def _blocks(kind: str, plan: dict | None, size: int, chunk: int, sizes: tuple[int, int], value):
    """The kernel's blocks, one per part, each `output<k>` over (calls, values per call) or, for Mul's channel form,
    (images, pixels, channels); with the micro-kernel's extent per part."""
    if kind == "mul" and plan["form"]["form"] == "channel":
        f = plan["form"]
        images, pixels, c = f["IMAGES"], f["P"], f["C"]
        per_image = c if f["VEC_IMAGES"] > 1 else 0
        big = lambda v: (v["n"] * pixels + v["p"]) * c + v["c"]   # noqa: E731
        vec = lambda v: v["n"] * per_image + v["c"] if per_image else v["c"]   # noqa: E731
        index_a, index_b = (vec, big) if f["big"] == "b" else (big, vec)
        block = Block("output0", (Axis("n", images), Axis("p", pixels), Axis("c", c)), "output",
                      lambda v: [big(v)], lambda b, v: value(b["a"][index_a(v)], b["b"][index_b(v)]))
        return [block], [c]
    blocks, extents = [], []
    for k, (origin, calls, n) in enumerate(_chunks(size, chunk)):
        at = lambda v, origin=origin, n=n: origin + v["o"] * n + v["i"]   # noqa: E731
        if kind == "lookup":
            expr = lambda b, v, at=at: value(b["input"][at(v)], b["table"])   # noqa: E731
        else:
            expr = lambda b, v, at=at: value(b["a"][at(v)], b["b"][at(v)])   # noqa: E731
        blocks.append(Block(f"output{k}", (Axis("o", calls), Axis("i", n)), "output", lambda v, at=at: [at(v)], expr))
        extents.append(n)
    return blocks, extents


def tensorized_kernel(graph: Graph, op: Op, target: Target, base: str, overrides: dict | None) -> Kernel | None:
    kind = applies(graph, op, target)
    if kind is None:
        return None
    isa = _kind_isa(kind, target)
    fn = kernel_name(op)
    params = knobs.resolve(f"{base}_{isa}", op.where(), overrides)
    y = graph.tensor(op.outputs[0])
    tensors = [graph.tensor(n) for n in op.inputs]
    consts: dict[str, np.ndarray] = {}
    plan = None
    if kind == "lookup":
        value, second = _lookup_value, "table"
        consts["table"] = table(graph, op)
        names = ["input", "table"]
        inputs = ["input"]
        params_bufs = [Buf("input", (y.size,), "int8"), Buf("table", (256,), "int8")]
        detail = f"int8 {op.type.lower()} of {y.size} values by table lookup, 16 per MVE gather load"
    elif kind == "add":
        plan = _add_plan(graph, op)
        value, second = _add_value(plan), "b"
        names = inputs = ["a", "b"]
        params_bufs = [Buf(n, (t.size,), "int8") for n, t in zip(names, tensors)]
        detail = (f"int8 elementwise add of {y.size} values, activation {op.attrs.activation.label()}; DSP: both "
                  f"inputs to the common scale, the sum requantized, each by SMMLAR (\"{plan['rq_mode']}\")")
    else:
        plan = _mul_plan(graph, op, isa)
        value, second = _mul_value(plan, isa), "b"
        names = inputs = ["a", "b"]
        params_bufs = [Buf(n, (t.size,), "int8") for n, t in zip(names, tensors)]
        shapes = " and ".join(str(list(t.shape)) for t in tensors)
        how = "4 products per vector" if isa == "mve" else f"the product pre-scaled by {plan['SCALE']}, SMMLAR"
        detail = (f"int8 elementwise mul of {shapes} (form \"{plan['form']['form']}\"), activation "
                  f"{op.attrs.activation.label()}; {isa.upper()}: {how}, requantization \"{plan['rq_mode']}\"")
    blocks, extents = _blocks(kind, plan, y.size, params["chunk"], tuple(t.size for t in tensors), value)
    func = prim_func(params_bufs + [Buf("output", (y.size,), "int8")], [], blocks)
    func, micro = _schedule(func, fn, kind, blocks, extents, value, second)
    body = lower_kernel(func, f"{fn}_tvm", op.where(), calls=True, attributes="__attribute__((noinline)) ")
    k = dict(fn=fn, rq_mode=plan["rq_mode"] if plan else None, vectors=plan.get("vectors", []) if plan else [],
             act_min=plan["q"].act_min if plan else -128, act_max=plan["q"].act_max if plan else 127,
             x_offset=plan["q"].input1_offset if plan else 0, y_offset=plan["q"].input2_offset if plan else 0,
             output_offset=plan["q"].output_offset if plan else 0, SCALE=plan.get("SCALE", 1) if plan else 1,
             inputs=plan.get("inputs") if plan else None)
    rq = None
    if plan is not None:    # MVE: the vectors, 4 lanes each; DSP: the one SMMLAR record
        rq = np.asarray(plan["rq"] if isa == "dsp" else np.repeat([plan["values"][n] for n in plan["vectors"]], 4),
                        np.int32)
    micro_c = render(f"micro/glue_{isa}.c.j2", k=k, micro=micro, rq=rq)
    header = (f"/*\n * op {op.index} '{op.name}' ({op.type}), TVM backend, tensorized for {isa.upper()}\n * {detail}\n"
              f" * schedule {json.dumps(params, sort_keys=True)}: micro-kernels "
              f"{', '.join(m['name'].removeprefix(fn + '_') for m in micro)}\n */\n")
    arrays = "".join(f"static const int8_t {fn}_{n}[{v.size}] = {{\n{c_array_body(v, 16)}\n}};\n"
                     for n, v in consts.items())
    call = ", ".join([f"{fn}_{n}" if n in consts else n for n in names] + ["output"])
    decl = ", ".join([f"const int8_t *restrict {n}" for n in inputs] + ["int8_t *restrict output"])
    wrapper = f"static void {fn}({decl})\n{{\n    {fn}_tvm({call});\n}}\n"
    const_bytes = sum(v.nbytes for v in consts.values()) + (rq.nbytes if rq is not None else 0)
    return Kernel(op_index=op.index, fn=fn, source=f"{header}{micro_c}{arrays}\n{body}\n{wrapper}",
                  const_bytes=const_bytes)


def _schedule(func, fn: str, kind: str, blocks: list[Block], extents: list[int], value, second: str):
    """Tensorize each part's innermost loop with the micro-kernel of its extent."""
    from tvm import s_tir
    sch = s_tir.Schedule(func)
    micro = MicroKernels()
    for block, n in zip(blocks, extents):
        sch.tensorize(sch.get_loops(sch.get_sblock(block.name))[-1], micro.use(_intrin(fn, kind, n, value, second)))
    return sch.mod["main"], micro.entries()
