"""s_tir schedules of the TVM backend, one per kernel kind, each derived from the parameter dict that
knobs.resolve validated (the tuner's knobs, listed with their defaults and search space in knobs.py).
The glue ops' schedules live in schedules_glue.py.

Every stage that feeds the output (accumulator, int8 `biased`/`high`) is computed inside the
innermost output loop it depends on, so intermediates shrink to a scalar or one tile (the lowering
rejects temporaries > 256 B).

Where a knob unrolls a loop that requantizes, the requantize stages become arrays over that loop
instead of one scalar: TVM's C code generator caches the text of min/max operands (`int32_t v_ =
...`) and would reuse a cached value across unrolled copies whose text is identical although the
scalar was rewritten in between (emit.stale_ssa_use checks the emitted C for exactly that and refuses it).
"""
from __future__ import annotations

from ...errors import DwsError


def constant_output(func):
    """The function that stores its output's one value, where the compute folded the output block to a
    constant (an int8 activation range collapsed to one value: RELU with the output zero point at 127, say);
    else None.  The other stages would feed nothing, and the schedules could not place them."""
    from tvm import s_tir, te, tirx
    sch = s_tir.Schedule(func)
    try:
        store = sch.get(sch.get_sblock("output")).body
    except Exception:   # a kernel without an "output" block (none so far) is never constant here
        return None
    if not isinstance(store, tirx.BufferStore) or not isinstance(store.value, (tirx.IntImm, tirx.FloatImm)):
        return None
    params = [te.placeholder(tuple(p.ty.shape), p.ty.dtype, p.name) for p in func.params]
    out = func.params[-1]
    fill = te.compute(tuple(out.ty.shape), lambda *_: store.value, name="output")
    return te.create_prim_func(params[:-1] + [fill])


def scheduled(schedule, func, *args):
    """schedule(func, *args), or the constant fill of func's output (constant_output)."""
    return constant_output(func) or schedule(func, *args)


def split(sch, loop, factor: int):
    """(outer, inner) with inner of `factor`, or (None, loop) when the split would be trivial."""
    if factor <= 1 or factor >= extent(sch, loop):
        return None, loop
    outer, inner = sch.split(loop, [None, factor])
    return outer, inner


def extent(sch, loop) -> int:
    return int(sch.get(loop).extent)


def _named_loops(sch, block, depth: int, expected: list[tuple[str, int]]) -> dict:
    """The loops of `block` below its first `depth` loops, by name.  compute_at creates no loop for
    a unit extent, so `expected` (name, extent) pairs of extent 1 map to None."""
    inner = sch.get_loops(block)[depth:]
    present = [name for name, size in expected if size > 1]
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
    co, ci = split(sch, c, params["c_split"])
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
        _, rci = split(sch, loops["rc"], params["ic_unroll"])
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
    tile = min(params[tile_key], extent(sch, last))
    outer, inner = split(sch, last, tile)
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
    outer, inner = split(sch, i, params["split"])
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
