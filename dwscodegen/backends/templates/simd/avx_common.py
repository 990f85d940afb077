"""What the x86 variant modules share (avx.py describes them): the ISA level a variant is built for, template
names, the GEMM tiles."""
from __future__ import annotations

from dataclasses import dataclass

from .common import ceil_to  # noqa: F401  (re-exported for the x86 modules)


@dataclass(frozen=True)
class Level:
    name: str                 # "avx2" | "avx512": the ISA part of template names
    lanes: int                # 32-bit lanes per vector
    vnni: bool                # vpdpbusd / vpdpwssd available

    @property
    def s8_name(self) -> str:
        """The ISA part of int8 template names: the int8 kernels of AVX-512 need VNNI."""
        return "avx512vnni" if self.vnni else self.name


def template(name: str) -> str:
    """What a variant module returns for the variant `name`: its name (simd.select takes its template from the
    registry, templates/kernels/variants.toml)."""
    return name


def wanted(name: str, kernel: str | None) -> bool:
    """Whether the variant `name` may be chosen: any when kernel is None (the preferred one), else only it."""
    return kernel is None or kernel == name


# Register tiles of the GEMM variants, pixels x output channels, wide first, the last for layers of one vector of
# channels: (dtype, ISA part of the name) -> tiles. Each keeps as many independent accumulators in flight as the
# registers allow (AVX-512: 16-24 of 32; AVX2: 8-12 of 16, 6x16 measured 2 % faster than 4x16 on KWS's pointwise
# layers and 8x8 15 % faster than 4x8 on an 8-channel first conv).
GEMM_TILES = {("s8", "avx512vnni"): ("4x64", "16x16"), ("s8", "avx2"): ("6x16", "8x8"),
              ("f32", "avx512"): ("6x64", "14x16"), ("f32", "avx2"): ("6x16",)}


def gemm_choice(names: tuple[str, ...], lanes: int, channels: int, kernel: str | None) -> str | None:
    """The GEMM variant of `names` (one per tile, wide first) for a layer of `channels` output channels: `kernel`
    if it is one of them, else the wide tile, or the narrow one where a single vector holds every channel."""
    if kernel is not None:
        return kernel if kernel in names else None
    return names[-1] if channels <= lanes else names[0]
