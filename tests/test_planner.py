"""The arena planner never lets two simultaneously live tensors share a byte, and it does reuse memory."""
from __future__ import annotations

from pathlib import Path

import pytest

from dwscodegen.importers import load_model
from dwscodegen.planner import ALIGN, lifetimes, plan_arena

EXAMPLES = sorted((Path(__file__).resolve().parent.parent / "examples").glob("*.json"))


@pytest.mark.parametrize("model", EXAMPLES, ids=lambda p: p.stem)
def test_live_tensors_never_overlap(model):
    graph = load_model(model)
    plan = plan_arena(graph)
    live = lifetimes(graph)
    assert set(plan.offsets) == set(live)
    spans = {n: (plan.offsets[n], plan.offsets[n] + graph.tensor(n).nbytes) for n in live}
    for a in live:
        assert spans[a][0] % ALIGN == 0 and spans[a][1] <= plan.size
        for b in live:
            if a < b and live[a][0] <= live[b][1] and live[b][0] <= live[a][1]:
                assert spans[a][1] <= spans[b][0] or spans[b][1] <= spans[a][0], (a, b)


def test_disjoint_lifetimes_share_memory():
    graph = load_model(next(p for p in EXAMPLES if p.stem == "mbv2_inverted_residual_s8"))
    plan = plan_arena(graph)
    total = sum(graph.tensor(n).nbytes for n in plan.offsets)
    # expand (4608) and project (1152) are never live together, so the arena is smaller than the sum.
    assert plan.size < total
    assert plan.offsets["expand"] == plan.offsets["project"]
