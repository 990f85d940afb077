"""The TVM road's int8 FullyConnected on Cortex-M4/M7/M33 (DSP) and M55 (MVE): the dot products of 4 output rows at
a time tensorized with a micro-kernel (templates/micro/fc_<isa>.c.j2, the templates road's fully_connected_s8_*_4r
inner loop: DSP SXTB16 + SMLAD on 4 input bytes per word, MVE VMLADAVA on 16 per vector), so each input value is
loaded (and widened) once per 4 rows; the bias, TFLite's double-precision requantization and the clamp stay the
TVM schedule's (compute_glue.fc_func), exactly the portable kernel's.  The weights are padded with zero rows to a
multiple of 4 and zero columns to whole words / vectors (the micro-kernel reads them whole; the input's last word
or vector is read partially, so the padding adds nothing).

Where it applies: TFLite requantization with symmetric int8 weights, as the templates road's variant
(templates/simd/arm_glue.py), and at least 4 units; ONNX requantization, weights with a zero point, fewer units
and float32 keep the portable schedule.
"""
from __future__ import annotations

import numpy as np

from ...ir import Graph, Op
from ...qparams import fully_connected_qparams
from ...targets import Target
from ..render import render
from ..templates.simd.arm_glue import ROW_STEP, ROWS
from ..templates.simd.common import ceil_to
from .tir_build import Axis, Block, Buf, register_intrin

ISAS = ("mve", "dsp")       # most capable first


def arm_isa(target: Target) -> str | None:
    """The most capable of ISAS the target has (the glue ops' tensorized kernels pick theirs so too)."""
    return next((n for n in ISAS if n in target.features), None)


def isa(graph: Graph, op: Op, target: Target) -> str | None:
    """The ISA op's FullyConnected is tensorized with on target, or None."""
    name = arm_isa(target)
    if (name is None or op.type != "FullyConnected" or graph.op_dtype(op) != "int8" or op.attrs.requant != "tflite"
            or graph.tensor(op.inputs[1]).dtype != "int8" or fully_connected_qparams(graph, op).weights_offset != 0):
        return None
    # Fewer units than one tile: compute_at gives acc only the units there are, not a whole tile to tensorize.
    return name if graph.tensor(op.inputs[1]).shape[0] >= ROWS else None


def padded_shape(name: str, units: int, depth: int) -> tuple[int, int]:
    """(units, row length) of the padded weights."""
    step = ROW_STEP[name]
    return ceil_to(units, ROWS), ceil_to(depth, step)


def padded_weights(name: str, weights: np.ndarray) -> np.ndarray:
    units, depth = weights.shape
    out = np.zeros(padded_shape(name, units, depth), np.int8)
    out[:units, :depth] = weights
    return out


def _intrin(fn: str, name: str, depth: int) -> dict:
    """acc[q] += sum over k < depth of x[k] * w[q][k] for the 4 rows of a tile (w: rows of the padded length)."""
    intrin = f"{fn}_dot{ROWS}"
    operands = [Buf("x", (depth,), "int8"), Buf("w", (ROWS, depth), "int8", True), Buf("acc", (ROWS,), "int32")]
    block = Block("acc", (Axis("q", ROWS), Axis("k", depth, reduce=True)), "acc", lambda v: [v["q"]],
                  lambda b, v: b["acc"][v["q"]] + b["x"][v["k"]].astype("int32") * b["w"][v["q"], v["k"]].astype("int32"))
    register_intrin(intrin, operands, block, intrin,
                    lambda b: [b["x"].access_ptr("r"), b["w"].access_ptr("r"), b["w"].strides[0],
                               b["acc"].access_ptr("rw")])
    return dict(name=intrin, intrin=intrin)


def schedule(func, fn: str, name: str, units: int, depth: int, stages, params: dict) -> tuple[object, str]:
    """Output units in tiles of 4 (the last may be partial: its acc rows are the padding's), the tile's acc by
    one micro-kernel call, its epilogue stages (stages other than acc) per tile, unrolled with `unroll_epilogue`;
    returns the function and the micro-kernels' C."""
    from tvm import s_tir
    sch = s_tir.Schedule(func)
    out = sch.get_sblock("output")
    n, o = sch.get_loops(out)
    tile, lane = sch.split(o, [None, ROWS])
    for stage in stages:
        if stage != "acc":
            sch.compute_at(sch.get_sblock(stage), tile)
    acc = sch.get_sblock("acc")
    sch.compute_at(acc, tile)
    loops = sch.get_loops(acc)
    init = sch.decompose_reduction(acc, loops[2])
    for loop in sch.get_loops(init)[2:]:
        sch.unroll(loop)
    entry = _intrin(fn, name, depth)
    sch.tensorize(sch.get_loops(acc)[2], entry["intrin"])
    if params["unroll_epilogue"]:
        for stage in stages:
            if stage != "acc":
                sch.unroll(sch.get_loops(sch.get_sblock(stage))[-1])
        sch.unroll(lane)
    rows, row = padded_shape(name, units, depth)
    micro = render(f"micro/fc_{name}.c.j2", k=dict(fn=fn, K=depth, KP=row), m=entry)
    return sch.mod["main"], micro
