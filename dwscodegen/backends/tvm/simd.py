"""The TVM road on SIMD targets: int8 Conv2D / DepthwiseConv2D tensorized with the micro-kernels of the
target's features (targets/*.toml), most capable first: `mve` (Cortex-M55), `dsp` (Cortex-M4/M7/M33),
`thumb2` (Cortex-M3: register-tiled plain C).

A layer is tensorized where the templates road's variant of that ISA would apply: TFLite requantization with
an exact plan, the templates road's per ISA (PLANS: dead output channels folded to constants, common.plan_layer,
and the DSP "mixed" form; per ISA its weight format and accumulator bounds), and for depthwise the output cut
into regions with the same taps (common.depthwise_regions).  ONNX requantization (requant "onnx", plan "onnx":
the same MACs, onnxruntime's float32 epilogue) is tensorized too, on every ISA here (ONNX_ISAS): the TIR of the
epilogue is the portable compute's requantize_onnx (arith.py) with the per-channel float32 scales a constant
array (simd_gemm.rq_const; Thumb-2: simd_gemm.split_scale), and the micro-kernels call the templates road's
epilogue (templates/kernels/_onnx_requant.j2 through the _dsp.j2 / _mve.j2 / _tiled.j2 requantization macros:
VCVTR / VCVTN on the FPU, the integer form on Cortex-M3; Thumb-2 scales >= 0 only, as tiled.select).  Elsewhere
(hybrid, float32, x86, depth multipliers, accumulators that may leave int32) the portable TVM schedule of
backend.py computes the layer, as the templates road keeps its portable kernel there.

The kernel's source: header comment (the schedule), the micro-kernels (templates/micro/<isa>.c.j2, built from
the templates road's macros), the constant arrays, the TVM function calling the micro-kernels, the wrapper.
"""
from __future__ import annotations

import json

import numpy as np

from ...errors import DwsError
from ...ir import Graph, Op
from ...ops import PER_IMAGE
from ...targets import Target
from ..kernel import Kernel, kernel_name
from ..render import c_array_body, render
from ..templates.simd import common, dsp, mve, registry
from . import knobs
from . import schedules_simd as ss
from . import simd_depthwise as sd
from . import simd_gemm as sg
from .emit import lower_kernel
from .tir_build import prim_func

ISAS = ("mve", "dsp", "thumb2")     # most capable first
ONNX_ISAS = ("mve", "dsp", "thumb2")    # whose micro-kernels have onnxruntime's float32 epilogue (requant "onnx")
STACK_BUDGET = common.STACK_BUDGET  # bytes of stack temporaries (patches, windows, tiles), as the templates road


def isa(target: Target) -> str | None:
    return next((name for name in ISAS if name in target.features), None)


# isa -> (layer facts -> (layer with its constant channels folded, requantization plan) or None): the templates
# road's choice per ISA (templates/simd/dsp.py, mve.py, tiled.py), so that both roads take the same layers alike.
PLANS = {
    "dsp": lambda info: common.plan_layer(info, prescale_doubling=True, weight_limit=dsp.INT16_LIMIT),
    "mve": mve.plan_layer_mve,
    # The register tiles have no "mixed" form and keep dead channels (tiled.select).
    "thumb2": lambda info: _unfolded(info, common.requant_plan(info, prescale_doubling=True, weight_limit=None,
                                                                mixed=False)),
}


def _unfolded(info: common.ConvInfo, plan):
    if plan is not None and plan.mode == "onnx" and np.any(info.onnx_scale < 0):
        return None     # the integer form of the float32 epilogue takes scales >= 0 (tiled.select)
    return None if plan is None else (info, plan)


def applies(graph: Graph, op: Op, target: Target) -> tuple[str, common.ConvInfo, object] | None:
    """(isa, layer facts with constant channels folded, requantization plan) when `op` is tensorized on
    `target`, else None."""
    name = isa(target)
    info = common.conv_info(graph, op, onnx=name in ONNX_ISAS) if name else None
    if info is None or (info.depthwise and common.depthwise_regions(info) is None):
        return None
    if info.act_min == info.act_max:    # a constant output: the portable kernel's fill (schedules.constant_output)
        return None
    planned = PLANS[name](info)
    return None if planned is None else (name, *planned)


def schedule_kind(graph: Graph, op: Op, target: Target, base: str) -> str:
    """The knob family of op's kernel on target: "<base>_<isa>" when tensorized, else `base`."""
    found = applies(graph, op, target)
    return base if found is None or base not in ("pointwise", "conv", "depthwise") else f"{base}_{found[0]}"


def _array(ctype: str, name: str, values, per_line: int) -> str:
    values = np.asarray(values).reshape(-1)
    return f"static const {ctype} {name}[{values.size}] = {{\n{c_array_body(values, per_line)}\n}};\n"


def _micro_context(L, fn: str) -> dict:
    """What the micro-kernel macros read of the layer (the templates road's context names)."""
    i = L.info
    ctx = dict(fn=fn, RQW=L.rq_words, rq_mode=L.plan.mode, output_offset=i.out_offset, act_min=i.act_min,
               act_max=i.act_max, C=i.C, W=i.W, DH=i.DH, DW=i.DW, QB=4, vectors=list(L.vectors))
    if isinstance(L, sg.Layer):
        ctx.update(K=L.K, NW=L.NW, K16=L.K16, tail=L.tail)
    if L.isa == "dsp":       # the words per K-loop iteration of the DSP GEMM family (templates/kernels/variants.toml)
        ctx["UNROLL"] = registry.family("dsp", "pointwise_conv2d", weights="int16")[0].unroll
    if L.isa == "mve":
        ctx["rq_mode"] = sg.mve_mode(L.plan)
    return ctx


