"""Kernels' scratch in the arena (Kernel.scratch, render.scratch_view, planner.ScratchNeeds): an im2col patch,
a padded tile or widened rows is a view into a `void *restrict scratch` parameter, planned as an arena item live
only during its op's call (a fused chain's kernels share one, under the chain's last op), so it never adds to
the stack bound.

Pinned: the plan has each kernel's scratch clear of everything live in that call and a fused chain's as large as
its largest row kernel's; the stack bound of a library with an im2col layer is below that layer's patch bytes;
a kernel without scratch keeps its two-pointer signature; `inspect --json` and the memory timeline list the
scratch items; an im2col conv layer and a row-fused chain whose kernels have scratch run bit-exactly under QEMU
on Cortex-M4 and M55 (M3, M7, M33 and x86_64-v3: slow) and natively on x86_64-v3.
"""
from __future__ import annotations

import json

import pytest

from dwscodegen.backends import generate_library
from dwscodegen.backends.templates import generate_kernels
from dwscodegen.backends.templates.generate import row_kernels
from dwscodegen.footprint import measure
from dwscodegen.importers import load_model
from dwscodegen.memory_timeline import peak_note, plot, timeline
from dwscodegen.planner import NO_FUSION_ENV, lifetimes, scratch_item
from dwscodegen.targets import load_target
from dwscodegen.verify import verify_graph

from .support.cli import copy_example, invoke
from .support.layers import ConvCase, assert_verified, conv_graph
from .support.row_pairs import chain_graph
from .support.targets import target_or_skip

DW, CONV = "DepthwiseConv2D", "Conv2D"
ANY = (0, 0, 0, 0)   # chain_graph takes a later layer's input shape from the layer before
IM2COL = ConvCase(CONV, (1, 12, 10, 16), (3, 3), out_channels=12, padding="SAME", in_zp=3)
# pointwise -> 3x3 conv (im2col) -> pointwise, all in the arena: every op has scratch on Cortex-M4 and M55
CHAIN = [ConvCase(CONV, (1, 10, 9, 6), (1, 1), out_channels=16),
         ConvCase(CONV, ANY, (3, 3), out_channels=8, stride=(2, 1), padding=(1, 1, 0, 1)),
         ConvCase(CONV, ANY, (1, 1), out_channels=10, activation="relu")]


def _index(g, name: str) -> int:
    return next(op.index for op in g.ops if op.name == name)


def _assert_clear(g, plan) -> None:
    """Every scratch item aligned, inside the arena and clear of each tensor and window live during its call."""
    live = lifetimes(g)
    for op, (at, n) in plan.scratch.items():
        assert at % 16 == 0 and at + n <= plan.size, op
        for name, start in plan.offsets.items():
            if live[name][0] <= op <= live[name][1]:
                assert start + g.tensor(name).nbytes <= at or at + n <= start, (op, name)
        for f in plan.fusions:
            if f.consumer == op:
                for w in f.windows:
                    start = plan.windows[w.name]
                    assert start + w.nbytes <= at or at + n <= start, (op, w.name)


@pytest.mark.parametrize("core", ["cortex-m4", "cortex-m55", "x86_64-v3"])
def test_unfused_scratch_is_planned_per_call_clear_of_everything_live(core, monkeypatch):
    monkeypatch.setenv(NO_FUSION_ENV, "1")
    g = chain_graph(CHAIN, "int8", seed=3, in_arena=True)
    target = load_target(core)
    kernels = {k.op_index: k for k in generate_kernels(g, target)}
    lib = generate_library(g, target)
    assert not lib.plan.fusions
    assert {i: n for i, (_, n) in lib.plan.scratch.items()} == {i: k.scratch for i, k in kernels.items() if k.scratch}
    assert _index(g, "layer1") in lib.plan.scratch   # the 3x3 convolution's im2col patch
    _assert_clear(g, lib.plan)
    source = lib.files[f"{g.name}.c"]
    for i, k in kernels.items():
        if k.scratch:
            assert f"{k.fn}(const int8_t *" in source and ", void *restrict scratch)" in k.source
            assert scratch_item(g, i) in source   # the arena comment lists it


