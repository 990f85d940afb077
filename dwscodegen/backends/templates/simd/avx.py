"""x86 variants (features `avx2` + `fma`: x86_64-v3; `avx512` + `avx512vnni`: x86_64-v4), <immintrin.h>.

Unlike the Arm variants, which cover int8 convolutions only, the x86 levels vary whole models: int8 and
float32 Conv2D / DepthwiseConv2D (avx_s8.py, avx_f32.py) and the glue ops around them (avx_glue.py; table
lookups, Mul and HardSwish: avx_elementwise.py).

- Pointwise and im2col convolution are register-blocked GEMMs: a tile of P output pixels x NV vectors of
  output channels; weights are packed at generation time as [vector of L channels][K / step][L][step] so that
  one load feeds one multiply-add per pixel. int8: vpdpbusd (AVX-512 VNNI; u8 x s8, 4 products per lane, the
  input made unsigned by x + 128 and the 128 * sum(w) it adds taken out of the bias per channel) or vpmaddwd
  on int16 pairs (AVX2); float32: FMA with the pixel's value broadcast.
- Depthwise: channels in vectors, every tap unrolled, the output plane cut into regions whose in-bounds taps
  are the same (common.depthwise_regions), so no tap is bounds-checked.
- int8 requantization is vectorized and bit-exact with TFLite's double rounding (common.py's identity
  hi32(2a * m + 2^31) = SRDHM(a, m), 64-bit products by vpmuldq), proven exact per channel at generation time
  from the accumulator bounds; a layer whose bounds do not allow it keeps the portable kernel.

An Isa (a Level of avx_common.py and its variant modules) is what simd/__init__.py registers per feature; it
selects for any op (`select_op`).
"""
from __future__ import annotations

from dataclasses import dataclass

from ....ir import Graph, Op
from . import avx_elementwise, avx_f32, avx_glue, avx_hybrid, avx_s8, registry
from .avx_common import Level

MODULES = (avx_s8, avx_f32, avx_hybrid, avx_glue, avx_elementwise)


@dataclass(frozen=True)
class Isa:
    level: Level
    lower: "Isa | None"       # the level below, whose variants this one may also use

    @property
    def VARIANTS(self) -> tuple[str, ...]:
        """The registry's variants of this level (its primary ISA), the level below's included."""
        return tuple(v.name for v in registry.variants().values() if self.level.s8_name in v.isa)

    def select_op(self, graph: Graph, op: Op, ctx: dict, kernel: str | None = None) -> tuple[str, dict] | None:
        """The preferred variant of `op`, or exactly `kernel` (a name from VARIANTS) when it applies."""
        if kernel is not None and kernel not in self.VARIANTS:
            return None
        if kernel is not None and self.lower is not None and kernel in self.lower.VARIANTS:
            return self.lower.select_op(graph, op, ctx, kernel)
        for module in MODULES:
            chosen = module.select(self.level, graph, op, ctx, kernel)
            if chosen is not None:
                return chosen
        # a layer this level's variants decline (too narrow for its vectors, say) may still have one below
        return self.lower.select_op(graph, op, ctx) if kernel is None and self.lower else None


AVX2 = Isa(Level("avx2", lanes=8, vnni=False), lower=None)
AVX512 = Isa(Level("avx512", lanes=16, vnni=True), lower=AVX2)
