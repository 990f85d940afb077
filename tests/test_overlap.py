"""In-place execution: an op's output placed over the input that dies at it, `lag` bytes below it, where the
kernel's declared write order (backends/templates/streams.py) allows it.

The lags are pinned on hand-derived cases; the planner's placements are checked against every lag and
lifetime on real models; and every declared kernel runs bit-exactly with its output overlapping its input,
on x86_64 natively and on Cortex-M4 (DSP variants) and M55 (MVE variants) under QEMU (a quick subset of the
layer matrix by default, all of it with --runslow).
"""
from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest

from dwscodegen.backends import generate_library
from dwscodegen.backends.templates.generate import generate_kernels
from dwscodegen.importers import load_model
from dwscodegen.ir import Graph, NoAttrs, Op, Quant
from dwscodegen.memory_timeline import plot, timeline
from dwscodegen.overlap import raster_tiles, stream_lag, window_lag
from dwscodegen.planner import ALIGN, in_place_pairs, lifetimes, plan_arena
from dwscodegen.targets import load_target
from dwscodegen.validate import validate
from dwscodegen.verify import verify_graph

from .support.layers import MATRIX, ConvCase, assert_verified, conv_graph, random_conv_case
from .support.targets import target_or_skip

ROOT = Path(__file__).resolve().parent.parent
MODELS = [ROOT.parent / "shared" / "models" / "kws_ref_model.tflite",
          *(ROOT.parent / "shared" / "models" / "zoo" / f"{m}.tflite"
            for m in ("mbv1_a025_96_c2_s8", "mbv2_a035_96_s8", "mbv3s_96_s8", "mbv2_a035_96_f32"))]
DW, CONV = "DepthwiseConv2D", "Conv2D"


def in_arena(case: ConvCase, dtype: str, seed: int) -> Graph:
    """case's layer between two copies (Reshape), so both its input and its output are arena tensors."""
    layer = conv_graph(case, dtype, seed=seed)
    tensors = dict(layer.tensors)
    for name, twin in (("x", "x_in"), ("y", "y_out")):
        tensors[twin] = copy.deepcopy(tensors[name])
        tensors[twin].name = twin
    op = layer.ops[0]
    ops = [Op(0, "copy_in", "Reshape", ["x_in"], ["x"], NoAttrs()),
           Op(1, op.name, op.type, op.inputs, op.outputs, op.attrs),
           Op(2, "copy_out", "Reshape", ["y"], ["y_out"], NoAttrs())]
    return validate(Graph("in_place_under_test", tensors, ops, ["x_in"], ["y_out"], source="<test>"))


def test_stream_lag_simulates_the_order():
    # unit u reads [10u, ...) and writes up to 12(u+1): the output must trail by 12 (u = 0) ... 12 + 2u
    reads, writes = np.arange(4) * 10, (np.arange(4) + 1) * 12
    assert stream_lag(reads, writes) == 12 + 2 * 3
    # a unit that reads all of its input first only has to stay clear of the later units' reads
    assert stream_lag(reads, writes, buffered=True) == 2 + 2 * 2
    assert stream_lag(np.arange(4) * 12, (np.arange(4) + 1) * 12, buffered=True) == 0


@pytest.mark.parametrize("stride", [1, 2])
def test_depthwise_lag_is_a_row_and_two_pixels(stride):
    h, w, c = 9, 7, 8
    graph = conv_graph(ConvCase(DW, (1, h, w, c), (3, 3), stride=(stride, stride)), "int8")
    op = graph.ops[0]
    ow = graph.tensor("y").shape[2]
    lag = window_lag(graph, op, raster_tiles(graph.tensor("y").shape[1] * ow, 1))
    if stride == 1:   # pixel p written after reading from p - W - 1 on: W + 2 pixels ahead
        assert lag == (w + 2) * c
    else:             # output pixel (1, 0) ends at (ow + 1) * C and reads from input row 1: input pixel W
        assert lag == max(c, (ow + 1 - w) * c, 0)


