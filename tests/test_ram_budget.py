"""`--optimize speed` under a RAM budget (ram_budget.py, planner.fastest_within): the fastest arena plan that fits.

Pinned: on two MBConv blocks between copies the planner's speed trade keeps the lowest plan at its size, takes
the unfused plan when the budget holds it, and in between a plan that fits with fewer estimated instructions than
the lowest; as the budget grows the estimated cost never rises; a budget under the lowest plan keeps it. End to
end: `generate --optimize speed --ram` writes the traded plan and says so, `balanced` keeps the lowest; the traded
plan runs bit-exactly under QEMU on Cortex-M4 (and `verify` runs the same library `generate` writes).
"""
from __future__ import annotations

import json

import pytest

from dwscodegen.backends import generate_library
from dwscodegen.backends.templates.generate import generate_kernels
from dwscodegen.flash_budget import choose
from dwscodegen.importers import load_model
from dwscodegen.output import MANIFEST
from dwscodegen.planner import NO_FUSION_ENV, plan_arena, plan_cost
from dwscodegen.row_fusion import candidates, extra_instructions
from dwscodegen.targets import load_target
from dwscodegen.verify import verify_graph

from .support.cli import copy_example, invoke
from .support.layers import ConvCase, assert_verified
from .support.row_pairs import chain_graph
from .support.targets import target_or_skip

DW, CONV = "DepthwiseConv2D", "Conv2D"
ANY = (0, 0, 0, 0)


def _blocks():
    """Two MBConv blocks (expand, dw 3x3, project) between copies: every middle tensor row-fusable."""
    mbconv = [ConvCase(CONV, ANY, (1, 1), out_channels=24), ConvCase(DW, ANY, (3, 3)),
              ConvCase(CONV, ANY, (1, 1), out_channels=8)]
    first = ConvCase(CONV, (1, 20, 16, 8), (1, 1), out_channels=24)
    return chain_graph([first, *mbconv[1:], *mbconv], "int8", seed=3, in_arena=True)


def _plans(graph, target):
    lags = {(k.op_index, n): lag for k in generate_kernels(graph, target) for n, lag in k.overlap}
    fusions = candidates(graph)
    unfused = plan_arena(graph, lags)
    lowest = plan_arena(graph, lags, fusions=fusions)

    def within(budget: int):
        return plan_arena(graph, lags, fusions=fusions, arena_budget=budget)
    return unfused, lowest, within


def test_speed_trade_spends_the_budget_on_fewer_chains():
    g = _blocks()
    unfused, lowest, within = _plans(g, load_target("x86_64"))
    assert lowest.fusions and lowest.size < unfused.size
    assert within(lowest.size - 16) == lowest                 # nothing fits: the lowest stays
    assert within(unfused.size) == unfused                    # room for the unfused plan: no chain at all
    apart = within(10 ** 9)                                   # room for everything: no layer in place either
    assert not (apart.fusions or apart.overlaps or apart.moves) and apart.size > unfused.size
    assert within(lowest.size).size <= lowest.size
    costs = []
    for budget in [*range(lowest.size, unfused.size, 256), unfused.size]:
        plan = within(budget)
        assert plan.size <= budget
        costs.append(plan_cost(g, plan))
    assert costs == sorted(costs, reverse=True)               # more RAM never costs more instructions
    assert costs[0] <= plan_cost(g, lowest) and costs[-1] == plan_cost(g, unfused)
    assert len(set(costs)) >= 3                               # a plan in between the two ends


def test_extra_instructions_count_the_moves_and_the_calls():
    g = _blocks()
    f = next(f for f in candidates(g) if f.ops == (1, 2))     # 1x1 expand -> dw 3x3 stride 1, 20 rows
    w = f.windows[0]
    moved = 19 * 2 * w.row_bytes                              # 2 kept rows moved up on every row but the first
    calls = 20 + 2                                            # each middle row computed once, 2 padding fills
    assert extra_instructions(g, f) == int(moved * 1.0 + calls * 40)


def _middle_budget(graph, target, monkeypatch) -> int:
    """A RAM budget (whole library) just under the unfused in-place plan's: the blocks have a plan in between
    (one pair fused), the lowest plan fuses all six layers."""
    lowest = choose(graph, target, "templates", "balanced")
    with monkeypatch.context() as m:
        m.setenv(NO_FUSION_ENV, "1")
        unfused = choose(graph, target, "templates", "balanced")
    assert not unfused.lib.plan.fusions and unfused.lib.plan.overlaps and lowest.lib.plan.fusions
    return unfused.footprint.ram - 1


def test_generate_speed_takes_the_traded_plan_and_says_so(tmp_path):
    model, _ = copy_example(tmp_path)          # its pair fuses on the lowest plan
    target = load_target("cortex-m4")
    unfused = choose(load_model(model), target, "templates", "speed", ram=10 ** 9)
    assert not unfused.lib.plan.fusions
    budget = str(unfused.footprint.ram)
    speed = invoke("generate", model, "-t", "cortex-m4", "-o", tmp_path / "speed", "--optimize", "speed",
                   "--ram", budget)
    assert speed.exit_code == 0, speed.output
    assert "--optimize speed: RAM budget" in speed.output and "0 row-fused chain(s) instead of 1" in speed.output
    balanced = invoke("generate", model, "-t", "cortex-m4", "-o", tmp_path / "balanced", "--ram", budget)
    assert balanced.exit_code == 0, balanced.output and "row-fused layers 0->1" in balanced.output
    manifests = {name: json.loads((tmp_path / name / MANIFEST).read_text()) for name in ("speed", "balanced")}
    assert manifests["balanced"]["arena_bytes"] < manifests["speed"]["arena_bytes"]
    assert manifests["speed"]["footprint"]["ram"] <= int(budget)
    tight = invoke("generate", model, "-t", "cortex-m4", "-o", tmp_path / "tight", "--optimize", "speed",
                   "--ram", str(int(budget) - 1))
    assert tight.exit_code == 0 and "--optimize speed: RAM budget" not in tight.output   # the lowest plan


def test_traded_plan_is_bit_exact_on_m4(monkeypatch):
    g = _blocks()
    target = target_or_skip("cortex-m4")
    budget = _middle_budget(g, target, monkeypatch)
    mix = choose(g, target, "templates", "speed", ram=budget)
    assert mix.plan_budget is not None and mix.footprint.ram <= budget
    lowest = generate_library(g, target)
    assert mix.lib.plan.fusions and mix.lib.plan.size > lowest.arena_bytes
    assert plan_cost(g, mix.lib.plan) < plan_cost(g, lowest.plan)
    assert_verified(verify_graph(g, target, runs=2, seed=4, library=mix.lib, measured=mix.footprint))


@pytest.mark.parametrize("optimize", ["balanced", "size"])
def test_balanced_and_size_keep_the_lowest_plan(optimize):
    g = _blocks()
    target = load_target("cortex-m4")
    mix = choose(g, target, "templates", optimize, ram=10 ** 9)
    assert mix.plan_budget is None and mix.lib.plan == generate_library(g, target).plan
