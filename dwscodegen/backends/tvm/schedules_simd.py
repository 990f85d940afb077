"""s_tir schedules of the tensorized kernels (simd_gemm.py, simd_depthwise.py): tile each part of the output,
place every stage inside the tile loop it serves, and tensorize the stages with the micro-kernels' intrinsics.

The knobs (knobs.py, kinds "gemm_<isa>" and "depthwise_<isa>") choose the tile shape and the loop order;
what a tile computes is the intrinsic's, so a knob changes the loops TVM emits around the micro-kernels and
which micro-kernels there are, never a result.
"""
from __future__ import annotations

from . import knobs
from . import simd_depthwise as sd
from . import simd_gemm as sg
from .tir_build import MicroKernels


def _after(sch, block, loop) -> int:
    """The position in block's loops just below `loop`."""
    target = sch.get(loop)
    return next(i for i, lp in enumerate(sch.get_loops(block)) if sch.get(lp).same_as(target)) + 1


def schedule_gemm(func, L: sg.Layer, parts: list[sg.Part], fn: str, params: dict) -> tuple[object, list[dict]]:
    """Per part: pixel tiles outermost (`order` "pixels") or channel tiles outermost ("channels": the
    window / patch of a pixel tile is then rebuilt for every channel tile), the tile's accumulators
    inside.  Returns the scheduled function and the micro-kernels it calls."""
    from tvm import s_tir
    sch = s_tir.Schedule(func)
    micro = MicroKernels()
    use = micro.use

    for part in parts:
        n = part.index
        out = sch.get_sblock(f"output{n}")
        p, ob, q = sch.get_loops(out)
        po, pi = sch.split(p, [None, part.P]) if part.npix > part.P else (None, p)
        if po is None:
            sch.reorder(ob, pi, q)
            anchor, tile = ob, None          # one pixel tile: window / patch once for the whole part
        elif params["order"] == "channels":
            sch.reorder(ob, po, pi, q)
            anchor, tile = po, po
        else:
            sch.reorder(po, ob, pi, q)
            anchor, tile = ob, po
        pairs = None
        if params["unroll_channels"] and anchor is ob and part.blocks > 2 and part.blocks % 2 == 0:
            _, pairs = sch.split(ob, [None, 2])       # two channel tiles per iteration, unrolled below
            anchor = pairs
        acc = sch.get_sblock(f"acc{n}")
        sch.compute_at(acc, anchor)
        stages = ([f"patch{n}"] if L.isa == "dsp" else []) + ([f"window{n}"] if L.windowed else [])
        if tile is not None:
            for stage in stages:       # consumers first: each lands just before its consumer
                sch.compute_at(sch.get_sblock(stage), tile)
        depth = _after(sch, acc, anchor)
        init = sch.decompose_reduction(acc, sch.get_loops(acc)[depth])
        sch.tensorize(sch.get_loops(acc)[depth], use(sg.intrin_gemm(L, fn, part.P, part.Q)))
        for loop in sch.get_loops(init)[depth:]:
            sch.unroll(loop)
        sch.tensorize(q, use(sg.intrin_requant(L, fn, part.Q)))
        sch.unroll(pi)
        if pairs is not None:
            sch.unroll(pairs)
        for stage in stages:
            block = sch.get_sblock(stage)
            loops = sch.get_loops(block)
            first = _after(sch, block, tile) if tile is not None else 0
            if stage.startswith("patch"):
                sch.tensorize(loops[-1], use(sg.intrin_widen(L, fn)))
                loops = loops[:-1]
            elif not params.get("unroll_window", part.P * L.KX <= knobs.MAX_UNROLLED_WINDOW):
                loops = loops[:-1]
            for loop in loops[first:]:
                sch.unroll(loop)
    return sch.mod["main"], micro.entries()


def schedule_depthwise(func, L: sd.Layer, parts: list[sd.Part], fn: str, params: dict) -> tuple[object, list[dict]]:
    """Per region part: rows, columns and channel groups (`order` "hwc"; "hcw": groups outside the columns),
    a group's accumulators computed per pixel by the window's micro-kernel, then requantized.  Tail channels
    (after the last whole group): the same loops in plain TVM C, taps unrolled."""
    from tvm import s_tir
    sch = s_tir.Schedule(func)
    micro = MicroKernels()
    use = micro.use

    for part in parts:
        n = part.index
        out = sch.get_sblock(f"output{n}")
        loops = sch.get_loops(out)
        if part.tail:
            i, jx, lane = loops
            anchor = jx
        else:
            i, jx, g, lane = loops
            if params["order"] == "hcw":
                sch.reorder(i, g, jx, lane)
            anchor = sch.get_loops(out)[2]
        if params["unroll_columns"] and part.region["x1"] - part.region["x0"] <= knobs.MAX_UNROLLED_COLUMNS:
            sch.unroll(jx)
        acc = sch.get_sblock(f"acc{n}")
        sch.compute_at(acc, anchor)
        if part.region["taps"]:
            depth = _after(sch, acc, anchor)
            init = sch.decompose_reduction(acc, sch.get_loops(acc)[depth])
            for loop in sch.get_loops(init)[depth:]:
                sch.unroll(loop)
            if part.tail:
                for loop in sch.get_loops(acc)[depth:]:
                    sch.unroll(loop)
            else:
                sch.tensorize(sch.get_loops(acc)[depth], use(sd.intrin_window(L, fn, part)))
        else:
            for loop in sch.get_loops(acc)[_after(sch, acc, anchor):]:
                sch.unroll(loop)
        if part.tail:
            sch.unroll(lane)
        else:
            lane_out = sd.lane_store if L.isa == "mve" else None
            kind = "requant_dw" if L.isa == "mve" else "requant"
            sch.tensorize(lane, use(sg.intrin_requant(L, fn, part.lanes, lane_out, kind)))
    return sch.mod["main"], micro.entries()