def test_pointwise_lags():
    expand = conv_graph(ConvCase(CONV, (2, 5, 6, 8), (1, 1), out_channels=24), "int8")
    pixels = 5 * 6
    # buffered 4-pixel tiles: the output runs ahead by OC - IC per pixel; the last full tile decides
    # (the two images' units run back to back; the worst is the last but one: pixels 0 .. 2P - 2 written,
    # 2P - 1 still to read)
    assert window_lag(expand, expand.ops[0], raster_tiles(pixels, 4), buffered=True) == (2 * pixels - 1) * (24 - 8)
    same = conv_graph(ConvCase(CONV, (1, 5, 6, 8), (1, 1), out_channels=8), "int8")
    assert window_lag(same, same.ops[0], raster_tiles(pixels, 4), buffered=True) == 0
    assert window_lag(same, same.ops[0], raster_tiles(pixels, 1)) == 8


def check_plan(graph: Graph, plan, pairs: dict) -> None:
    """No byte shared by two live tensors, except an output over its dying input at least its lag below it;
    a moved output's home clear of everything live across its move."""
    live = lifetimes(graph)
    assert set(plan.offsets) == set(live)
    size = {n: graph.tensor(n).nbytes for n in live}
    for op in graph.ops:
        k, out = op.index, op.outputs[0]
        at = {n: plan.moves.get(n, plan.offsets[n]) if n == out else plan.offsets[n]
              for n in live if live[n][0] <= k <= live[n][1]}
        for a in at:
            assert at[a] % ALIGN == 0 and at[a] >= 0 and at[a] + size[a] <= plan.size
            for b in at:
                if a >= b or at[a] + size[a] <= at[b] or at[b] + size[b] <= at[a]:
                    continue
                x, y = (a, b) if (a, b) in pairs else (b, a)
                assert (x, y) in pairs and y == out and at[y] <= at[x] - pairs[(x, y)], (op.where(), a, b)
        if out in plan.moves:
            home = plan.offsets[out]
            for n in live:
                if n != out and live[n][0] <= k < live[n][1]:
                    assert home + size[out] <= plan.offsets[n] or plan.offsets[n] + size[n] <= home, (out, n)


PLANNED = [(0, "cortex-m4"), (0, "cortex-m55"), (0, "x86_64"), (1, "cortex-m4"),
           pytest.param(2, "cortex-m4", marks=pytest.mark.slow), pytest.param(3, "cortex-m55", marks=pytest.mark.slow),
           pytest.param(4, "x86_64", marks=pytest.mark.slow)]


@pytest.mark.parametrize("index, target", PLANNED)
def test_plans_keep_every_lag(index, target):
    model = MODELS[index]
    if not model.exists():
        pytest.skip(f"{model} is not here")
    graph = load_model(model)
    lags = {(k.op_index, n): lag for k in generate_kernels(graph, load_target(target)) for n, lag in k.overlap}
    plan = plan_arena(graph, lags)
    check_plan(graph, plan, in_place_pairs(graph, lags))
    assert plan.overlaps, "a MobileNet or DS-CNN has layers whose output can overlap its input"
    assert plan.size <= plan_arena(graph).size


QUICK = [0, 1, 9, 12]   # MATRIX: depthwise 3x3, depthwise stride 2, pointwise 8 -> 16, the KWS-like first conv


def _matrix(quick: list[int]) -> list:
    return [pytest.param(i, id=MATRIX[i].id(), marks=() if i in quick else pytest.mark.slow)
            for i in range(len(MATRIX))]


@pytest.mark.parametrize("index", _matrix(QUICK))
@pytest.mark.parametrize("target_name", ["x86_64", "cortex-m4", "cortex-m55", "x86_64-v3", "x86_64-v4",
                                         pytest.param("cortex-m7", marks=pytest.mark.slow)])
