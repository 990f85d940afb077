"""Row fusion on the tvm road (backends/tvm/backend.row_kernels): the plan the templates road takes, each fused
layer built again by TVM on its one-row graphs (row_pipeline.py), tensorized where it is on the whole layer.

Pinned: two seeded chains (an MBConv block pw -> dw -> pw; dw stride 2 -> pw -> dw, whose producer has three
classes of padded rows) are fused on the tvm road with the templates road's plan and arena, and run bit-exactly
under QEMU on Cortex-M4 (DSP) and M55 (MVE) (M3/M7/M33 in the slow matrix), the producer's instances sharing one
weight array; per-layer counts are 0 inside the chain, its last op holding the call; a float32 chain on x86;
a tuned knob reaches the row instances; DWSCODEGEN_NO_ROW_FUSION=1 gives the unfused tvm C byte for byte.
"""
from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.tvm
tvm = pytest.importorskip("tvm")

from dwscodegen.backends import generate_library  # noqa: E402
from dwscodegen.backends.library import assemble  # noqa: E402
from dwscodegen.backends.tvm import generate_kernels  # noqa: E402
from dwscodegen.backends.tvm.simd import applies  # noqa: E402
from dwscodegen.planner import NO_FUSION_ENV  # noqa: E402
from dwscodegen.row_fusion import producer_classes  # noqa: E402
from dwscodegen.targets import load_target  # noqa: E402
from dwscodegen.verify import verify_graph  # noqa: E402

from .support.layers import ConvCase, assert_verified  # noqa: E402
from .support.row_pairs import chain_graph  # noqa: E402
from .support.targets import target_or_skip  # noqa: E402

DW, CONV = "DepthwiseConv2D", "Conv2D"
ANY = (0, 0, 0, 0)   # chain_graph takes each later layer's input shape from the layer before
CHAINS = {
    "mbconv": [ConvCase(CONV, (1, 9, 8, 4), (1, 1), out_channels=24, activation="relu6", in_zp=11, out_zp=-128),
               ConvCase(DW, ANY, (3, 3), activation="relu6", out_zp=-128),
               ConvCase(CONV, ANY, (1, 1), out_channels=4, out_zp=3)],
    "dw-pw-dw": [ConvCase(DW, (1, 9, 7, 8), (3, 3), stride=(2, 2), padding=(1, 1, 1, 1), in_zp=-20, out_zp=4),
                 ConvCase(CONV, ANY, (1, 1), out_channels=8, activation="relu", out_zp=-9),
                 ConvCase(DW, ANY, (3, 3), padding="SAME", out_zp=6)],
}


def _graph(name: str, dtype: str = "int8"):
    return chain_graph(CHAINS[name], dtype, seed=len(name))


def _on_core(core: str, name: str):
    target = target_or_skip(core)
    g = _graph(name)
    lib = generate_library(g, target, "tvm")
    templates = generate_library(g, target)
    assert [f.ops for f in lib.plan.fusions] == [(0, 1, 2)] and lib.plan.fusions == templates.plan.fusions
    # the same windows; the templates' arena holds its kernels' scratch besides (the tvm road keeps none)
    assert set(lib.plan.windows) == set(templates.plan.windows) and not lib.plan.scratch
    assert lib.arena_bytes <= templates.arena_bytes
    c = lib.files[f"{g.name}.c"]
    # every row instance tensorized where its layer is (on M4 and M55: all of them)
    tensorized = {i for i in range(3) if applies(g, g.ops[i], target)}
    headers = re.findall(r"^ \* op (\d) 'layer\d' \(\w+\), TVM backend(, tensorized)?", c, re.M)
    assert len(headers) == len(producer_classes(g, g.ops[0])) + 2   # the producer's instances, the two windows'
    assert all(bool(t) == (int(i) in tensorized) for i, t in headers), headers
    if core in ("cortex-m4", "cortex-m55"):
        assert tensorized == {0, 1, 2}
    # the producer's one-row instances (one per class of padded rows) read one weight array
    weights = re.findall(r"^static const \w+ (layer0_layer0_rows?\d*_(?:weights|filter))\[", c, re.M)
    assert len(weights) == 1, weights
    report = verify_graph(g, target, "tvm", runs=2, seed=3, footprint=False, library=lib)
    assert_verified(report)
    return report


@pytest.mark.parametrize("core", ["cortex-m4", "cortex-m55"])
@pytest.mark.parametrize("name", sorted(CHAINS))
def test_chain_bit_exact_on_m4_and_m55(core, name):
    report = _on_core(core, name)
    # one count per op: the chain runs in its last op's call
    assert report.row_fused and report.layer_instructions[:2] == [0, 0] and report.layer_instructions[2] > 0


@pytest.mark.slow
@pytest.mark.parametrize("core", ["cortex-m3", "cortex-m7", "cortex-m33"])
@pytest.mark.parametrize("name", sorted(CHAINS))
def test_chain_bit_exact_on_every_core(core, name):
    _on_core(core, name)


def test_float32_chain_on_x86():
    target = target_or_skip("x86_64")
    g = _graph("dw-pw-dw", "float32")
    lib = generate_library(g, target, "tvm")
    assert [f.ops for f in lib.plan.fusions] == [(0, 1, 2)]
    assert lib.arena_bytes == generate_library(g, target).arena_bytes
    assert_verified(verify_graph(g, target, "tvm", runs=2, seed=4, footprint=False, library=lib))


def test_tuned_knobs_reach_the_row_instances():
    target = load_target("cortex-m4")
    g = _graph("mbconv")
    lib = generate_library(g, target, "tvm", schedules={0: {"pixels": 1, "channels": 4}})
    c = lib.files[f"{g.name}.c"]
    (header,) = re.findall(r"op 0 'layer0'.*?\n \*/", c, re.S)
    assert '"channels": 4' in header and '"pixels": 1' in header


def test_no_row_fusion_gives_the_unfused_tvm_c(monkeypatch):
    """With fusion off the library is the one assembled without row kernels (the tvm road before fusion)."""
    target = load_target("cortex-m4")
    g = _graph("mbconv")
    fused = generate_library(g, target, "tvm")
    assert fused.files == generate_library(_graph("mbconv"), target, "tvm").files   # byte-identical again
    monkeypatch.setenv(NO_FUSION_ENV, "1")
    unfused = generate_library(g, target, "tvm")
    assert unfused.plan.fusions == () and unfused.arena_bytes > fused.arena_bytes
    assert unfused.files == assemble(g, generate_kernels(g, target), "tvm", target).files
