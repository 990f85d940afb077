"""Templates backend: each op becomes a Jinja-rendered C kernel specialised on its constant shapes; on
targets with SIMD features, conv-like int8 layers get the variant simd/ selects."""
from __future__ import annotations

import numpy as np

from ...errors import DwsError
from ...ir import Graph, Op
from ...ops import PER_IMAGE, is_pointwise, touches_int8
from ...qparams import is_hybrid
from ...targets import Target
from . import simd
from ...row_fusion import RowFusion
from ..kernel import Kernel, kernel_name, with_scratch
from ..row_pipeline import RowKernels, fusion_kernels
from ..render import comment_safe, render, scratch_of
from .contexts import CONSTANT_KEYS, KERNELS
from .streams import overlap_lags


def _template(graph: Graph, op: Op) -> str:
    stem = KERNELS[op.type][0]
    if is_hybrid(graph, op):
        return f"kernels/{'conv2d' if op.type == 'Conv2D' else 'depthwise_conv2d'}_hybrid_f32.c.j2"
    if is_pointwise(graph, op):
        stem = "pointwise_conv2d"
    # Quantize and Dequantize convert between the two; their templates carry the int8 side's suffix.
    return f"kernels/{stem}_{'s8' if touches_int8(graph, op) else 'f32'}.c.j2"


def kernel_options(graph: Graph, op: Op, target: Target) -> dict[str, int]:
    """Every choice `op` has on `target`, "portable" first, then each of the registry's variants for the target
    that applies -> the bytes of its constant tables (one selection per choice, nothing rendered)."""
    ctx = _context(graph, op, title="")
    out = {simd.PORTABLE: _const_bytes(ctx)}
    for name in simd.offered(target):
        chosen = simd.select(graph, op, target, dict(ctx), name)
        if chosen is not None and simd.variant_name(chosen) == name:
            out[name] = _const_bytes(chosen[1])
    return out


def kernel_choices(graph: Graph, op: Op, target: Target) -> list[str]:
    """What `schedules[op.index]["kernel"]` may name for `op` on `target`: "portable" and the SIMD variants."""
    return list(kernel_options(graph, op, target))


def kernel_used(graph: Graph, op: Op, target: Target, kernel: str | None = None) -> str:
    """The variant `op` gets on `target` for the tuning choice `kernel` (None: the default): "portable" or
    the SIMD variant's template stem."""
    chosen = simd.select(graph, op, target, _context(graph, op, title=""), kernel)
    return simd.variant_name(chosen) if chosen else simd.PORTABLE


def kernel_requant_mode(graph: Graph, op: Op, target: Target, kernel: str | None = None) -> str | None:
    """The requantization mode ("round", "mixed", "generic", "onnx", ...) of the variant `op` gets on `target`
    for the tuning choice `kernel`; None on the portable kernel."""
    chosen = simd.select(graph, op, target, _context(graph, op, title=""), kernel)
    return chosen[1].get("rq_mode") if chosen else None


def kernel_constants(graph: Graph, op: Op, target: Target, kernel: str | None = None) -> int:
    """Bytes of the constant tables `op`'s kernel has on `target` for the tuning choice `kernel` (None: the
    default), without rendering it (the flash budget's estimate, flash_budget.py)."""
    ctx = _context(graph, op, title="")
    chosen = simd.select(graph, op, target, ctx, kernel)
    return _const_bytes(chosen[1] if chosen else ctx)


def _const_bytes(ctx: dict) -> int:
    return sum(np.asarray(ctx[k]).nbytes for k in ctx.get("constant_keys", CONSTANT_KEYS) if ctx.get(k) is not None)


def _context(graph: Graph, op: Op, title: str) -> dict:
    ctx = KERNELS[op.type][1](graph, op)
    ctx.update(fn=kernel_name(op), title=title)
    return ctx


def _kernel_choice(graph: Graph, op: Op, target: Target, schedule: dict) -> str | None:
    unknown = set(schedule) - {"kernel"}
    if unknown:
        raise DwsError(f"{op.where()}: unknown templates schedule parameter(s) {sorted(unknown)}; known: kernel")
    kernel = schedule.get("kernel")
    choices = kernel_choices(graph, op, target) if kernel is not None else []
    if kernel is not None and kernel not in choices:
        raise DwsError(f"{op.where()}: kernel '{kernel}' does not apply on {target.name}; choices: {', '.join(choices)}")
    return kernel


def generate_kernels(graph: Graph, target: Target, schedules: dict[int, dict] | None = None) -> list[Kernel]:
    """Portable C kernels, except where simd/ has a variant for the target's features.
    schedules: op index -> {"kernel": "portable" | <variant>} (from tuning); default: the preferred variant."""
    kernels = []
    for op in graph.ops:
        kernel = _kernel_choice(graph, op, target, (schedules or {}).get(op.index, {}))
        ctx = _context(graph, op, title=comment_safe(op.where()))
        template = _template(graph, op)
        variant = simd.select(graph, op, target, ctx, kernel)
        if variant is not None:
            template, ctx = variant
        # the banner names the variant (or the portable kernel's template)
        stem = simd.variant_name(variant) if variant else template.removeprefix("kernels/").removesuffix(".c.j2")
        ctx["title"] = comment_safe(f"{op.where()}, kernel {stem}" + (" (portable)" if variant is None else ""))
        const_bytes = _const_bytes(ctx)
        images = graph.tensor(op.inputs[0]).shape[0] if op.type in PER_IMAGE else 1
        source = render(template, k=ctx)   # records the scratch views the template declares in ctx
        kernels.append(with_scratch(Kernel(op_index=op.index, fn=ctx["fn"], source=source, const_bytes=const_bytes,
                                           images=images, overlap=overlap_lags(graph, op, stem)), *scratch_of(ctx)))
    return kernels


def row_kernels(graph: Graph, target: Target, fusion: RowFusion, schedules: dict[int, dict] | None = None,
                rendered: dict | None = None) -> RowKernels:
    """The kernels of a row fusion (row_pipeline.py): the first op's one-row instances and each later op's
    instance on its window, each the variant the layer's schedule names if it applies to that shape, else
    the one simd/ selects for it. rendered: the instances rendered for other chains of the graph (an op's
    instance on given rows is the same in every chain), filled in."""
    rendered = {} if rendered is None else rendered

    def one(g: Graph) -> Kernel:
        op = g.ops[0]
        # an op's one-row graph is set by its inputs' shapes and its padding (element-wise ops have none)
        key = (op.index, tuple(g.tensor(n).shape for n in op.inputs), getattr(op.attrs, "pad", None))
        if key not in rendered:
            schedule = (schedules or {}).get(op.index, {})
            if schedule.get("kernel") is not None and schedule["kernel"] not in kernel_choices(g, op, target):
                schedule = {}
            rendered[key] = generate_kernels(g, target, {op.index: schedule})[0]
        return rendered[key]
    return fusion_kernels(graph, fusion, one)
