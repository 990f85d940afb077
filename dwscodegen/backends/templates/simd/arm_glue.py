"""Cortex-M variants of the glue ops around the convolutions (the templates backend's portable kernels otherwise).

- FullyConnected (int8, TFLite requantization, symmetric weights): 4 output rows per step, so each input value is
  loaded and widened once per 4 rows: DSP (SXTB16 + SMLAD on the int8 weights, 4 bytes a word), MVE (VMLADAVA,
  16 bytes a vector), Thumb-2 (multiply-accumulate, rows interleaved by 4). Weights stay int8, so the layer's
  flash is the portable kernel's (plus row padding). The requantization is TFLite's float-scale one,
  round(double(acc) * scale), exactly the portable kernel's; the accumulator is the portable kernel's int32
  sum (SMLAD and VMLADAVA wrap around in int32 as it does), so the output is bit for bit the same.
- Mul (int8, any broadcast): the portable kernel's loop nest over the operands, the product of the offset inputs
  pre-scaled by the power of two of common.requant_plan and requantized by SMMLAR (DSP, so M55 too) instead of
  the 64-bit helper: exact whenever the plan is (the product is bounded by (128 + |offset1|) * (128 + |offset2|),
  the plan's accumulator bound for a one-weight "convolution"); the portable kernel otherwise.
- Add (int8, any broadcast): the same, for each of TFLite's three MultiplyByQuantizedMultiplier (both inputs to the
  common scale, then the sum); the bound of each input's rescaled value is taken over all 256 int8 values (or
  the constant addend), so the sum's plan is exact too.
- Mean over the middle axes (int8): 4 channels per word summed by SXTAB16 in int16 lanes over blocks of
  MEAN_BLOCK positions (|a lane's sum| <= 256 * 128 = 2^15: no int16 lane wraps), then the portable kernel's
  requantization of each channel's int32 sum: exact. DSP, so M55 too.
- Lookup-table ops (int8 HardSwish, Logistic, Tanh, LeakyRelu, binary ops beside a one-element constant) on MVE:
  16 lookups per gather load (VLDRB with 8-bit offsets) from the same 256-entry table: exact by construction.
ONNX-requantized and hybrid layers, and weights with a zero point, keep the portable kernel.
"""
from __future__ import annotations

import numpy as np

from ....ir import Graph, Op
from ....qparams import add_rescaled
from ....targets import Target
from . import registry
from .common import ConvInfo, ceil_to, requant_plan
from .dsp import requant_context, requant_records
from .mve import plan_layer_mve, requant_vectors

# target feature -> the ISA of its variants, most capable first
ISAS = (("mve", "mve"), ("dsp", "dsp"), ("thumb2", "tiled"))
# ISA -> how many weight bytes one step reads (rows are padded with zeros to a multiple)
ROW_STEP = {"mve": 16, "dsp": 4}
ROWS = 4        # output rows per step


def _isa(target: Target) -> str | None:
    return next((isa for feature, isa in ISAS if feature in target.features), None)


def fc_name(isa: str) -> str:
    return f"fully_connected_s8_{isa}_{ROWS}r"


MUL, ADD, MUL_MVE = "mul_s8_dsp", "add_s8_dsp", "mul_s8_mve"
MEAN, LUT_MVE = "mean_s8_dsp", "lookup_table_s8_mve"
MEAN_BLOCK = 256
ALL_INT8 = np.arange(-128, 128, dtype=np.int64)