def _stack_bytes(L, parts) -> int:
    """The tile temporaries of every part (each keeps its own: no StorageRewrite, lower.py)."""
    per_pixel = (L.KX if L.windowed else 0) + (4 * L.NW if L.isa == "dsp" else 0)
    return sum(min(p.P, p.npix) * (per_pixel + 4 * p.Q) for p in parts)


def _gemm(info, plan, name: str, params: dict, fn: str):
    L, consts = sg.layer(name, info, plan)
    found = sg.parts(L.npix, info.OC, params["pixels"], params["channels"])
    if _stack_bytes(L, found) > STACK_BUDGET:
        return None
    temps = [t for part in found for t in sg.temporaries(L, part)]
    blocks = [b for part in found for b in sg.blocks(L, part)]
    func = prim_func(sg.parameters(L, consts), temps, blocks)
    func, micro = ss.schedule_gemm(func, L, found, fn, params)
    return L, consts, func, micro


def _depthwise(info, plan, name: str, params: dict, fn: str):
    L, consts = sd.layer(name, info, plan, params.get("lanes", sd.LANES.get(name, 1)))
    found = sd.parts(L)
    temps = [t for part in found for t in sd.temporaries(L, part)]
    blocks = [b for part in found for b in sd.blocks(L, part)]
    func = prim_func(sd.parameters(L, consts), temps, blocks)
    func, micro = ss.schedule_depthwise(func, L, found, fn, params)
    return L, consts, func, micro


def tensorized_kernel(graph: Graph, op: Op, target: Target, base: str, overrides: dict | None) -> Kernel | None:
    found = applies(graph, op, target)
    if found is None:
        return None
    name, info, plan = found
    fn = kernel_name(op)
    kind = f"{base}_{name}"
    params = knobs.resolve(kind, op.where(), overrides, (info.KH, info.KW), info.OC, info.C)
    if info.depthwise:
        L, consts, func, micro = _depthwise(info, plan, name, params, fn)
    else:
        # The default pixel tile shrinks until its patches fit the stack budget, as the templates road's tiles.
        chosen = "pixels" in (overrides or {})
        tiles = [params["pixels"]] if chosen else sorted(
            (p for p in knobs.SPACE[kind]["pixels"] if p <= params["pixels"]), reverse=True)
        for pixels in tiles:
            built = _gemm(info, plan, name, dict(params, pixels=pixels), fn)
            if built is not None:
                params = dict(params, pixels=pixels)
                break
        else:
            if chosen:
                raise DwsError(f"{op.where()}: pixels={params['pixels']}: the tiles' patches exceed the "
                               f"{STACK_BUDGET}-byte stack budget; choose fewer pixels")
            return None     # not even one pixel's patch fits: the portable schedule
        L, consts, func, micro = built
    # Never inlined into the library's run function: how gcc allocates registers in its loops then depends on
    # what else the run function holds live, and a one-layer library (what the tuner measures) and the model
    # would differ by up to a half.
    body = lower_kernel(func, f"{fn}_tvm", op.where(), max_stack_bytes=STACK_BUDGET, calls=True,
                        attributes="__attribute__((noinline)) ")
    micro_c = render(f"micro/{name}.c.j2", k=_micro_context(L, fn), micro=micro)
    what = {"pointwise": "pointwise (1x1) convolution", "conv": f"convolution {info.KH}x{info.KW}",
            "depthwise": f"depthwise {info.KH}x{info.KW}, multiplier 1"}[base]
    x = graph.tensor(op.inputs[0])
    header = (f"/*\n * op {op.index} '{op.name}' ({op.type}), TVM backend, tensorized for {name.upper()}\n"
              f" * int8 {what}, stride {info.SH}x{info.SW}, dilation {info.DH}x{info.DW}, padding (top, bottom, "
              f"left, right) {(info.PT, info.PB, info.PL, info.PR)}, activation {op.attrs.activation.label()}\n"
              f" * input [{info.H}][{info.W}][{info.C}] -> output [{info.OH}][{info.OW}][{info.OC}], one image per call\n"
              f" * schedule {json.dumps(params, sort_keys=True)}: micro-kernels "
              f"{', '.join(m['name'].removeprefix(fn + '_') for m in micro)}; requantization \"{plan.mode}\"\n */\n")
    per_line = {"weights": 16 if consts["weights"][0] == "int8_t" else 8, "bias": 8, "rq": 8, "scale": 8}
    arrays = "".join(_array(t, f"{fn}_{k}", v, per_line[k]) for k, (t, v) in consts.items())
    args = ", ".join(["input"] + [f"{fn}_{k}" for k in consts] + ["output"])
    wrapper = (f"static void {fn}(const int8_t *restrict input, int8_t *restrict output)\n"
               f"{{\n    {fn}_tvm({args});\n}}\n")
    const_bytes = sum(np.asarray(v).nbytes for _, v in consts.values())
    images = x.shape[0] if op.type in PER_IMAGE else 1
    return Kernel(op_index=op.index, fn=fn, source=f"{header}{micro_c}{arrays}\n{body}\n{wrapper}",
                  const_bytes=const_bytes, images=images)
