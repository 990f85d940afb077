"""Cortex-M variants of the glue ops around the convolutions (the templates backend's portable kernels otherwise).

- FullyConnected (int8, TFLite requantization, symmetric weights): 4 output rows per step, so each input value is
  loaded and widened once per 4 rows: DSP (SXTB16 + SMLAD on the int8 weights, 4 bytes a word), MVE (VMLADAVA,
  16 bytes a vector), Thumb-2 (multiply-accumulate, rows interleaved by 4). Weights stay int8, so the layer's
  flash is the portable kernel's (plus row padding). The requantization is TFLite's float-scale one,
  round(double(acc) * scale), exactly the portable kernel's; the accumulator is the portable kernel's int32
  sum (SMLAD and VMLADAVA wrap around in int32 as it does), so the output is bit for bit the same.
ONNX-requantized and hybrid layers, and weights with a zero point, keep the portable kernel.
"""
from __future__ import annotations

import numpy as np

from ....ir import Graph, Op
from ....targets import Target

# target feature -> the ISA of its variants, most capable first
ISAS = (("mve", "mve"), ("dsp", "dsp"), ("thumb2", "tiled"))
# ISA -> how many weight bytes one step reads (rows are padded with zeros to a multiple)
ROW_STEP = {"mve": 16, "dsp": 4}
ROWS = 4        # output rows per step


def _isa(target: Target) -> str | None:
    return next((isa for feature, isa in ISAS if feature in target.features), None)


def fc_name(isa: str) -> str:
    return f"fully_connected_s8_{isa}_{ROWS}r"


def variants(target: Target) -> tuple[str, ...]:
    isa = _isa(target)
    return () if isa is None else (fc_name(isa),)


def _fc_weights(isa: str, rows: np.ndarray) -> tuple[np.ndarray, int]:
    """The weights as the variant reads them, and the padded row length (tiled: K, rows interleaved)."""
    o, k = rows.shape
    if isa == "tiled":
        blocks = -(-o // ROWS)
        padded = np.zeros((blocks * ROWS, k), np.int8)
        padded[:o] = rows
        return padded.reshape(blocks, ROWS, k).transpose(0, 2, 1).reshape(blocks, k * ROWS), k
    step = ROW_STEP[isa]
    kp = -(-k // step) * step
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
    return f"kernels/{name}.c.j2", out


def select(graph: Graph, op: Op, target: Target, ctx: dict, kernel: str | None) -> tuple[str, dict] | None:
    """The Cortex-M variant of a glue op, or None (the portable kernel)."""
    isa = _isa(target)
    if isa is None or graph.op_dtype(op) != "int8":
        return None
    if op.type == "FullyConnected" and kernel in (None, fc_name(isa)):
        return _fully_connected(isa, graph, op, ctx)
    return None
