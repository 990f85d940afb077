"""x86 variants (features `avx2` + `fma`: x86_64-v3; `avx512` + `avx512vnni`: x86_64-v4), <immintrin.h>.

Unlike the Arm variants, which cover int8 convolutions only, the x86 levels vary whole models: int8 and
float32 Conv2D / DepthwiseConv2D (avx_s8.py, avx_f32.py) and the glue ops around them (avx_glue.py).

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

A Level is what simd/__init__.py registers per feature; it selects for any op (`select_op`).
"""
from __future__ import annotations

from dataclasses import dataclass

from ....ir import Graph, Op


@dataclass(frozen=True)
class Level:
    name: str                 # "avx2" | "avx512": the ISA part of template names
    lanes: int                # 32-bit lanes per vector
    vnni: bool                # vpdpbusd / vpdpwssd available
    lower: "Level | None"     # the level below, whose variants this one may also use

    @property
    def s8_name(self) -> str:
        """The ISA part of int8 template names: the int8 kernels of AVX-512 need VNNI."""
        return "avx512vnni" if self.vnni else self.name

    @property
    def VARIANTS(self) -> tuple[str, ...]:
        from . import avx_f32, avx_glue, avx_hybrid, avx_s8
        own = (avx_s8.variants(self) + avx_f32.variants(self) + avx_hybrid.variants(self)
               + avx_glue.variants(self))
        return own + (self.lower.VARIANTS if self.lower else ())

    def select_op(self, graph: Graph, op: Op, ctx: dict, kernel: str | None = None) -> tuple[str, dict] | None:
        """The preferred variant of `op`, or exactly `kernel` (a name from VARIANTS) when it applies."""
        from . import avx_f32, avx_glue, avx_hybrid, avx_s8
        if kernel is not None and kernel not in self.VARIANTS:
            return None
        if kernel is not None and self.lower is not None and kernel in self.lower.VARIANTS:
            return self.lower.select_op(graph, op, ctx, kernel)
        for module in (avx_s8, avx_f32, avx_hybrid, avx_glue):
            chosen = module.select(self, graph, op, ctx, kernel)
            if chosen is not None:
                return chosen
        # a layer this level's variants decline (too narrow for its vectors, say) may still have one below
        return self.lower.select_op(graph, op, ctx) if kernel is None and self.lower else None


AVX2 = Level("avx2", lanes=8, vnni=False, lower=None)
AVX512 = Level("avx512", lanes=16, vnni=True, lower=AVX2)


def ceil_to(n: int, step: int) -> int:
    return -(-n // step) * step


def template(name: str) -> str:
    return f"kernels/{name}.c.j2"


def wanted(name: str, kernel: str | None) -> bool:
    """Whether the variant `name` may be chosen: any when kernel is None (the preferred one), else only it."""
    return kernel is None or kernel == name


# Register tiles of the GEMM variants, pixels x output channels, wide first: (dtype, ISA part of the name) ->
# tiles. Each keeps 16-24 independent accumulators in flight (the multiply-add latency times its throughput).
GEMM_TILES = {("s8", "avx512vnni"): ("4x64", "16x16"), ("s8", "avx2"): ("4x16",),
              ("f32", "avx512"): ("6x64", "14x16"), ("f32", "avx2"): ("6x16",)}


def gemm_choice(names: tuple[str, ...], lanes: int, channels: int, kernel: str | None) -> str | None:
    """The GEMM variant of `names` (one per tile, wide first) for a layer of `channels` output channels: `kernel`
    if it is one of them, else the wide tile, or the narrow one where a single vector holds every channel."""
    if kernel is not None:
        return kernel if kernel in names else None
    return names[-1] if channels <= lanes else names[0]