def test_layer_in_place_is_bit_exact(index, target_name):
    """The in-place kernels keep `restrict` on their output (without it they lose about a third of their
    speed), so the declared orders are also checked where gcc schedules for another pipeline (M7, slow)."""
    target = target_or_skip(target_name)
    graph = in_arena(MATRIX[index], "int8", seed=index)
    lib = generate_library(graph, target)
    declared = bool(generate_kernels(graph, target)[1].overlap)
    # declared kernels run in place; the others (padded or planar depthwise variants, the x86 depthwise
    # variants, which walk their regions one after the other) keep their output apart
    assert ("y" in lib.plan.overlaps) == declared
    x86_depthwise = target_name.startswith("x86_64-") and MATRIX[index].kind == DW
    assert declared or index not in QUICK or x86_depthwise, f"{MATRIX[index].id()} does not run in place"
    assert_verified(verify_graph(graph, target, runs=2, seed=3, footprint=False))


@pytest.mark.parametrize("index", _matrix([0, 9]))
def test_float_layer_in_place_is_bit_exact(index):
    target = target_or_skip("x86_64")
    graph = in_arena(MATRIX[index], "float32", seed=index)
    assert "y" in generate_library(graph, target).plan.overlaps
    assert_verified(verify_graph(graph, target, runs=2, seed=3, footprint=False))


def test_hybrid_layer_in_place_is_bit_exact():
    target = target_or_skip("x86_64")
    layer = conv_graph(MATRIX[9], "float32", seed=9)
    w = layer.tensor("w")
    scale = np.abs(w.data).max(axis=(1, 2, 3)) / 127
    q = np.round(w.data / scale[:, None, None, None]).astype(np.int8)
    graph = in_arena(MATRIX[9], "float32", seed=9)
    graph.tensors["w"] = type(w)("w", w.shape, "int8", Quant(scale.astype(np.float64), np.zeros(len(scale), np.int32),
                                                              axis=0), q)
    graph = validate(graph)
    lib = generate_library(graph, target)
    assert "with int8 weights (hybrid)" in lib.files[f"{graph.name}.c"] and "y" in lib.plan.overlaps
    assert_verified(verify_graph(graph, target, runs=2, seed=3, footprint=False))


@pytest.mark.parametrize("batch", [2])
def test_batch_in_place_is_bit_exact(batch):
    target = target_or_skip("x86_64")
    case = ConvCase(DW, (batch, 6, 5, 4), (3, 3), stride=(2, 1))
    graph = in_arena(case, "int8", seed=7)
    assert "y" in generate_library(graph, target).plan.overlaps
    assert_verified(verify_graph(graph, target, runs=2, seed=3, footprint=False))


def test_kws_in_place_on_cortex_m4_is_bit_exact():
    model = MODELS[0]
    if not model.exists():
        pytest.skip(f"{model} is not here")
    target = target_or_skip("cortex-m4")
    graph = load_model(model)
    lib = generate_library(graph, target)
    assert lib.plan.moves and len(lib.plan.overlaps) >= 8
    assert_verified(verify_graph(graph, target, runs=1, seed=0, footprint=False))


