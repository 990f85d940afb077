"""s_tir schedules of the TVM backend, each derived from a small parameter dict (the tuner's knobs).

One schedule per kernel kind.  `resolve(kind, where, overrides, kernel, out_channels, in_channels)`
merges a caller's overrides into the op's defaults (`default_params`) and rejects unknown knobs or
bad values with a DwsError naming the op.  Knobs:

depthwise   c_split         inner channel tile, 0 = no split (whole channel dimension)
            order           "hwc": rows, columns, channel tiles; "hcw": channel tiles outside columns
            unroll_kernel   unroll the KHxKW window loops (padding predicates become per-tap constants)
pointwise   oc_tile         output channels accumulated together (acc[oc_tile] per pixel: every input
            conv            value loaded once per tile), 1 = one scalar accumulator
            unroll_tile     unroll the loops over the tile (accumulate, requantize, store)
            ic_unroll       unroll factor of the input-channel reduction loop, 1 = none
                            (>= the channels: the whole loop)
            unroll_kernel   (conv only) unroll the KHxKW window loops
add,        split           inner split of the element loop, 0 = none
elementwise unroll          unroll the inner loop (needs 2 <= split <= 16; the int8 stages then become
                            arrays of `split` values computed per outer iteration); elementwise =
                            Relu, Relu6, Quantize, Dequantize, Reshape
pool        c_tile          channels accumulated together (acc[c_tile] per pixel, the window loops
mean                        outside the tile: consecutive channels load together), 1 = a scalar
            unroll_tile     unroll the loops over the tile (accumulate, divide/requantize, store)
            unroll_kernel   unroll the window loops (default only up to 25 taps; Mean: the H*W loop)
fully_connected o_tile      outputs accumulated together (each input value loaded once per tile)
            unroll_tile     unroll the loops over the tile
            k_unroll        unroll factor of the depth (K) reduction loop, 1 = none
softmax     cache_exp       keep a row's exps in a temporary [depth] between the sum and the output
                            (default when depth <= 32); otherwise each pass recomputes them
pad         decompose       fill the output with the pad value, then copy the input box (no
                            predicates); false: one loop nest with an if_then_else per element
concat      partition       one loop per input (loop_partition of the axis loop); false: one loop
                            with a select between the inputs per element
Hybrid Conv2D (float32 input, int8 filter) takes the pointwise / conv knobs for its convolution; its
input quantization (range, quantize) is a plain pass over the input.  The glue schedules live in
tvm_schedules_glue.py.

Every stage that feeds the output (accumulator, int8 `biased`/`high`) is computed inside the
innermost output loop it depends on, so intermediates shrink to a scalar or one tile (the lowering
rejects temporaries > 256 B).  `vectorize` is not offered: the C lowering neutralises it.

Where a knob unrolls a loop that requantizes, the requantize stages become arrays over that loop
instead of one scalar: TVM's C code generator caches the text of min/max operands (`int32_t v_ =
...`) and would reuse a cached value across unrolled copies whose text is identical although the
scalar was rewritten in between (tvm_backend checks the emitted C for exactly that and refuses it).
"""
from __future__ import annotations

from ..errors import DwsError

DEFAULTS = {
    "depthwise": dict(c_split=0, order="hwc", unroll_kernel=True),
    "pointwise": dict(oc_tile=4, unroll_tile=True, ic_unroll=4),
    "conv": dict(oc_tile=4, unroll_tile=True, ic_unroll=1, unroll_kernel=True),
    "add": dict(split=0, unroll=False),
    "elementwise": dict(split=0, unroll=False),
    "pool": dict(c_tile=4, unroll_tile=True, unroll_kernel=True),
    "mean": dict(c_tile=4, unroll_tile=True, unroll_kernel=True),
    "fully_connected": dict(o_tile=4, unroll_tile=True, k_unroll=4),
    "softmax": dict(cache_exp=True),
    "pad": dict(decompose=True),
    "concat": dict(partition=True),
}
_CHOICES = {"order": ("hwc", "hcw")}
MAX_TILE = 16           # acc, biased, high [oc_tile] int32: within the 256-byte temporary limit
MAX_UNROLLED_TAPS = 25  # default unroll_kernel only up to a 5x5 window
MAX_UNROLLED_ADD = 16   # 4 int8 stages of 16 int32: 256 B at most, StorageRewrite shares them
MAX_CACHED_EXP = 32     # softmax cache_exp by default up to a row of 32 (128 B of int32/float)
TILES = ("oc_tile", "c_tile", "o_tile")
UNROLLS = ("ic_unroll", "k_unroll")