def _fc_weights(isa: str, rows: np.ndarray) -> tuple[np.ndarray, int]:
    """The weights as the variant reads them, and the padded row length (tiled: K, rows interleaved)."""
    o, k = rows.shape
    if isa == "tiled":
        blocks = -(-o // ROWS)
        padded = np.zeros((blocks * ROWS, k), np.int8)
        padded[:o] = rows
        return padded.reshape(blocks, ROWS, k).transpose(0, 2, 1).reshape(blocks, k * ROWS), k
    step = ROW_STEP[isa]
    kp = ceil_to(k, step)
    padded = np.zeros((o, kp), np.int8)
    padded[:, :k] = rows
    return padded, kp


def _fully_connected(isa: str, graph: Graph, op: Op, ctx: dict) -> tuple[str, dict] | None:
    if ctx.get("requant") != "tflite" or ctx["weights_offset"] != 0 or graph.tensor(op.inputs[1]).dtype != "int8":
        return None
    o, k = ctx["O"], ctx["K"]
    weights, kp = _fc_weights(isa, np.asarray(ctx["weights"]).reshape(o, k))
    bias = np.zeros(weights.shape[0] * ROWS if isa == "tiled" else o, np.int64)
    bias[:o] = np.asarray(ctx["bias"], np.int64)
    scale = np.broadcast_to(np.asarray(ctx["scale"], np.float64), (o,))
    scale = [float(s) for s in (scale[:1] if np.all(scale == scale[0]) else scale)]
    name = fc_name(isa)
    out = dict(fn=ctx["fn"], title=ctx["title"], activation=ctx["activation"], isa=isa, variant=name,
               N=ctx["N"], K=k, O=o, KP=kp, weights=weights, bias=bias.astype(np.int32), scale=scale,
               output_offset=ctx["output_offset"], act_min=ctx["act_min"], act_max=ctx["act_max"],
               constant_keys=("weights", "bias", "scale"))
    return name, out


def _one_weight(weight: int, bias: int, in_offset: int, out_offset: int, multiplier: int, shift: int,
                act_min: int = -128, act_max: int = 127) -> ConvInfo:
    """A one-weight, one-channel convolution for common.requant_plan: its accumulator bound is
    |bias| + (|in_offset| + 128) * |weight|."""
    one = np.ones(1, np.int64)
    return ConvInfo(depthwise=False, H=1, W=1, C=1, OH=1, OW=1, OC=1, KH=1, KW=1, SH=1, SW=1, DH=1, DW=1,
                    PT=0, PB=0, PL=0, PR=0, MULT=1, weights=np.full((1, 1, 1, 1), weight, np.int64),
                    bias=bias * one, in_offset=in_offset, out_offset=out_offset, multiplier=multiplier * one,
                    shift=shift * one, act_min=act_min, act_max=act_max)


def product_info(q) -> ConvInfo:
    """Mul: input 1 the input, (128 + |offset2|) the weight (the largest |input2 + offset2|), so the plan's
    accumulator bound is the product's."""
    return _one_weight(128 + abs(q.input2_offset), 0, q.input1_offset, q.output_offset, q.multiplier, q.shift,
                       q.act_min, q.act_max)


def mul_form(ctx: dict) -> dict | None:
    """The broadcast forms mul_s8_mve has: "flat" (both operands of the output's shape) and "channel" (one of
    the output's shape [N, ..., C], the other [N or 1, 1, ..., 1, C]); None for any other (or a constant)."""
    a, b, out = ctx["a"], ctx["b"], ctx["out_shape"]
    if a["const"] or b["const"]:
        return None
    if a["shape"] == b["shape"] == out:
        return dict(form="flat", x=a["name"], y=b["name"])
    for big, vec in ((a, b), (b, a)):
        inner = vec["shape"][1:-1]
        if (big["shape"] == out and len(out) >= 2 and len(vec["shape"]) == len(out) and all(d == 1 for d in inner)
                and vec["shape"][-1] == out[-1] and vec["shape"][0] in (1, out[0])):
            return dict(form="channel", big=big["name"], vec=vec["name"], IMAGES=out[0], C=out[-1],
                        P=int(np.prod(out[1:-1])), VEC_IMAGES=vec["shape"][0], swapped=big is b)
    return None


def _mul_mve(graph: Graph, op: Op, ctx: dict) -> tuple[str, dict] | None:
    if ctx.get("table") is not None or "q" not in ctx:
        return None
    form = mul_form(ctx)
    if form is None:
        return None
    q = ctx["q"]
    planned = plan_layer_mve(product_info(q))
    if planned is None:
        return None
    info, plan = planned
    names, vec = requant_vectors(info, plan)
    offsets = (q.input2_offset, q.input1_offset) if form.pop("swapped", False) else (q.input1_offset, q.input2_offset)
    rq = np.concatenate([np.full(4, vec[name][0], np.int64) for name in names]).astype(np.int32)
    out = dict(ctx, variant=MUL_MVE, x_offset=offsets[0], y_offset=offsets[1], vectors=names, rq=rq,
               rq_mode="round" if plan.rshift[0] >= 1 else "noround", act_min=q.act_min, act_max=q.act_max,
               constant_keys=("rq",), **form)
    return MUL_MVE, out


def add_plan(graph: Graph, op: Op, ctx: dict) -> tuple[str, dict] | None:
    """The Add variant (the tvm road's tensorized Add takes the same plan; its context: q, and operands a / b
    with const / data)."""
    if ctx.get("table") is not None or "q" not in ctx:
        return None
    q = ctx["q"]
    sides = ((ctx["a"], q.input1_offset, q.input1_multiplier, q.input1_shift),
             (ctx["b"], q.input2_offset, q.input2_multiplier, q.input2_shift))
    inputs, bound = [], 0
    for operand, offset, multiplier, shift in sides:
        values = operand["data"] if operand["const"] else add_rescaled(ALL_INT8, offset, multiplier, shift, q.left_shift)
        bound += int(np.max(np.abs(np.asarray(values, np.int64))))
        if operand["const"]:
            inputs.append(None)
            continue
        plan = requant_plan(_one_weight(1 << q.left_shift, 0, offset, 0, multiplier, shift),
                            prescale_doubling=True, weight_limit=None)
        if plan is None or plan.mode not in ("round", "noround"):
            return None
        inputs.append(dict(SCALE=int(plan.scale[0]) << q.left_shift, m=int(plan.multiplier[0]),
                           rc=int(plan.rc[0]), e=int(plan.rshift[0]), mask=-1 if plan.mode == "round" else 0))
    info = _one_weight(0, bound, 0, q.output_offset, q.output_multiplier, q.output_shift, q.act_min, q.act_max)
    plan = requant_plan(info, prescale_doubling=True, weight_limit=None)
    if plan is None or plan.mode == "generic":
        return None
    out = dict(ctx, variant=ADD, inputs=inputs, SCALE=int(plan.scale[0]),
               rq=[int(v) for v in requant_records(info, plan)[0]])
    out.update(requant_context(info, plan))
    return ADD, out


def _mul(graph: Graph, op: Op, ctx: dict) -> tuple[str, dict] | None:
    if ctx.get("table") is not None or "q" not in ctx:
        return None
    info = product_info(ctx["q"])
    plan = requant_plan(info, prescale_doubling=True, weight_limit=None)
    if plan is None or plan.mode == "generic":
        return None
    out = dict(ctx, variant=MUL, SCALE=int(plan.scale[0]), rq=[int(v) for v in requant_records(info, plan)[0]])
    out.update(requant_context(info, plan))
    return MUL, out


def select(graph: Graph, op: Op, target: Target, ctx: dict, kernel: str | None) -> tuple[str, dict] | None:
    """The Cortex-M variant of a glue op, or None (the portable kernel)."""
    isa = _isa(target)
    if isa is None or graph.op_dtype(op) != "int8":
        return None
    if isa == "mve" and ctx.get("table") is not None and kernel in (None, LUT_MVE):
        return LUT_MVE, dict(ctx, variant=LUT_MVE)
    if op.type == "FullyConnected" and kernel in (None, fc_name(isa)):
        return _fully_connected(isa, graph, op, ctx)
    if op.type == "Mul" and isa == "mve" and kernel in (None, MUL_MVE):
        chosen = _mul_mve(graph, op, ctx)
        if chosen is not None or kernel == MUL_MVE:
            return chosen
    if op.type == "Mul" and "dsp" in target.features and kernel in (None, MUL):
        return _mul(graph, op, ctx)
    if (op.type == "Mean" and "dsp" in target.features and kernel in (None, MEAN)
            and ctx["C"] >= registry.get(MEAN).constraints["min_channels"]):
        return MEAN, dict(ctx, variant=MEAN, BLOCK=MEAN_BLOCK)
    if op.type == "Add" and "dsp" in target.features and kernel in (None, ADD):
        return add_plan(graph, op, ctx)
    return None

