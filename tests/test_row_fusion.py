"""Row fusion (row_fusion.py, backends/row_pipeline.py): a chain of conv-like layers (a pair or longer) runs row by
row, each middle tensor only a window of its reader's KH rows, never stored.

Pinned: the window schedule and the fused lag on hand-derived cases; the planner fuses only where the arena
drops, places each window clear of everything live with it and refuses what it cannot fuse; fused pairs
run bit-exactly (int8) / within tolerance (float32) against the oracle over a seeded random matrix of shapes,
strides, paddings, multipliers and batches on x86_64 natively and on Cortex-M4 (DSP) and M55 (MVE) under
QEMU (M3/M7/M33 and the rest of the matrix with --runslow); chains of 3 and 4 layers the same way (strides in
different places, int8 and float32, batch 2); the planner taking a chain over a pair where the arena is lower;
the zoo MobileNetV1 and V2 end to end; the RAM error. Element-wise members (first, middle, last; HardSwish,
Logistic, a broadcast squeeze-excite Mul, a Mul reading a full side row by row, a residual Add) the same way,
with what the planner must refuse (an element-wise op reading a middle twice or as its side, a constant side
of the full shape, a side broadcast over W only along H) and the zoo MobileNetV3-small end to end.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from dwscodegen.backends import generate_library
from dwscodegen.errors import DwsError
from dwscodegen.importers import load_model
from dwscodegen.memory_timeline import plot, timeline
from dwscodegen.backends.templates import generate_kernels
from dwscodegen.backends.templates.generate import row_kernels
from dwscodegen.planner import NO_FUSION_ENV, ScratchNeeds, lifetimes, plan_arena
from dwscodegen.row_fusion import (
    candidates,
    chain,
    chain_ok,
    first_rows,
    fused_lag,
    producer_classes,
    schedule,
    side_inputs,
    window_schedules,
)
from dwscodegen.targets import load_target
from dwscodegen.verify import verify_graph

from .support.cli import assert_refused, copy_example, invoke
from .support.layers import ConvCase, assert_verified
from .support.row_pairs import Elementwise, chain_graph, pair_graph, stage_graph
from .support.targets import target_or_skip

ROOT = Path(__file__).resolve().parent.parent
MBV1 = ROOT.parent / "shared" / "models" / "zoo" / "mbv1_a025_96_c2_s8.tflite"
MBV2 = ROOT.parent / "shared" / "models" / "zoo" / "mbv2_a035_96_s8.tflite"
DW, CONV = "DepthwiseConv2D", "Conv2D"
ANY = (0, 0, 0, 0)   # pair_graph takes the consumer's input shape from the producer


def _case(rng) -> tuple[ConvCase, ConvCase]:
    """A seeded random fusable pair: pointwise -> depthwise or depthwise -> pointwise, odd sizes, strides 1
    and 2, SAME / VALID / asymmetric explicit padding, channel multipliers, batch 1 or 2."""
    n, h, w, c = int(rng.choice([1, 1, 2])), int(rng.integers(5, 12)), int(rng.integers(3, 10)), int(rng.integers(1, 13))
    k = tuple(int(v) for v in rng.choice([1, 2, 3, 5], 2)) if rng.random() < 0.3 else (3, 3)
    stride = (int(rng.choice([1, 2])), int(rng.choice([1, 2])))
    padding = [
        "SAME", "VALID", (int(rng.integers(0, k[0])), int(rng.integers(0, k[0])), int(rng.integers(0, k[1])), 0)
    ][int(rng.integers(0, 3))]
    act = str(rng.choice(["none", "relu", "relu6"]))
    zps = dict(in_zp=int(rng.integers(-128, 128)), out_zp=int(rng.integers(-128, 128)))
    spatial = dict(stride=stride, padding=padding, activation=act)
    if rng.random() < 0.5:
        pw = ConvCase(CONV, (n, h, w, c), (1, 1), out_channels=int(rng.integers(1, 20)), **zps)
        return pw, ConvCase(DW, ANY, k, multiplier=int(rng.choice([1, 1, 2])), **spatial)
    dw = ConvCase(DW, (n, h, w, c), k, multiplier=int(rng.choice([1, 1, 2])), **spatial, **zps)
    return dw, ConvCase(CONV, ANY, (1, 1), out_channels=int(rng.integers(1, 20)))


def _fusable_cases(seed: int, count: int):
    rng = np.random.default_rng(seed)
    found = []
    while len(found) < count:
        first, second = _case(rng)
        if first.in_shape[1] < first.kernel[0] and first.padding == "VALID":
            continue
        found.append((first, second))
    return found


def _fused(lib) -> list[tuple[int, int]]:
    return [(f.producer, f.consumer) for f in lib.plan.fusions]


def test_schedule_keeps_the_shared_rows_and_pads_with_rows_outside():
    g = pair_graph(ConvCase(CONV, (1, 6, 4, 3), (1, 1), out_channels=5), ConvCase(DW, ANY, (3, 3)), "int8")
    (f,) = candidates(g)
    (w,) = f.windows
    assert (f.ops, w.rows, w.row_bytes, f.window_bytes) == ((0, 1), 3, 4 * 5, 3 * 4 * 5)
    # stride 1, SAME: row 0 needs -1 (padding), 0, 1; each later row keeps 2 and computes 1
    assert schedule(g, f) == [(0, [-1, 0, 1]), (2, [2]), (2, [3]), (2, [4]), (2, [5]), (2, [-1])]
    g2 = pair_graph(ConvCase(CONV, (1, 7, 4, 3), (1, 1), out_channels=5),
                    ConvCase(DW, ANY, (3, 3), stride=(2, 2), padding="VALID"), "int8")
    assert schedule(g2, candidates(g2)[0]) == [(0, [0, 1, 2]), (1, [3, 4]), (1, [5, 6])]


def test_depthwise_producer_rows_are_classed_by_their_padding():
    g = pair_graph(ConvCase(DW, (1, 9, 4, 3), (3, 3), stride=(2, 2), padding=(1, 1, 1, 1)),
                   ConvCase(CONV, ANY, (1, 1), out_channels=4), "int8")
    classes = [(c.first, c.last, c.pad_top, c.pad_bottom) for c in producer_classes(g, g.ops[0])]
    assert classes == [(0, 0, 1, 0), (1, 3, 0, 0), (4, 4, 0, 1)]


def test_fused_lag_lets_a_strided_output_start_on_its_input():
    # pw (8 -> 8 channels) then dw 3x3 stride 2 VALID: output row r is written after reading input rows up
    # to 2r + 2; it ends at (r + 1) * OW * C, well below input row 2r + 3: no lag at all
    g = pair_graph(ConvCase(CONV, (1, 9, 8, 8), (1, 1), out_channels=8),
                   ConvCase(DW, ANY, (3, 3), stride=(2, 2), padding="VALID"), "int8", in_arena=True)
    (f,) = candidates(g)
    assert fused_lag(g, f) == 0
    # an expanding pw (4 -> 16) with a stride-1 dw: each output row is 4x an input row; the lag grows
    g = pair_graph(ConvCase(CONV, (1, 9, 8, 4), (1, 1), out_channels=16), ConvCase(DW, ANY, (3, 3)), "int8",
                   in_arena=True)
    assert fused_lag(g, candidates(g)[0]) > 0


def test_refused_pairs():
    dilated = pair_graph(ConvCase(CONV, (1, 9, 8, 4), (1, 1), out_channels=6),
                         ConvCase(DW, ANY, (3, 3), dilation=(2, 2)), "int8")
    strided_pw = pair_graph(ConvCase(CONV, (1, 9, 8, 4), (1, 1), out_channels=6, stride=(2, 2)),
                            ConvCase(DW, ANY, (3, 3)), "int8")
    assert candidates(dilated) == [] and candidates(strided_pw) == []


def test_planner_fuses_only_where_the_arena_drops(monkeypatch):
    # expanding pw then a strided dw, between copies: the 9x8x24 middle tensor is the peak; fusing lowers it
    wide = pair_graph(ConvCase(CONV, (1, 9, 8, 4), (1, 1), out_channels=24),
                      ConvCase(DW, ANY, (3, 3), stride=(2, 2)), "int8", in_arena=True)
    lib = generate_library(wide, load_target("x86_64"))
    assert _fused(lib) == [(1, 2)]
    monkeypatch.setenv(NO_FUSION_ENV, "1")
    unfused = generate_library(wide, load_target("x86_64"))
    assert unfused.plan.fusions == () and lib.arena_bytes < unfused.arena_bytes
    monkeypatch.delenv(NO_FUSION_ENV)
    # stride 1: the dw output overlaps the middle tensor in place already; a window beside the pair's input and
    # output would not lower that
    short = pair_graph(ConvCase(CONV, (1, 9, 8, 4), (1, 1), out_channels=24), ConvCase(DW, ANY, (3, 3)), "int8",
                       in_arena=True)
    assert generate_library(short, load_target("x86_64")).plan.fusions == ()


def test_window_is_scratch_clear_of_everything_live_with_it():
    g = pair_graph(ConvCase(CONV, (2, 11, 7, 5), (1, 1), out_channels=16),
                   ConvCase(DW, ANY, (3, 3), stride=(2, 2)), "float32", in_arena=True)
    lib = generate_library(g, load_target("x86_64"))
    plan = lib.plan
    (f,) = plan.fusions
    (w,) = f.windows
    assert w.middle not in plan.offsets and set(plan.windows) == {w.name}
    start = plan.windows[w.name]
    assert start % 16 == 0 and start + f.window_bytes <= plan.size
    live = lifetimes(g)
    for name, at in plan.offsets.items():
        if live[name][0] <= f.consumer <= live[name][1]:
            assert at + g.tensor(name).nbytes <= start or start + f.window_bytes <= at, name
    doc = timeline(g, plan)
    assert doc["fusions"] == [dict(producer=f.producer, consumer=f.consumer, middle=w.middle,
                                   middle_bytes=g.tensor(w.middle).nbytes, window=w.name, window_offset=start,
                                   window_bytes=f.window_bytes, window_rows=3, chain=[f.producer, f.consumer])]
    assert f"{w.name}" in lib.files[f"{g.name}.c"]   # the arena comment lists it


def test_plan_without_candidates_is_the_unfused_plan():
    g = pair_graph(ConvCase(CONV, (1, 9, 8, 4), (1, 1), out_channels=24), ConvCase(DW, ANY, (3, 3)), "int8",
                   in_arena=True)
    assert plan_arena(g, {}, fusions=None) == plan_arena(g, {}, fusions=[])


@pytest.mark.parametrize("dtype", ["int8", "float32"])
@pytest.mark.parametrize("i", range(6))
def test_fused_pairs_match_the_oracle_on_x86(dtype, i):
    first, second = _fusable_cases(seed=13, count=6)[i]
    g = pair_graph(first, second, dtype, seed=i)
    target = target_or_skip("x86_64")
    assert _fused(generate_library(g, target)) == [(0, 1)]
    assert_verified(verify_graph(g, target, runs=2, seed=i, footprint=False))


def _on_core(core: str, i: int, count: int):
    target = target_or_skip(core)
    first, second = _fusable_cases(seed=29, count=count)[i]
    g = pair_graph(first, second, "int8", seed=100 + i, in_arena=i % 2 == 1)
    if i % 2 == 0:
        assert _fused(generate_library(g, target)) == [(0, 1)]
    assert_verified(verify_graph(g, target, runs=1, seed=i, footprint=False))


@pytest.mark.parametrize("core", ["cortex-m4", "cortex-m55"])
@pytest.mark.parametrize("i", range(4))
def test_fused_pairs_bit_exact_on_m4_and_m55(core, i):
    _on_core(core, i, 4)


@pytest.mark.slow
@pytest.mark.parametrize("core", ["cortex-m3", "cortex-m7", "cortex-m33", "cortex-m4", "cortex-m55"])
@pytest.mark.parametrize("i", range(4, 12))
def test_fused_pairs_bit_exact_on_every_core(core, i):
    _on_core(core, i, 12)


def test_float32_pair_on_m4():
    target = target_or_skip("cortex-m4")
    first, second = _fusable_cases(seed=31, count=1)[0]
    g = pair_graph(first, second, "float32", seed=5)
    assert _fused(generate_library(g, target)) == [(0, 1)]
    assert_verified(verify_graph(g, target, runs=1, seed=5, footprint=False))


def test_example_block_is_fused_end_to_end_with_the_layer_trace(tmp_path, monkeypatch):
    model, _ = copy_example(tmp_path)
    g = load_model(model)
    target = target_or_skip("cortex-m4")
    assert _fused(generate_library(g, target)) == [(0, 1)]
    report = verify_graph(g, target, runs=2, seed=1, check_layers=True)
    assert_verified(report)
    assert [op.index for op, _ in report.layers] == [1]   # the fused middle layer has no trace of its own
    # one count per op: the producer runs inside its consumer's call, which holds the pair's instructions
    assert report.row_fused == {0: 1}
    counts = report.layer_instructions
    assert len(counts) == len(g.ops) and counts[0] == 0 and counts[1] > 0
    monkeypatch.setenv("DWSCODEGEN_NO_ROW_FUSION", "1")
    unfused = verify_graph(g, target, runs=1, seed=1, footprint=False)
    assert unfused.row_fused == {} and min(unfused.layer_instructions) > 0
    # the pair costs what the two layers cost apart, plus its row copies and calls
    assert 0.9 <= counts[1] / sum(unfused.layer_instructions[:2]) < 1.3


def test_zoo_mobilenet_v1_fuses_its_peak_and_matches_on_x86():
    if not MBV1.exists():
        pytest.skip(f"{MBV1} is not here")
    g = load_model(MBV1)
    target = target_or_skip("x86_64")
    lib = generate_library(g, target)
    assert lib.plan.fusions and lib.arena_bytes < 36_864 - 4096
    assert_verified(verify_graph(g, target, runs=1, seed=0, footprint=False))


@pytest.mark.slow
def test_zoo_mobilenet_v1_under_36k_on_m4():
    if not MBV1.exists():
        pytest.skip(f"{MBV1} is not here")
    target = target_or_skip("cortex-m4")
    report = verify_graph(load_model(MBV1), target, runs=1, seed=0)
    assert_verified(report)
    assert report.footprint.ram <= 36_864


def test_ram_error_names_the_peak(tmp_path):
    model, _ = copy_example(tmp_path)
    result = invoke("generate", model, "-t", "cortex-m4", "-o", tmp_path / "out", "--ram", "200")
    assert_refused(result, "RAM: needs", "peaks at op 1 'pw1' (Conv2D)", "row window of", "--ram 1K")
    assert not (tmp_path / "out").exists()


def test_inspect_json_and_plot_show_the_fusion(tmp_path):
    model, _ = copy_example(tmp_path)
    result = invoke("inspect", model, "-t", "cortex-m4", "--json", "--ram", "64K")
    assert result.exit_code == 0, result.output
    plan = json.loads(result.output)["memory_plan"]
    assert [(f["producer"], f["consumer"]) for f in plan["fusions"]] == [(0, 1)]
    # at the peak, the window and the chain's kernels' scratch
    assert plan["peak"]["bytes"] == plan["fusions"][0]["window_bytes"] + sum(
        s["bytes"] for s in plan["scratch"] if s["op"] == plan["peak"]["op"])
    g = load_model(model)
    path = tmp_path / "plan.png"
    plot(g, generate_library(g, load_target("cortex-m4")).plan, path)
    assert path.stat().st_size > 1000
    text = invoke("inspect", model, "-t", "cortex-m4")
    assert "row-fused" in text.output


def test_generated_c_is_byte_identical_and_has_the_pipeline():
    g = pair_graph(ConvCase(DW, (2, 9, 7, 6), (3, 3), stride=(2, 2), padding=(1, 0, 1, 1)),
                   ConvCase(CONV, ANY, (1, 1), out_channels=5), "int8")
    target = load_target("cortex-m4")
    a, b = generate_library(g, target), generate_library(dataclasses.replace(g), target)
    assert a.files == b.files and _fused(a) == [(0, 1)]
    c = a.files[f"{g.name}.c"]
    assert "fused row by row" in c and "dws_row" in c and " * 1)" not in c and "+ 0," not in c


def test_a_road_without_row_kernels_keeps_the_unfused_plan():
    """A road assembling without row_kernels (one that cannot render fusions) keeps the unfused plan."""
    from dwscodegen.backends.library import assemble
    from dwscodegen.backends.templates.generate import generate_kernels
    g = pair_graph(ConvCase(CONV, (1, 9, 8, 4), (1, 1), out_channels=24),
                   ConvCase(DW, ANY, (3, 3), stride=(2, 2)), "int8", in_arena=True)
    target = load_target("x86_64")
    lib = assemble(g, generate_kernels(g, target), "templates", target)
    assert lib.plan.fusions == () and lib.plan == plan_arena(g, {(k.op_index, n): lag for k in generate_kernels(g, target)
                                                                 for n, lag in k.overlap})


@pytest.mark.parametrize("core", ["x86_64", "cortex-m4", "cortex-m55"])
@pytest.mark.parametrize("pair", ["conv->dw", "dw->conv"])
def test_full_convolutions_fuse_too(core, pair):
    """A 3x3 Conv2D producer (MobileNet's first layer) and a 3x3 Conv2D consumer (its im2col kernels on the
    window): the same mechanism, bit-exact."""
    target = target_or_skip(core)
    conv = ConvCase(CONV, (2, 11, 9, 3), (3, 3), out_channels=8, stride=(2, 2), padding=(0, 1, 1, 1), in_zp=3)
    dw = ConvCase(DW, ANY, (3, 3), padding="SAME", activation="relu6")
    first, second = (conv, dw) if pair == "conv->dw" else (
        dataclasses.replace(dw, in_shape=(1, 12, 7, 6), in_zp=-9),
        dataclasses.replace(conv, in_shape=ANY, stride=(1, 2), padding=(2, 0, 0, 1)))
    g = pair_graph(first, second, "int8", seed=7)
    assert _fused(generate_library(g, target)) == [(0, 1)]
    assert_verified(verify_graph(g, target, runs=1, seed=2, footprint=False))


# --- chains of three and more layers ---------------------------------------------------------------------------

PATTERNS = {3: [("pw", "dw", "pw"), ("conv", "dw", "pw"), ("dw", "pw", "dw"), ("pw", "dw", "dw"), ("dw", "conv", "pw")],
            4: [("pw", "dw", "pw", "pw"), ("dw", "pw", "dw", "pw"), ("conv", "dw", "pw", "dw"), ("pw", "dw", "dw", "pw")]}


def _layer(rng, kind: str, shape, last: bool) -> ConvCase:
    """One seeded random layer of a chain: odd kernels and sizes, stride 1 or 2, SAME / VALID / explicit padding.
    A pointwise layer strides only as the last one (row_fusion refuses a strided 1x1 producer)."""
    act = str(rng.choice(["none", "relu", "relu6"]))
    zp = int(rng.integers(-128, 128))
    if kind == "pw":
        stride = (int(rng.choice([1, 2])), 1) if last and rng.random() < 0.3 else (1, 1)
        return ConvCase(CONV, shape, (1, 1), out_channels=int(rng.integers(1, 14)), stride=stride, activation=act,
                        out_zp=zp)
    k = (int(rng.choice([2, 3, 5])), int(rng.choice([1, 3]))) if rng.random() < 0.3 else (3, 3)
    stride = (int(rng.choice([1, 2])), int(rng.choice([1, 2])))
    padding = ["SAME", "VALID", (int(rng.integers(0, k[0])), int(rng.integers(0, k[0])), int(rng.integers(0, k[1])), 0)
               ][int(rng.integers(0, 3))]
    if kind == "dw":
        return ConvCase(DW, shape, k, multiplier=int(rng.choice([1, 1, 2])), stride=stride, padding=padding,
                        activation=act, out_zp=zp)
    return ConvCase(CONV, shape, k, out_channels=int(rng.integers(2, 10)), stride=stride, padding=padding,
                    activation=act, out_zp=zp)


def _chain_cases(seed: int, count: int, length: int) -> list[list[ConvCase]]:
    """Seeded random chains of `length` layers that row_fusion offers whole (the planner may still decline)."""
    rng = np.random.default_rng(seed)
    found = []
    while len(found) < count:
        kinds = PATTERNS[length][int(rng.integers(0, len(PATTERNS[length])))]
        n, h, w, c = int(rng.choice([1, 2])), int(rng.integers(7, 16)), int(rng.integers(3, 10)), int(rng.integers(1, 9))
        cases = [dataclasses.replace(_layer(rng, kind, (n, h, w, c) if i == 0 else ANY, i == length - 1),
                                     in_zp=int(rng.integers(-128, 128)))
                 for i, kind in enumerate(kinds)]
        try:
            g = chain_graph(cases, "int8")
        except DwsError:   # a layer left without rows (VALID, strides): not a case
            continue
        if chain_ok(g, chain(g, 0, length - 1)):
            found.append(cases)
    return found


def _whole(length: int, offset: int = 0) -> list[tuple[int, ...]]:
    return [tuple(range(offset, offset + length))]


def _fused_ops(lib) -> list[tuple[int, ...]]:
    return [f.ops for f in lib.plan.fusions]


def test_chain_schedule_pulls_each_row_once_in_order():
    # pw -> dw 3x3 stride 2 SAME -> pw on 7 rows: the dw asks rows -1..1 for its row 0 (row -1 padding), then
    # two new rows per row; the last pw reads the dw's rows 0..3 one at a time, each computed once
    g = chain_graph([ConvCase(CONV, (1, 7, 4, 3), (1, 1), out_channels=6), ConvCase(DW, ANY, (3, 3), stride=(2, 2)),
                     ConvCase(CONV, ANY, (1, 1), out_channels=5)], "int8")
    f = chain(g, 0, 2)
    assert chain_ok(g, f) and [w.rows for w in f.windows] == [3, 1]
    dw_window, pw_window = window_schedules(g, f)
    assert pw_window == [(0, 0, [0]), (1, 0, [1]), (2, 0, [2]), (3, 0, [3])]
    assert dw_window == [(0, 0, [-1, 0, 1]), (1, 1, [2, 3]), (2, 1, [4, 5]), (3, 1, [6, -1])]
    assert first_rows(g, f) == [[0, 1], [2, 3], [4, 5], [6]]
    assert schedule(g, f) == [(0, [0]), (0, [1]), (0, [2]), (0, [3])]


def test_chain_refused_where_an_inner_layer_would_skip_rows():
    # dw -> pw -> pw stride 2: the inner pw would be asked its rows 0, 2, 4, ...; its window slides one row a
    # call, so the chain is refused; both pairs stay offered
    g = chain_graph([ConvCase(DW, (1, 9, 4, 3), (3, 3)), ConvCase(CONV, ANY, (1, 1), out_channels=4),
                     ConvCase(CONV, ANY, (1, 1), out_channels=5, stride=(2, 2))], "int8")
    assert not chain_ok(g, chain(g, 0, 2))
    assert [f.ops for f in candidates(g)] == [(0, 1), (1, 2)]
    # a middle read twice (here: a graph output) ends every chain at it
    g = chain_graph([ConvCase(CONV, (1, 9, 4, 3), (1, 1), out_channels=6), ConvCase(DW, ANY, (3, 3)),
                     ConvCase(CONV, ANY, (1, 1), out_channels=5)], "int8")
    g.outputs.append("mid2")
    assert [f.ops for f in candidates(g)] == [(0, 1)]


def test_planner_takes_a_chain_over_a_pair_where_the_arena_is_lower(monkeypatch, tmp_path):
    # an MBConv block between copies: expand 4 -> 24, dw 3x3 stride 1, project 24 -> 4. A pair leaves the
    # expanded or the dw output (9x8x24 each) stored; the chain stores neither
    block = [ConvCase(CONV, (1, 9, 8, 4), (1, 1), out_channels=24), ConvCase(DW, ANY, (3, 3)),
             ConvCase(CONV, ANY, (1, 1), out_channels=4)]
    g = chain_graph(block, "int8", in_arena=True)
    from dwscodegen.backends.templates.generate import generate_kernels
    target = load_target("x86_64")
    lib = generate_library(g, target)
    assert _fused_ops(lib) == [(1, 2, 3)]
    lags = {(k.op_index, n): lag for k in generate_kernels(g, target) for n, lag in k.overlap}
    pairs_only = plan_arena(g, lags, fusions=[f for f in candidates(g) if len(f.ops) == 2])
    assert pairs_only.fusions and lib.plan == plan_arena(g, lags, fusions=candidates(g))
    assert lib.arena_bytes < pairs_only.size
    assert set(lib.plan.windows) == {"mid1@window", "mid2@window"}
    doc = timeline(g, lib.plan)
    assert [(w["middle"], w["producer"], w["consumer"], w["chain"]) for w in doc["fusions"]] == [
        ("mid1", 1, 2, [1, 2, 3]), ("mid2", 2, 3, [1, 2, 3])]
    assert doc["peak"]["op"] == 3   # the windows count where the chain runs: in its last op's call, with x and y
    plot(g, lib.plan, tmp_path / "chain.png")
    assert (tmp_path / "chain.png").stat().st_size > 1000
    monkeypatch.setenv(NO_FUSION_ENV, "1")
    assert generate_library(g, load_target("x86_64")).arena_bytes > lib.arena_bytes


@pytest.mark.parametrize("dtype", ["int8", "float32"])
@pytest.mark.parametrize("length,i", [(3, 0), (3, 1), (3, 2), (4, 0), (4, 1), (4, 2)])
def test_fused_chains_match_the_oracle_on_x86(dtype, length, i):
    cases = _chain_cases(seed=41 + length, count=3, length=length)[i]
    g = chain_graph(cases, dtype, seed=i)
    target = target_or_skip("x86_64")
    assert _fused_ops(generate_library(g, target)) == _whole(length)
    assert_verified(verify_graph(g, target, runs=2, seed=i, footprint=False))


def test_chain_matrix_covers_batch_strides_and_padding():
    """The seeded matrix above holds what the brief asks of it (a regression guard on the generator)."""
    cases = [c for length in (3, 4) for c in _chain_cases(seed=41 + length, count=3, length=length)]
    cases += [c for length in (3, 4) for c in _chain_cases(seed=53 + length, count=6, length=length)]
    assert any(c[0].in_shape[0] == 2 for c in cases)
    assert {i for c in cases for i, layer in enumerate(c) if layer.stride[0] == 2} >= {0, 1, 2}
    assert {layer.padding for c in cases for layer in c if isinstance(layer.padding, str)} == {"SAME", "VALID"}


def _assert_whole_unless_its_scratch_costs_more(g, target, lib, length: int) -> None:
    """The whole chain is fused, unless its row kernels' scratch (planner.ScratchNeeds) makes the plan with it
    higher than the one taken (4-layer case 2 on the DSP cores: a 224-byte patch on tensors of a few hundred)."""
    if _fused_ops(lib) == _whole(length):
        return
    kernels = generate_kernels(g, target)
    whole = next(f for f in candidates(g) if f.ops == _whole(length)[0])
    needs = ScratchNeeds({k.op_index: k.scratch for k in kernels}, lambda f: row_kernels(g, target, f).scratch)
    only = plan_arena(g, {(k.op_index, n): lag for k in kernels for n, lag in k.overlap}, fusions=[whole],
                      scratch=needs)
    assert lib.plan.size < only.size, (lib.plan.size, only.size)


def _chain_on_core(core: str, length: int, i: int, count: int, dtype: str = "int8"):
    target = target_or_skip(core)
    cases = _chain_cases(seed=53 + length, count=count, length=length)[i]
    g = chain_graph(cases, dtype, seed=200 + i, in_arena=i % 2 == 1)
    lib = generate_library(g, target)
    if i % 2 == 0:
        _assert_whole_unless_its_scratch_costs_more(g, target, lib, length)
    report = verify_graph(g, target, runs=1, seed=i, footprint=False)
    assert_verified(report)
    # one count per op: every fused op but a chain's last counts 0, the last holds the chain
    fused_into = {j: f.consumer for f in lib.plan.fusions for j in f.ops[:-1]}
    assert report.row_fused == fused_into
    assert all((n == 0) == (op.index in fused_into) for op, n in zip(g.ops, report.layer_instructions))


@pytest.mark.parametrize("core", ["cortex-m4", "cortex-m55"])
@pytest.mark.parametrize("length,i", [(3, 0), (3, 1), (4, 1), (4, 2)])
def test_fused_chains_bit_exact_on_m4_and_m55(core, length, i):
    _chain_on_core(core, length, i, 6)


def test_float32_chain_on_m4():
    _chain_on_core("cortex-m4", 3, 2, 6, "float32")


@pytest.mark.slow
@pytest.mark.parametrize("core", ["cortex-m3", "cortex-m7", "cortex-m33", "cortex-m4", "cortex-m55"])
@pytest.mark.parametrize("length,i", [(3, 2), (3, 3), (3, 4), (3, 5), (4, 0), (4, 3), (4, 4), (4, 5)])
def test_fused_chains_bit_exact_on_every_core(core, length, i):
    _chain_on_core(core, length, i, 6)


def test_zoo_mobilenet_v2_fuses_its_blocks_on_m4():
    """Each MBConv block's expand -> dw -> project runs as one chain: MobileNetV2-0.35 at 96x96 int8 verified
    bit-exactly under QEMU on Cortex-M4 in under 24 KB of RAM (40,848 B with pairs only)."""
    if not MBV2.exists():
        pytest.skip(f"{MBV2} is not here")
    target = target_or_skip("cortex-m4")
    g = load_model(MBV2)
    lib = generate_library(g, target)
    assert any(len(f.ops) >= 3 for f in lib.plan.fusions)
    report = verify_graph(g, target, runs=1, seed=0)
    assert_verified(report)
    assert report.footprint.ram <= 24 * 1024
    fused_into = {j: f.consumer for f in lib.plan.fusions for j in f.ops[:-1]}
    assert report.row_fused == fused_into
    assert all((n == 0) == (op.index in fused_into) for op, n in zip(g.ops, report.layer_instructions))


@pytest.mark.parametrize("core", ["x86_64", "cortex-m4", "cortex-m55"])
@pytest.mark.parametrize("stride,batch", [((1, 1), 1), ((2, 2), 2)])
def test_chain_output_overlaps_its_input_bit_exact(core, stride, batch):
    """An MBConv block between copies: the chain's output is placed over its input by the pipeline's lag
    (row_fusion.fused_lag: each output row is written after the input rows it pulls are read)."""
    target = target_or_skip(core)
    g = chain_graph([ConvCase(CONV, (batch, 9, 8, 4), (1, 1), out_channels=24, out_zp=-3),
                     ConvCase(DW, ANY, (3, 3), stride=stride, activation="relu6", out_zp=11),
                     ConvCase(CONV, ANY, (1, 1), out_channels=6)], "int8", seed=17, in_arena=True)
    lib = generate_library(g, target)
    assert _fused_ops(lib) == [(1, 2, 3)] and lib.plan.overlaps["y"][0] == "x"
    x, y = lib.plan.offsets["x"], lib.plan.offsets["y"]
    assert y < x + g.tensor("x").nbytes and x < y + g.tensor("y").nbytes   # they share bytes
    assert_verified(verify_graph(g, target, runs=2, seed=3, footprint=False))


# --- element-wise members -------------------------------------------------------------------------------------

HS, MUL, ADD = "HardSwish", "Mul", "Add"


def _stages(dtype: str, first: bool = True) -> list:
    """HardSwish (first) -> pw -> HardSwish -> dw 3x3 s2 -> squeeze-excite Mul -> pw -> HardSwish/Logistic
    (last): element-wise members first, inner and last, and a broadcast side."""
    head = [Elementwise(HS, in_shape=(1, 9, 7, 4), out_zp=3)] if first else []
    return [*head, ConvCase(CONV, (1, 9, 7, 4) if not first else ANY, (1, 1), out_channels=8, out_zp=5),
            Elementwise(HS, out_zp=-4), ConvCase(DW, ANY, (3, 3), stride=(2, 2), out_zp=-7),
            Elementwise(MUL, side="scale", out_zp=2), ConvCase(CONV, ANY, (1, 1), out_channels=5, out_zp=1),
            Elementwise("Logistic" if dtype == "float32" else HS, out_zp=6)]


def _residual(batch: int = 2) -> list:
    """An MBConv block with a HardSwish, a Mul by a full side read row by row and the residual Add of the
    block's input: the chain's input is a side too."""
    return [ConvCase(CONV, (batch, 9, 7, 4), (1, 1), out_channels=12, out_zp=-2), Elementwise(HS, out_zp=-4),
            ConvCase(DW, ANY, (3, 3), out_zp=9), Elementwise(MUL, side="full", out_zp=2),
            ConvCase(CONV, ANY, (1, 1), out_channels=4, out_zp=-6), Elementwise(ADD, side="residual", out_zp=4)]


def _stores_no_middle(lib) -> None:
    middles = {m for f in lib.plan.fusions for m in f.middles}
    assert middles and not middles & set(lib.plan.offsets)


def test_an_elementwise_stage_is_one_row_and_keeps_none():
    g = stage_graph(_stages("int8"), "int8")
    f = chain(g, 0, 6)
    assert chain_ok(g, f) and f in candidates(g) and f.input == "x" and side_inputs(g, f) == ["s"]
    # the readers: pw, HardSwish, dw, Mul, pw, HardSwish: one row each but the dw's three
    assert [w.rows for w in f.windows] == [1, 1, 3, 1, 1, 1]
    levels = window_schedules(g, f)
    assert all(kept == 0 and made == [r] for k in (0, 1, 3, 4, 5) for r, kept, made in levels[k])
    assert levels[2][:2] == [(0, 0, [-1, 0, 1]), (1, 1, [2, 3])]
    assert first_rows(g, f)[:2] == [[0, 1], [2, 3]]
    # the element-wise members do not count against MAX_CHAIN (conv-like ops only): 3 here
    assert max(len(c.ops) for c in candidates(g)) == 7


def test_planner_refuses_what_a_row_cannot_compute():
    def offered(g) -> list[tuple[int, ...]]:
        return sorted({f.ops for f in candidates(g)})

    base = [ConvCase(CONV, (1, 9, 7, 4), (1, 1), out_channels=6), Elementwise(HS), Elementwise(MUL, side="full")]
    g = stage_graph(base, "int8")
    assert offered(g) == [(0, 1), (0, 1, 2), (1, 2)]
    # the Mul's side is the pw's output, read by the HardSwish too: mid1 can be no middle; the side of the
    # chain HardSwish -> Mul it can be (stored whole, computed before)
    g.ops[2].inputs = ["mid1", "mid2"]
    g.inputs.remove("r")
    assert offered(g) == [(1, 2)]
    # a middle read twice by the one op (Mul(mid2, mid2)) is no row stream
    g.ops[2].inputs = ["mid2", "mid2"]
    assert offered(g) == [(0, 1)]
    # a constant side of the output's shape would be the whole tensor in every row's kernel
    g = stage_graph(base, "int8")
    g.tensors["r"].data = np.zeros(g.tensors["r"].shape, np.int8)
    g.inputs.remove("r")
    assert offered(g) == [(0, 1)]
    # a side broadcast over W but not H (1xHx1xC) is neither one row for all nor one row each
    g = stage_graph(base, "float32")
    g.tensors["r"] = dataclasses.replace(g.tensors["r"], shape=(1, 9, 1, 6))
    assert offered(g) == [(0, 1)]


@pytest.mark.parametrize("dtype", ["int8", "float32"])
@pytest.mark.parametrize("in_arena", [False, True])
def test_elementwise_chains_match_the_oracle_on_x86(dtype, in_arena):
    target = target_or_skip("x86_64")
    for stages, seed in ((_stages(dtype), 3), (_residual(), 5)):
        g = stage_graph(stages, dtype, seed=seed, in_arena=in_arena)
        lib = generate_library(g, target)
        assert any(g.ops[i].type in (HS, MUL, ADD, "Logistic") for f in lib.plan.fusions for i in f.ops)
        _stores_no_middle(lib)
        assert_verified(verify_graph(g, target, runs=2, seed=seed, footprint=False))


def test_the_chain_input_read_as_a_side_keeps_its_bytes():
    """The residual Add reads the block's input row by row while the chain streams it: the output may not
    overlap it (the chain's lag does not hold for a side) when the whole block is one chain."""
    from dwscodegen.backends.templates.generate import generate_kernels
    g = stage_graph(_residual(batch=1), "int8", seed=5, in_arena=True)
    lags = {(k.op_index, n): lag for k in generate_kernels(g, load_target("x86_64")) for n, lag in k.overlap}
    block = chain(g, 2, 7)   # after the copies of x and r
    plan = plan_arena(g, lags, fusions=[block])
    assert plan.fusions == (block,) and side_inputs(g, block) == ["r", "x"] and "y" not in plan.overlaps
    x, y = plan.offsets["x"], plan.offsets["y"]
    assert y >= x + g.tensor("x").nbytes or x >= y + g.tensor("y").nbytes


def _stages_on_core(core: str, which: str, dtype: str = "int8", in_arena: bool = False):
    target = target_or_skip(core)
    stages, seed = {"members": (_stages(dtype), 3), "inner": (_stages(dtype, first=False), 4),
                    "residual": (_residual(), 5)}[which]
    g = stage_graph(stages, dtype, seed=seed, in_arena=in_arena)
    lib = generate_library(g, target)
    _stores_no_middle(lib)
    report = verify_graph(g, target, runs=1, seed=seed, footprint=False)
    assert_verified(report)
    fused_into = {j: f.consumer for f in lib.plan.fusions for j in f.ops[:-1]}
    assert report.row_fused == fused_into


@pytest.mark.parametrize("core", ["cortex-m4", "cortex-m55"])
@pytest.mark.parametrize("which,in_arena", [("members", False), ("residual", True)])
def test_elementwise_chains_bit_exact_on_m4_and_m55(core, which, in_arena):
    _stages_on_core(core, which, in_arena=in_arena)


def test_float32_elementwise_chain_on_m4():
    _stages_on_core("cortex-m4", "members", "float32")


# one core per kernel family beyond the quick set: Thumb-2 (M3), DSP (M33, whose kernels M4 and M7 share), MVE
@pytest.mark.slow
@pytest.mark.parametrize("core", ["cortex-m3", "cortex-m33", "cortex-m55"])
@pytest.mark.parametrize("which,dtype,in_arena", [("members", "int8", True), ("inner", "int8", False),
                                                  ("residual", "int8", False), ("inner", "float32", True),
                                                  ("residual", "float32", True)])
def test_elementwise_chains_bit_exact_per_kernel_family(core, which, dtype, in_arena):
    _stages_on_core(core, which, dtype, in_arena)


MBV3S = ROOT.parent / "shared" / "models" / "zoo" / "mbv3s_96_s8.tflite"


def test_zoo_mobilenet_v3_small_fuses_its_stem():
    """Table -> Conv2D 3x3 s2 -> HardSwish -> DepthwiseConv2D s2 runs as one chain: the 96x96x3 and 48x48x16
    tensors (36,864 B each, the peak before) are never stored; the arena halves (37,136 B before)."""
    if not MBV3S.exists():
        pytest.skip(f"{MBV3S} is not here")
    g = load_model(MBV3S)
    lib = generate_library(g, load_target("cortex-m4"))
    assert (0, 1, 2, 3) in [f.ops for f in lib.plan.fusions]
    assert lib.arena_bytes <= 20 * 1024
    _stores_no_middle(lib)


@pytest.mark.slow
@pytest.mark.parametrize("core", ["cortex-m4", "cortex-m55"])
def test_zoo_mobilenet_v3_small_bit_exact(core):
    if not MBV3S.exists():
        pytest.skip(f"{MBV3S} is not here")
    target = target_or_skip(core)
    g = load_model(MBV3S)
    report = verify_graph(g, target, runs=1, seed=0)
    assert_verified(report)
    assert report.footprint.ram <= 28 * 1024
