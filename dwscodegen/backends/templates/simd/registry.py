"""The one list of kernel variants (templates/kernels/variants.toml, whose header documents the fields), loaded
once: what every consumer of variant facts reads (the ISA modules here, generate.py, streams.py, the tuner,
variant_costs.py, the tests)."""
from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from functools import lru_cache

from ....paths import TEMPLATES_DIR

REGISTRY_FILE = TEMPLATES_DIR / "kernels" / "variants.toml"
FIELDS = {"op", "dtype", "isa", "features", "template", "tile", "weights", "unroll", "order", "default", "stream",
          "estimate", "constraints"}
ORDERS = ("pixels", "channels")


@dataclass(frozen=True)
class Stream:
    walk: str                 # pixels | buffered | whole | elements (streams.py)
    pixels: int
    tail_tile: bool = False


@dataclass(frozen=True)
class Variant:
    name: str
    op: str
    dtype: str
    isa: tuple[str, ...]
    features: frozenset[str]
    template: str
    tile: tuple[int, int] | None = None
    weights: str | None = None
    unroll: int | None = None
    order: str = "pixels"
    default: bool = True
    stream: Stream | None = None
    estimate: tuple[float, int] | None = None     # (instructions per MAC, code bytes)
    constraints: dict = field(default_factory=dict)

    @property
    def pixels(self) -> int:
        return self.tile[0] if self.tile else 1

    def context(self) -> dict:
        """What the variant's template reads from the registry: its name (the banner), tile, unroll and loop
        order (the GEMM templates' pixel_loop macros read ORDER)."""
        out: dict = dict(variant=self.name, ORDER=self.order)
        if self.tile is not None:
            out["tile"] = self.tile
        if self.unroll is not None:
            out["UNROLL"] = self.unroll
        return out


def _variant(name: str, entry: dict) -> Variant:
    unknown = set(entry) - FIELDS
    if unknown:
        raise ValueError(f"{REGISTRY_FILE}: [{name}]: unknown field(s) {sorted(unknown)}; known: {sorted(FIELDS)}")
    if entry.get("order", "pixels") not in ORDERS:
        raise ValueError(f"{REGISTRY_FILE}: [{name}]: order {entry['order']!r}; known: {list(ORDERS)}")
    stream = entry.get("stream")
    estimate = entry.get("estimate")
    return Variant(name=name, op=entry["op"], dtype=entry["dtype"], isa=tuple(entry["isa"]),
                   features=frozenset(entry["features"]), template=entry["template"],
                   tile=tuple(entry["tile"]) if "tile" in entry else None, weights=entry.get("weights"),
                   unroll=entry.get("unroll"), order=entry.get("order", "pixels"), default=entry.get("default", True),
                   stream=None if stream is None else Stream(**stream),
                   estimate=None if estimate is None else (float(estimate["per_mac"]), int(estimate["code"])),
                   constraints=dict(entry.get("constraints", {})))


@lru_cache(maxsize=1)
def variants() -> dict[str, Variant]:
    """name -> Variant, in the file's order (the order of preference within a family)."""
    with open(REGISTRY_FILE, "rb") as f:
        data = tomllib.load(f)
    return {name: _variant(name, entry) for name, entry in data.items()}


def get(name: str) -> Variant | None:
    return variants().get(name)


def offered(isa: str | None, features) -> list[Variant]:
    """The variants a target offers: those of its primary ISA (simd.ISAS) whose features it has."""
    if isa is None:
        return []
    return [v for v in variants().values() if isa in v.isa and v.features <= set(features)]


def family(isa: str, op: str, dtype: str = "int8", weights: str | None = None) -> list[Variant]:
    """The variants of one op kind on one ISA, preferred first (weights: only those storing them so)."""
    return [v for v in variants().values()
            if isa in v.isa and v.op == op and v.dtype == dtype and weights in (None, v.weights)]


def names(isa: str, op: str, dtype: str = "int8", weights: str | None = None) -> tuple[str, ...]:
    return tuple(v.name for v in family(isa, op, dtype, weights))
