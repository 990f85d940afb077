"""s_tir schedules of the glue ops (tvm_compute_glue.py, tvm_compute_softmax.py), each from the
parameter dict that knobs.resolve validated (knobs documented there).

Like the conv schedules, every intermediate stage is computed inside the innermost loop of its
consumer (a scalar), or inside a tile loop that is then unrolled (an array over the tile, so every
unrolled copy reads its own element: TVM's C printer would otherwise reuse a stale cached min/max
operand across copies).
"""
from __future__ import annotations

from .schedules import extent, schedule_add, split, tiled_reduction


def _has_block(sch, name: str) -> bool:
    try:
        sch.get_sblock(name)
    except Exception:   # s_tir raises a ScheduleError subclass for a missing block
        return False
    return True


def schedule_elementwise(func, params: dict, stages):
    """Relu, Relu6, Quantize, Dequantize, Reshape: the element loop of `add`."""
    return schedule_add(func, params, stages)


def schedule_pool(func, params: dict, stages, window: tuple[int, int]):
    """AveragePool2D, MaxPool2D and Mean (window = the image): channel tiles of c_tile."""
    from tvm import s_tir
    sch = s_tir.Schedule(func)
    if _has_block(sch, "pad"):
        sch.compute_inline(sch.get_sblock("pad"))
    loops = sch.get_loops(sch.get_sblock("output"))
    named = tiled_reduction(sch, loops, "c_tile", params, [("rh", window[0]), ("rw", window[1])], stages)
    if params["unroll_kernel"]:
        for name in ("rh", "rw"):
            if named[name] is not None:
                sch.unroll(named[name])
    return sch.mod["main"]


def schedule_fully_connected(func, params: dict, stages, depth: int):
    from tvm import s_tir
    sch = s_tir.Schedule(func)
    loops = sch.get_loops(sch.get_sblock("output"))
    named = tiled_reduction(sch, loops, "o_tile", params, [("k", depth)], stages)
    if named["k"] is not None and params["k_unroll"] > 1:
        _, inner = split(sch, named["k"], params["k_unroll"])
        sch.unroll(inner)
    return sch.mod["main"]


def schedule_pad(func, params: dict):
    from tvm import s_tir
    sch = s_tir.Schedule(func)
    block = sch.get_sblock("output")
    if params["decompose"] and sch.can_decompose_padding(block, sch.get_loops(block)[0]):
        sch.decompose_padding(block, sch.get_loops(block)[0])
    return sch.mod["main"]


def schedule_concat(func, params: dict, sizes: list[int]):
    """loop_partition at the input boundaries: the selects simplify away in each part.  (The parts
    are opaque blocks without write regions: the backend re-marks the output writable.)"""
    from tvm import s_tir
    sch = s_tir.Schedule(func)
    if params["partition"] and len(sizes) > 1:
        _, j = sch.get_loops(sch.get_sblock("output"))
        sch.loop_partition(j, list(sizes[:-1]) + [None])
    return sch.mod["main"]


def schedule_slice(func, params: dict, max_unrolled: int):
    """The output's loop nest as TE writes it (one loop per dimension); unroll_inner unrolls the last loop."""
    from tvm import s_tir
    sch = s_tir.Schedule(func)
    loops = sch.get_loops(sch.get_sblock("output"))
    if params["unroll_inner"] and loops and extent(sch, loops[-1]) <= max_unrolled:
        sch.unroll(loops[-1])
    return sch.mod["main"]


def schedule_softmax(func, params: dict, plan: dict):
    """Row stages inside the row loop; each exp chain inside its consumer's element loop, or (cached)
    its last stage a row array and the rest inside that stage's element loop."""
    from tvm import s_tir
    sch = s_tir.Schedule(func)
    i, c = sch.get_loops(sch.get_sblock("output"))
    for name in plan.get("out", []):
        sch.compute_at(sch.get_sblock(name), c)
    rows = [name for name in plan["row"] if name != "r_max"]
    for name in rows:
        sch.compute_at(sch.get_sblock(name), i)
    chains = plan["chains"]
    if "t_" in chains:       # the exp table (a parameter) at the root, its chain inside the table's loop
        names = chains["t_"]
        element = sch.get_loops(sch.get_sblock(names[0]))[-1]
        for name in names[1:]:
            sch.compute_at(sch.get_sblock(name), element)
    elif "c_" in chains:
        names = chains["c_"]
        sch.compute_at(sch.get_sblock(names[0]), i)
        element = sch.get_loops(sch.get_sblock(names[0]))[-1]
        for name in names[1:]:
            sch.compute_at(sch.get_sblock(name), element)
    else:
        for name in chains["o_"]:
            sch.compute_at(sch.get_sblock(name), c)
        sum_loop = sch.get_loops(sch.get_sblock("r_sum"))[-1]
        for name in chains["s_"]:
            sch.compute_at(sch.get_sblock(name), sum_loop)
    sch.compute_at(sch.get_sblock("r_max"), i)
    for name in ("r_max", "r_sum", "r_clz"):
        loops = sch.get_loops(sch.get_sblock(name)) if _has_block(sch, name) else []
        if len(loops) > 1:                 # a row of one value has no reduction loop
            sch.decompose_reduction(sch.get_sblock(name), loops[1])
    return sch.mod["main"]


def schedule_hybrid_input(func, reductions=("range", "low", "high")):
    """Hybrid conv's per-batch input reductions (at the root): their init before the loops, not
    `if (first element)` inside them (gcc cannot see it always runs and warns maybe-uninitialized)."""
    from tvm import s_tir
    sch = s_tir.Schedule(func)
    for name in reductions:
        if _has_block(sch, name):
            block = sch.get_sblock(name)
            loops = sch.get_loops(block)
            sch.decompose_reduction(block, loops[1] if len(loops) > 1 and extent(sch, loops[0]) > 1 else loops[0])
    return sch.mod["main"]
