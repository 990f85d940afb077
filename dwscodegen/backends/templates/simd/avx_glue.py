"""The glue ops around the convolutions on x86 (see avx.py): average pool, Add, Mean, FullyConnected.

- AveragePool2D, Mean: channels in vectors, sums in 32-bit lanes (int8 inputs sign-extended). int8 pooling
  divides as the portable kernel, trunc((sum +- count / 2) / count), in float32: exact because the sum and the
  count are integers below 2^24 and no quotient comes within float32 rounding of an integer it is not (checked
  here: window * 129 < 2^23). int8 Mean requantizes with dws_*_mbqm, exact for every int32.
- Add: int8 through three MultiplyByQuantizedMultiplier per element (dws_*_mbqm, exact); float32 one add.
- FullyConnected: the GEMMs of avx_s8.py / avx_f32.py over the N rows of the flattened input (k.fc); int8
  requantizes in double like TFLite's reference kernel, round(double(acc) * scale) on every lane. The
  accumulator wraps around in int32 exactly as the portable kernel's does (qparams.folded_bias).
ONNX-requantized int8 layers keep the portable kernels.
"""
from __future__ import annotations

import numpy as np

from ....ir import Graph, Op
from .avx_common import GEMM_TILES, Level, gemm_choice, template, wanted
from .avx_s8 import gemm_shape, int8_weights, pack_gemm
from .common import INT32_MAX, ConvInfo

FLOAT_EXACT = 1 << 23


def _mbqm_ok(multiplier: int, shift: int) -> bool:
    """dws_*_mbqm takes m in [0, 2^31) and shifts of at most 31 either way."""
    return 0 <= multiplier <= INT32_MAX and -31 <= shift <= 31


def _pool(level: Level, graph: Graph, op: Op, ctx: dict, name: str) -> tuple[str, dict] | None:
    int8 = graph.op_dtype(op) == "int8"
    if int8 and ctx["KH"] * ctx["KW"] * 129 >= FLOAT_EXACT:
        return None
    return template(name), dict(ctx, L=level.lanes, isa=level.name, int8=int8)


def _add(level: Level, graph: Graph, op: Op, ctx: dict, name: str) -> tuple[str, dict] | None:
    if any(graph.tensor(t).shape != graph.tensor(op.outputs[0]).shape for t in op.inputs):
        return None
    int8 = graph.op_dtype(op) == "int8"
    if int8:
        q = ctx["q"]
        pairs = ((q.input1_multiplier, q.input1_shift), (q.input2_multiplier, q.input2_shift),
                 (q.output_multiplier, q.output_shift))
        if not all(_mbqm_ok(m, s) for m, s in pairs) or 255 << q.left_shift > INT32_MAX:
            return None
    return template(name), dict(ctx, L=level.lanes, isa=level.name, int8=int8)


def _mean(level: Level, graph: Graph, op: Op, ctx: dict, name: str) -> tuple[str, dict] | None:
    int8 = graph.op_dtype(op) == "int8"
    if int8 and (not _mbqm_ok(ctx["multiplier"], ctx["shift"]) or ctx["HW"] * 256 > INT32_MAX):
        return None
    return template(name), dict(ctx, L=level.lanes, isa=level.name, int8=int8)


def _fc_info(graph: Graph, op: Op, ctx: dict) -> ConvInfo:
    """The layer as a 1x1 convolution of its N rows (the GEMM variants' geometry)."""
    n, k, o = ctx["N"], ctx["K"], ctx["O"]
    zeros = np.zeros(o, np.int64)
    return ConvInfo(depthwise=False, H=1, W=n, C=k, OH=1, OW=n, OC=o, KH=1, KW=1, SH=1, SW=1, DH=1, DW=1,
                    PT=0, PB=0, PL=0, PR=0, MULT=1, weights=np.asarray(ctx["weights"]).reshape(o, 1, 1, k),
                    bias=zeros, in_offset=0, out_offset=0, multiplier=zeros, shift=zeros, act_min=0, act_max=0)