def default_params(kind: str, kernel: tuple[int, int] = (1, 1), out_channels: int = 0,
                   in_channels: int = 0) -> dict:
    """DEFAULTS adapted to the op: tiles and unroll factors that divide the channels (no remainder
    predicates), window unrolling only for small windows.  On the examples they execute 10-45% fewer
    instructions than the templates on Cortex-M4 (QEMU counts), for 0.6-1.1 KiB more code."""
    params = dict(DEFAULTS[kind])
    if "unroll_kernel" in params:
        params["unroll_kernel"] = kernel[0] * kernel[1] <= MAX_UNROLLED_TAPS
    for key in TILES:
        if key in params and out_channels:
            params[key] = next(t for t in (params[key], 3, 2, 1) if out_channels % t == 0)
    for key in UNROLLS:
        if params.get(key, 1) > 1 and in_channels:
            params[key] = next(t for t in (params[key], 2, 1) if in_channels % t == 0)
    if kind == "softmax" and in_channels:
        params["cache_exp"] = in_channels <= MAX_CACHED_EXP
    return params


def resolve(kind: str, where: str, overrides: dict | None, kernel=(1, 1), out_channels: int = 0,
            in_channels: int = 0) -> dict:
    params = default_params(kind, kernel, out_channels, in_channels)
    for key, value in (overrides or {}).items():
        if key not in params:
            raise DwsError(f"{where}: unknown schedule parameter '{key}' for a {kind} kernel; "
                           f"known: {', '.join(sorted(params))}")
        default = params[key]
        if isinstance(default, bool):
            ok = isinstance(value, bool)
        elif isinstance(default, int):
            ok = isinstance(value, int) and not isinstance(value, bool) and value >= 0
        else:
            ok = value in _CHOICES.get(key, ())
        if not ok:
            expected = ("true/false" if isinstance(default, bool) else "an integer >= 0"
                        if isinstance(default, int) else " | ".join(_CHOICES[key]))
            raise DwsError(f"{where}: schedule parameter {key}={value!r} must be {expected}")
        params[key] = value
    for key in TILES + UNROLLS:
        if key in params and not 1 <= params[key] <= MAX_TILE:
            raise DwsError(f"{where}: schedule parameter {key}={params[key]} must be in [1, {MAX_TILE}]")
    if kind in ("add", "elementwise") and params["unroll"] and not 2 <= params["split"] <= MAX_UNROLLED_ADD:
        raise DwsError(f"{where}: schedule parameter unroll=true needs 2 <= split <= {MAX_UNROLLED_ADD}, "
                       f"got split={params['split']}")
    return params


def _split(sch, loop, factor: int):
    """(outer, inner) with inner of `factor`, or (None, loop) when the split would be trivial."""
    if factor <= 1 or factor >= _extent(sch, loop):
        return None, loop
    outer, inner = sch.split(loop, [None, factor])
    return outer, inner


def _extent(sch, loop) -> int:
    return int(sch.get(loop).extent)


def _named_loops(sch, block, depth: int, expected: list[tuple[str, int]]) -> dict:
    """The loops of `block` below its first `depth` loops, by name.  compute_at creates no loop for
    a unit extent, so `expected` (name, extent) pairs of extent 1 map to None."""
    inner = sch.get_loops(block)[depth:]
    present = [name for name, extent in expected if extent > 1]
    if len(inner) != len(present):
        raise DwsError(f"internal: schedule expected loops {expected}, found {len(inner)}")
    loops = dict.fromkeys((name for name, _ in expected))
    loops.update(zip(present, inner))
    return loops


