"""Per-target SIMD kernel variants for the templates backend, chosen from the target's features.

Every variant is an entry of templates/kernels/variants.toml (simd/registry.py): its name, op kind, ISA and
features, the family template it renders, tile, weights, write order and cost estimate. A target offers the
entries of its primary ISA (ISAS below); the ISA modules here walk them in the registry's order of preference
and build a variant's context where its shortcuts are exact (what cannot be a fact: accumulator bounds,
requantization modes, stack budgets), returning (variant name, context); `select` adds the template and tile.

`select` returns (template, context) for an op that has a faster variant on `target`, or None to keep
the portable kernel. Variants compute exactly what the portable kernel computes (TFLite int8 semantics,
bit for bit); each variant module checks at generation time that its shortcuts are exact for the layer's
constant weights and quantization (shapes, strides, padding, accumulator bounds), and declines otherwise.
On Cortex-M, int8 Conv2D / DepthwiseConv2D have variants, with TFLite's requantization or onnxruntime's (requant
"onnx": the same MACs, a float32 epilogue, templates/kernels/_onnx_requant.j2), and so have the int8 glue ops of
arm_glue.py; hybrid and float layers keep the portable kernels. Like the portable kernels of these ops, a variant
computes one image;
the library calls it once per image of a batch (ops.PER_IMAGE).

- DSP (feature `dsp`: Cortex-M4/M7/M33), dsp.py, arm_acle.h (SXTB16, SMLAD, SMLABB/SMLATT, SSAT):
  pointwise_conv2d_s8_dsp_{4x2,1x2}, conv2d_s8_dsp_im2col_{2x2,1x2} (tiles: pixels x output channels),
  depthwise_conv2d_s8_dsp_4c (4 channels per step, any kernel up to 25 taps, multiplier 1, output regions),
  depthwise_conv2d_s8_dsp_padded_4c (any depthwise layer: 4 channels per step on a padded copy of each tile's
  input window, tiles.py), depthwise_conv2d_s8_dsp_pairs_1c (any kernel whose rows have at most 64 taps: one
  channel at a time, taps in pairs along a padded plane, planar.py; the default for 1xK and Kx1).
  With int8 weights in flash (half the constants; dsp_w8.py, never the default: `--optimize`, flash_budget.py,
  picks them where the int16 weights would not fit): pointwise_conv2d_s8_dsp_w8_{4x2,1x2},
  conv2d_s8_dsp_im2col_w8_{2x2,1x2}, depthwise_conv2d_s8_dsp_w8_4c.
- MVE (feature `mve`: Cortex-M55), mve.py, arm_mve.h (VMLADAVA, VMULLB/T, VQRDMULH, VRSHL):
  pointwise_conv2d_s8_mve_2x4, conv2d_s8_mve_im2col_{2x4,1x4}, depthwise_conv2d_s8_mve_8c,
  depthwise_conv2d_s8_mve_padded_8c (any depthwise layer, tiles.py).
- Cortex-M glue ops (int8), arm_glue.py: fully_connected_s8_{dsp,mve,tiled}_4r (4 rows per step), mul_s8_dsp,
  add_s8_dsp, mean_s8_dsp (SMMLAR / SXTAB16; M55 too), mul_s8_mve (elementwise and per-channel broadcast),
  lookup_table_s8_mve (the table ops, MVE gather loads).
- x86 (features `avx2`: x86_64-v3, `avx512vnni`: x86_64-v4), avx.py with avx_s8.py, avx_f32.py, avx_hybrid.py,
  avx_glue.py, avx_elementwise.py (shared pieces in avx_common.py), immintrin.h: int8, float32 and hybrid convolutions and the glue
  ops, the whole model (see avx.py).

Setting the environment variable DWSCODEGEN_PORTABLE_KERNELS=1 keeps every op on its portable kernel
(benchmarks/cortexm_layers.py uses it to measure the portable baseline).

Requantization shortcuts shared by both (common.py; checked in tests/test_simd_kernels.py):
  SaturatingRoundingDoublingHighMul(a, m) = (a*m + 2^30) >> 31   for m in [0, 2^31) (arithmetic shift)
  RoundingDivideByPOT(y, e) = (y + 2^(e-1) + s) >> e             for e >= 1, s = -1 if y < 0 else 0,
and s may be taken from the accumulator's sign instead of y's (m >= 0 gives them the same sign, and
where y = 0 < -a both forms give 0). Folding the output zero point into the rounding constant
(rc = 2^(e-1) + zp * 2^e) and doubling a, the whole TFLite requantization plus output offset becomes
    hi32(2a * m + 2^31 + (rc + s) * 2^32) >> e
one SMMLAR and a shift on DSP, and VQRDMULH + adds + VRSHL on MVE; exact whenever no intermediate
leaves int32, which is checked per channel from the bound |acc| <= |bias| + (|in_offset| + 128) * sum|w|.
Output channels that do not depend on the input (all-zero weights, a zero multiplier: trained models' dead
channels) are folded to their TFLite output value first (common.fold_constants), so they never decide the
requantization of the other channels; DSP layers whose channels mix right shifts and none use the "mixed" form.
"""
from __future__ import annotations