def test_memory_timeline_carries_the_plan(tmp_path):
    graph = in_arena(MATRIX[1], "int8", seed=1)
    plan = generate_library(graph, load_target("x86_64")).plan
    doc = timeline(graph, plan)
    rows = {t["name"]: t for t in doc["tensors"]}
    assert set(rows) == set(plan.offsets) == {"x", "y"}
    assert rows["y"]["overlaps"] == "x" and rows["y"]["lag"] == plan.overlaps["y"][1]
    assert (rows["x"]["first"], rows["x"]["last"], rows["y"]["first"], rows["y"]["last"]) == (0, 1, 1, 2)
    assert doc["peak"]["bytes"] == max(t["offset"] + t["bytes"] for t in doc["tensors"]) <= plan.size
    assert doc["arena_bytes"] == plan.size < graph.tensor("x").nbytes + graph.tensor("y").nbytes
    plot(graph, plan, tmp_path / "plan.png")
    assert (tmp_path / "plan.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_kws_float32_moves_on_x86_are_exact():
    model = MODELS[0].with_name("kws_ref_model_float32.tflite")
    if not model.exists():
        pytest.skip(f"{model} is not here")
    target = target_or_skip("x86_64")
    graph = load_model(model)
    lib = generate_library(graph, target)
    assert lib.plan.moves and "dws_arena_move(" in lib.files[f"{graph.name}.c"]
    assert_verified(verify_graph(graph, target, runs=2, seed=0, footprint=False))


@pytest.mark.parametrize("target_name, seed", [("x86_64", s) for s in range(8)] + [("x86_64-v4", s) for s in range(4)]
                         + [pytest.param("cortex-m4", s, marks=pytest.mark.slow) for s in range(6)]
                         + [pytest.param("cortex-m55", s, marks=pytest.mark.slow) for s in range(6)])
def test_random_layers_in_place_are_bit_exact(target_name, seed):
    """Seeded odd shapes, strides, dilations, paddings and batches of 1 or 2, each run with whatever overlap
    its kernel declares (none is fine too: then the plan is disjoint)."""
    target = target_or_skip(target_name)
    case = random_conv_case(np.random.default_rng(100 + seed), batches=(1, 2))
    graph = in_arena(case, "int8", seed=seed)
    assert_verified(verify_graph(graph, target, runs=2, seed=seed, footprint=False))


def _between_copies(graph: Graph) -> Graph:
    """graph's one op with a copy (Reshape) before each activation input and after its output, so they are all
    arena tensors and the op's output may be placed over a dying input."""
    tensors = dict(graph.tensors)
    op = graph.ops[0]
    ops, inputs = [], []
    for name in graph.inputs:
        twin = f"{name}_in"
        tensors[twin] = copy.deepcopy(tensors[name])
        tensors[twin].name = twin
        ops.append(Op(len(ops), f"copy_{name}", "Reshape", [twin], [name], NoAttrs()))
        inputs.append(twin)
    (out,) = op.outputs
    tensors[f"{out}_out"] = copy.deepcopy(tensors[out])
    tensors[f"{out}_out"].name = f"{out}_out"
    ops.append(Op(len(ops), op.name, op.type, op.inputs, op.outputs, op.attrs))
    ops.append(Op(len(ops), "copy_out", "Reshape", [out], [f"{out}_out"], NoAttrs()))
    return validate(Graph("in_place_under_test", tensors, ops, inputs, [f"{out}_out"], source="<test>"))


GLUE_IN_PLACE = [  # (op, inputs, output, Cortex-M target, kernel expected)
    ("ADD", [((1, 5, 7, 11), 0.05, -3), ((1, 5, 7, 11), 0.03, 7)], ((1, 5, 7, 11), 0.07, -1), "cortex-m4", "add_s8_dsp"),
    ("MUL", [((2, 4, 5, 19), 0.004, -128), ((2, 1, 1, 19), 0.03, 7)], ((2, 4, 5, 19), 0.002, -5), "cortex-m4",
     "mul_s8_dsp"),
    ("MUL", [((2, 4, 5, 19), 0.004, -128), ((2, 1, 1, 19), 0.03, 7)], ((2, 4, 5, 19), 0.002, -5), "cortex-m55",
     "mul_s8_mve"),
    ("LOGISTIC", [((2, 3, 37), 0.06, -7)], ((2, 3, 37), 1 / 256, -128), "cortex-m55", "lookup_table_s8_mve"),
]


@pytest.mark.qemu
@pytest.mark.parametrize("case", GLUE_IN_PLACE, ids=lambda c: f"{c[0]}-{c[3]}-{c[4]}")
def test_glue_variants_in_place_are_bit_exact(tmp_path, case):
    """The Cortex-M glue variants' declared orders (streams.py): the output over its full-size dying input."""
    pytest.importorskip("tflite")
    from dwscodegen.importers import load_model
    from .support.tflite_builder import build_single_op_model
    from .support.tflite_cases import act
    kind, ins, (out_shape, *out_q), target_name, kernel = case
    target = target_or_skip(target_name)
    specs = [act(f"x{i}", shape, "int8", scale, zp) for i, (shape, scale, zp) in enumerate(ins)]
    options = {} if kind == "LOGISTIC" else dict(fused_activation="NONE")
    path = tmp_path / "op.tflite"
    path.write_bytes(build_single_op_model(kind, specs, [act("y", out_shape, "int8", *out_q)], options))
    graph = _between_copies(load_model(path))
    op = graph.ops[len(ins)]
    assert generate_kernels(graph, target)[op.index].overlap, kernel
    lib = generate_library(graph, target)
    assert "y" in lib.plan.overlaps
    from dwscodegen.backends.templates import kernel_used
    assert kernel_used(graph, op, target) == kernel
    assert_verified(verify_graph(graph, target, runs=2, seed=5, oracle="numpy", footprint=False))


W8_IN_PLACE = [(ConvCase(CONV, (1, 6, 5, 24), (1, 1), out_channels=16), "pointwise_conv2d_s8_dsp_w8_4x2"),
               (ConvCase(CONV, (1, 7, 5, 16), (1, 1), out_channels=24), "pointwise_conv2d_s8_dsp_w8_1x2"),
               (ConvCase(CONV, (1, 9, 7, 8), (3, 3), out_channels=8), "conv2d_s8_dsp_im2col_w8_2x2"),
               (ConvCase(CONV, (1, 8, 6, 8), (3, 3), out_channels=6, stride=(2, 2)), "conv2d_s8_dsp_im2col_w8_1x2")]


@pytest.mark.qemu
@pytest.mark.parametrize("case, kernel", W8_IN_PLACE, ids=[k for _, k in W8_IN_PLACE])
def test_int8_weight_variants_in_place_are_bit_exact(case, kernel):
    """The int8-weight DSP GEMMs a flash budget picks (dsp_w8.py) widen each tile's input first, as their int16
    twins do, and so run in place too."""
    target = target_or_skip("cortex-m4")
    graph = in_arena(case, "int8", seed=4)
    schedules = {1: {"kernel": kernel}}
    lib = generate_library(graph, target, "templates", schedules)
    assert "y" in lib.plan.overlaps
    assert_verified(verify_graph(graph, target, runs=2, seed=3, footprint=False, schedules=schedules))


def _streamed_conv_variants():
    """Every Cortex-M conv variant whose registry entry declares a write order, on a fast target that has it."""
    from dwscodegen.backends.templates import simd
    from dwscodegen.backends.templates.simd import registry
    out = []
    for target_name in ("cortex-m4", "cortex-m55"):
        offered = simd.offered(load_target(target_name))
        for v in registry.variants().values():
            if v.name in offered and v.stream is not None and v.op.endswith("conv2d") and v.dtype == "int8":
                out.append(pytest.param(v.name, v.op, target_name, id=f"{v.name}-{target_name}"))
    return list({p.id: p for p in out}.values())


STREAM_CASES = {"pointwise_conv2d": ConvCase(CONV, (1, 6, 5, 24), (1, 1), out_channels=16),
                "conv2d": ConvCase(CONV, (1, 9, 7, 8), (3, 3), out_channels=8),
                "depthwise_conv2d": ConvCase(DW, (1, 7, 6, 16), (3, 3))}


@pytest.mark.qemu
@pytest.mark.parametrize("kernel, op, target_name", _streamed_conv_variants())
def test_every_declared_conv_stream_runs_in_place_bit_exactly(kernel, op, target_name):
    """Each registry entry's `stream` (templates/kernels/variants.toml) lets its output overlap its dying input,
    and the kernel is then still bit-exact: the declared order is the kernel's own."""
    target = target_or_skip(target_name)
    graph = in_arena(STREAM_CASES[op], "int8", seed=6)
    schedules = {1: {"kernel": kernel}}
    lib = generate_library(graph, target, "templates", schedules)
    assert "y" in lib.plan.overlaps, kernel
    assert_verified(verify_graph(graph, target, runs=2, seed=3, footprint=False, schedules=schedules))