def schedule_depthwise(func, params: dict, stages, padded: bool, kernel: tuple[int, int]):
    from tvm import s_tir
    sch = s_tir.Schedule(func)
    if padded:
        sch.compute_inline(sch.get_sblock("pad"))
    n, h, w, c = sch.get_loops(sch.get_sblock("output"))
    co, ci = _split(sch, c, params["c_split"])
    if co is not None:
        sch.reorder(*((n, h, co, w, ci) if params["order"] == "hcw" else (n, h, w, co, ci)))
    depth = 5 if co is not None else 4
    for stage in stages:
        sch.compute_at(sch.get_sblock(stage), ci)
    acc = sch.get_sblock("acc")
    window = [loop for loop in _named_loops(sch, acc, depth, [("rh", kernel[0]), ("rw", kernel[1])]).values()
              if loop is not None]
    if window:
        # The accumulator's init before the window loops, not `if (first tap)` inside them.
        sch.decompose_reduction(acc, window[0])
    if params["unroll_kernel"]:
        for loop in window:
            sch.unroll(loop)
    return sch.mod["main"]


def schedule_conv(func, params: dict, stages, padded: bool, kernel: tuple[int, int] | None, in_channels: int):
    """Pointwise (kernel None) and general conv: output-channel tiles; the accumulator tile is
    computed per (pixel, tile) with the reduction loops outside the tile loop, so each input value
    is loaded once per tile: acc[t] += x * w[t]."""
    from tvm import s_tir
    sch = s_tir.Schedule(func)
    if padded:
        sch.compute_inline(sch.get_sblock("pad"))
    reduction = ([("rh", kernel[0]), ("rw", kernel[1])] if kernel else []) + [("rc", in_channels)]
    loops = tiled_reduction(sch, sch.get_loops(sch.get_sblock("output")), "oc_tile", params, reduction, stages)
    if loops["rc"] is not None and params["ic_unroll"] > 1:
        _, rci = _split(sch, loops["rc"], params["ic_unroll"])
        sch.unroll(rci)
    if kernel and params["unroll_kernel"]:
        for name in ("rh", "rw"):
            if loops[name] is not None:
                sch.unroll(loops[name])
    return sch.mod["main"]


def tiled_reduction(sch, loops, tile_key: str, params: dict, reduction: list[tuple[str, int]], stages=()):
    """Accumulate a tile of the last output loop together, reductions outside the tile loop.

    `loops` are the output block's loops; the last is the tiled one.  `stages` (other than "acc")
    are per-element epilogue stages.  Returns the acc block's named reduction loops."""
    lead, last = loops[:-1], loops[-1]
    tile = min(params[tile_key], _extent(sch, last))
    outer, inner = _split(sch, last, tile)
    if tile == 1:
        anchor, depth = inner, len(loops)          # a scalar accumulator per output element
    elif outer is None:
        anchor, depth = lead[-1], len(lead)        # one tile over the whole dimension
    else:
        anchor, depth = outer, len(loops)
    unroll = tile > 1 and params["unroll_tile"]
    epilogue = [sch.get_sblock(s) for s in stages if s != "acc"]
    for block in epilogue:
        # Unrolled, the epilogue (e.g. int8 requantize) stages are tile arrays too, so every unrolled
        # copy reads its own element (see the module docstring); otherwise a scalar per element.
        sch.compute_at(block, anchor if unroll else inner)
    acc = sch.get_sblock("acc")
    sch.compute_at(acc, anchor)
    named = _named_loops(sch, acc, depth, ([("tile", tile)] if tile > 1 else []) + reduction)
    red = [named[name] for name, _ in reduction if named[name] is not None]
    tile_loop = named.get("tile")
    if tile_loop is not None and red:
        sch.reorder(*red, tile_loop)               # reductions outside the tile
    init = sch.decompose_reduction(acc, red[0]) if red else None
    if unroll:
        sch.unroll(tile_loop)
        if init is not None:
            sch.unroll(sch.get_loops(init)[-1])
        sch.unroll(inner)
        for block in epilogue:
            sch.unroll(sch.get_loops(block)[-1])
    return named


def schedule_add(func, params: dict, stages):
    from tvm import s_tir
    sch = s_tir.Schedule(func)
    (i,) = sch.get_loops(sch.get_sblock("output"))
    outer, inner = _split(sch, i, params["split"])
    unroll = params["unroll"] and outer is not None
    for stage in stages:
        # Unrolled: each stage is an array over the inner loop, so every unrolled copy reads its own
        # element (see the module docstring); otherwise a scalar per element.
        sch.compute_at(sch.get_sblock(stage), outer if unroll else inner)
    if unroll:
        sch.unroll(inner)
        for stage in stages:
            sch.unroll(sch.get_loops(sch.get_sblock(stage))[-1])
    return sch.mod["main"]