import os

from ....ir import Graph, Op
from ....targets import Target
from . import arm_glue, dsp_w8, mve, registry, tiled
from .avx import AVX2, AVX512
from .common import conv_info

# target feature -> the module of its variants, most capable first: the target's primary ISA (the registry's `isa`)
ISAS = (("mve", mve), ("dsp", dsp_w8), ("avx512vnni", AVX512), ("avx2", AVX2), ("thumb2", tiled))


def primary_isa(target: Target) -> str | None:
    return next((feature for feature, _ in ISAS if feature in target.features), None)


def _isa(target: Target):
    return dict(ISAS).get(primary_isa(target))


PORTABLE_ENV = "DWSCODEGEN_PORTABLE_KERNELS"


def portable_forced() -> bool:
    return os.environ.get(PORTABLE_ENV, "").strip() not in ("", "0")


PORTABLE = "portable"


def select(graph: Graph, op: Op, target: Target, ctx: dict, kernel: str | None = None) -> tuple[str, dict] | None:
    """`kernel` (a tuning choice): "portable", a variant's name, or None for the preferred variant. Returns the
    template to render (the registry's) and its context, which names the variant (`variant`) and carries the
    registry's tile."""
    if kernel == PORTABLE or portable_forced():
        return None
    if kernel is not None and kernel not in offered(target):
        return None
    chosen = _select(graph, op, target, ctx, kernel)
    if chosen is None:
        return None
    name, out = chosen
    variant = registry.get(name)
    if variant is None:     # a module's new variant without its entry: a developer's error, said as such
        raise KeyError(f"variant {name!r} has no entry in {registry.REGISTRY_FILE}: add one (op, isa, template, ...)")
    return variant.template, dict(out, **variant.context())


def _select(graph: Graph, op: Op, target: Target, ctx: dict, kernel: str | None) -> tuple[str, dict] | None:
    """(variant name, its context) from the target's ISA module."""
    isa = _isa(target)
    if hasattr(isa, "select_op"):       # the x86 levels vary every op kind (avx.py), not only int8 convs
        return isa.select_op(graph, op, ctx, kernel)
    if op.type not in ("Conv2D", "DepthwiseConv2D"):
        return arm_glue.select(graph, op, target, ctx, kernel)     # Cortex-M glue ops (arm_glue.py)
    info = conv_info(graph, op, onnx=True)     # every Arm variant has the "onnx" requantization
    if info is None:
        return None
    return None if isa is None else isa.select(info, ctx, kernel)


def variant_name(chosen: tuple[str, dict]) -> str:
    """The name of a selected variant (its context's `variant`)."""
    return chosen[1]["variant"]


def offered(target: Target) -> tuple[str, ...]:
    """Every variant name the target has (the registry's, for its primary ISA and features)."""
    return tuple(v.name for v in registry.offered(primary_isa(target), target.features))