def _fc(level: Level, graph: Graph, op: Op, ctx: dict, names: tuple[str, ...], kernel: str | None):
    int8 = graph.op_dtype(op) == "int8"
    if int8 and (ctx.get("requant") != "tflite" or ctx["weights_offset"] != 0):
        return None
    if not int8 and graph.tensor(op.inputs[1]).dtype != "float32":
        return None
    name = gemm_choice(names, level.lanes, ctx["O"], kernel)
    if name is None:
        return None
    info = _fc_info(graph, op, ctx)
    rows = np.asarray(ctx["weights"]).reshape(ctx["O"], ctx["K"])
    lanes = level.lanes
    common = dict(fn=ctx["fn"], title=ctx["title"], activation=ctx["activation"], isa=level.name, L=lanes,
                  vnni=level.vnni, H=1, W=ctx["N"], C=ctx["K"], OH=1, OW=ctx["N"], OC=ctx["O"], KH=1, KW=1,
                  SH=1, SW=1, DH=1, DW=1, PT=0, PL=0, fc=True, hybrid=False)
    if not int8:
        from .avx_f32 import gemm as f32_gemm
        bias = ctx["bias"] if ctx["bias"] is not None else np.zeros(ctx["O"], np.float32)
        float_info = ConvInfo(**{**info.__dict__, "weights": rows.astype(np.float32).reshape(info.weights.shape),
                                 "bias": np.asarray(bias, np.float32)})
        chosen = f32_gemm(level, float_info, ctx, name)
        return None if chosen is None else (chosen[0], dict(chosen[1], fc=True))
    w8 = int8_weights(level, ctx["N"], name)
    packed, kp, nvec = pack_gemm(level, rows.astype(np.int64), w8)
    bias = np.asarray(ctx["bias"], np.int64)
    if level.vnni:
        bias = bias - 128 * rows.astype(np.int64).sum(axis=1)
    start = np.zeros(nvec * lanes, np.int64)
    start[:ctx["O"]] = bias
    scale = np.zeros(nvec * lanes, np.float64)
    scale[:ctx["O"]] = np.broadcast_to(np.asarray(ctx["scale"], np.float64), (ctx["O"],))
    wrapped = ((start + (1 << 31)) % (1 << 32)) - (1 << 31)          # int32 arithmetic, as the portable kernel
    out = dict(common, weights=packed, rq=wrapped.reshape(nvec, lanes).astype(np.int32),
               scale=scale.reshape(nvec, lanes).tolist(), NR=1, vectors=("bias",), output_offset=ctx["output_offset"],
               act_min=ctx["act_min"], act_max=ctx["act_max"], w8=w8, constant_keys=("weights", "rq", "scale"))
    out.update(gemm_shape(level, info, name, ctx["K"], kp, nvec))
    return template(name), out


def _names(level: Level) -> dict[str, tuple[str, ...]]:
    lanes, isa = level.lanes, level.name
    names = {}
    for op, stem in (("AveragePool2D", "avg_pool2d"), ("Add", "add"), ("Mean", "mean")):
        for dtype in ("s8", "f32"):
            names[op, dtype] = (f"{stem}_{dtype}_{isa}_{lanes}c",)
    names["FullyConnected", "s8"] = tuple(f"fully_connected_s8_{level.s8_name}_{t}" for t in GEMM_TILES["s8", level.s8_name])
    names["FullyConnected", "f32"] = tuple(f"fully_connected_f32_{isa}_{t}" for t in GEMM_TILES["f32", isa])
    return names


def variants(level: Level) -> tuple[str, ...]:
    return sum(_names(level).values(), ())


BUILDERS = {"AveragePool2D": _pool, "Add": _add, "Mean": _mean}


def select(level: Level, graph: Graph, op: Op, ctx: dict, kernel: str | None) -> tuple[str, dict] | None:
    dtype = "s8" if graph.op_dtype(op) == "int8" else "f32"
    names = _names(level).get((op.type, dtype))
    if names is None or (dtype == "s8" and ctx.get("requant", "tflite") != "tflite"):
        return None
    if op.type == "FullyConnected":
        return _fc(level, graph, op, ctx, names, kernel)
    return BUILDERS[op.type](level, graph, op, ctx, names[0]) if wanted(names[0], kernel) else None