def test_a_fused_chain_shares_one_scratch_of_its_largest_row_kernel():
    g = chain_graph(CHAIN, "int8", seed=3, in_arena=True)
    target = load_target("cortex-m4")
    lib = generate_library(g, target)
    (f,) = lib.plan.fusions
    assert _index(g, "layer1") in f.ops   # the im2col convolution runs on its window
    rk = row_kernels(g, target, f)
    assert rk.scratch == max(k.scratch for k in (*(k for _, k in rk.producers), *rk.stages)) > 0
    at = lib.plan.scratch[f.consumer][0]
    assert lib.plan.scratch[f.consumer] == (at, rk.scratch)
    assert not set(f.ops[:-1]) & set(lib.plan.scratch)   # the chain's ops share the one under its last op
    _assert_clear(g, lib.plan)
    pipeline = lib.files[f"{g.name}.c"].split("fused row by row")[1]
    work = f"arena_s8 + {at}" if at else "arena_s8"
    for k in (*(k for _, k in rk.producers), *rk.stages):
        if k.scratch:
            assert f", {work});" in pipeline.split(f"{k.fn}(")[1].split("\n")[0], k.fn


@pytest.mark.parametrize("core", ["cortex-m4", "cortex-m55"])
def test_the_stack_bound_holds_no_im2col_patch(core):
    """The 3x3 convolution's patch (P pixels of its 144 taps) is arena scratch: the whole library's stack bound
    is below it, the registers' spills and the call frames only."""
    target = target_or_skip(core)
    g = conv_graph(IM2COL, "int8", seed=4)
    (kernel,) = generate_kernels(g, target)
    assert kernel.scratch >= 144
    lib = generate_library(g, target)
    assert lib.arena_bytes == kernel.scratch + (-kernel.scratch) % 16 and lib.plan.scratch == {0: (0, kernel.scratch)}
    assert measure(lib, target).stack < kernel.scratch


def test_a_kernel_without_scratch_keeps_its_signature():
    g = conv_graph(ConvCase(DW, (1, 9, 9, 8), (3, 3)), "int8", seed=1)
    (kernel,) = generate_kernels(g, load_target("cortex-m4"))
    assert kernel.scratch == 0 and "scratch" not in kernel.source
    assert f"static void {kernel.fn}(const int8_t *restrict input, int8_t *restrict output)" in kernel.source
    lib = generate_library(g, load_target("cortex-m4"))
    assert not lib.plan.scratch and "scratch" not in lib.files[f"{g.name}.c"]


def test_timeline_and_inspect_json_show_the_scratch(tmp_path, monkeypatch):
    monkeypatch.setenv(NO_FUSION_ENV, "1")
    g = chain_graph(CHAIN, "int8", seed=3, in_arena=True)
    plan = generate_library(g, load_target("cortex-m4")).plan
    doc = timeline(g, plan)
    assert doc["scratch"] == [dict(name=f"{g.ops[i].name}@scratch", op=i, chain=[i], offset=at, bytes=n)
                              for i, (at, n) in plan.scratch.items()]
    assert doc["peak"]["bytes"] >= max(at + n for at, n in plan.scratch.values())
    assert "peaks at" in peak_note(g, plan)
    path = tmp_path / "plan.png"
    plot(g, plan, path)
    assert path.stat().st_size > 1000
    monkeypatch.delenv(NO_FUSION_ENV)
    model, _ = copy_example(tmp_path)
    result = invoke("inspect", model, "-t", "cortex-m4", "--json", "--ram", "64K")
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)["memory_plan"]["scratch"]
    lib = generate_library(load_model(model), load_target("cortex-m4"))
    assert shown and [(s["name"], s["offset"], s["bytes"]) for s in shown] == [
        (scratch_item(load_model(model), i), at, n) for i, (at, n) in lib.plan.scratch.items()]


def _bit_exact(core: str, graph) -> None:
    target = target_or_skip(core)
    assert generate_library(graph, target).plan.scratch
    assert_verified(verify_graph(graph, target, runs=1, seed=5, footprint=False))


QUICK = ["cortex-m4", "cortex-m55"]
SLOW = ["cortex-m3", "cortex-m7", "cortex-m33", "x86_64-v3"]


@pytest.mark.parametrize("core", QUICK + [pytest.param(c, marks=pytest.mark.slow) for c in SLOW])
def test_im2col_layer_with_arena_scratch_is_bit_exact(core):
    _bit_exact(core, conv_graph(IM2COL, "int8", seed=4))


@pytest.mark.parametrize("core", QUICK + [pytest.param(c, marks=pytest.mark.slow) for c in SLOW])
def test_fused_chain_with_scratch_is_bit_exact(core):
    g = chain_graph(CHAIN, "int8", seed=3, in_arena=True)
    if core != "x86_64-v3":
        assert generate_library(g, target_or_skip(core)).plan.fusions
    _bit_exact(core, g)

