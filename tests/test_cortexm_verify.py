"""Every example verifies bit-exactly under QEMU, with exact, repeatable per-layer instruction counts.

M4 and M55 run by default; the full five-core matrix is marked slow (CI runs it with `make test FULL=1`).
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner

import dwscodegen.verify as verify_mod
from dwscodegen.cli import main
from dwscodegen.errors import DwsError
from dwscodegen.importers import load_model
from .support.targets import target_or_skip
from .support.layers import assert_verified  # noqa: E402

EXAMPLES = sorted((Path(__file__).resolve().parent.parent / "examples").glob("*.json"))
ONNX_EXAMPLES = sorted((Path(__file__).resolve().parent.parent / "examples").glob("*.onnx"))
QUICK = ["cortex-m4", "cortex-m55"]
FULL = ["cortex-m3", "cortex-m7", "cortex-m33"]


cortex_m = target_or_skip


def _check(model: Path, target_name: str, backend: str = "templates"):
    target = cortex_m(target_name)
    graph = load_model(model)
    report = verify_mod.verify_graph(graph, target, backend=backend, runs=2, seed=4)
    assert_verified(report)
    assert len(report.layer_instructions) == len(graph.ops)
    # every layer runs instructions of its own, but a row-fused producer, whose consumer's call holds the pair
    assert all((n == 0) == (op.index in report.row_fused) for op, n in zip(graph.ops, report.layer_instructions))
    assert report.footprint.flash > report.footprint.rodata > 0
    # The JSON examples are sized for every part; mbv2_small (float32, 147 KB of activations) is not for M3/M4.
    assert not report.fit_problems or model.suffix == ".onnx"


@pytest.mark.qemu
@pytest.mark.parametrize("target_name", QUICK)
@pytest.mark.parametrize("model", EXAMPLES, ids=lambda p: p.stem)
def test_example_on_cortex_m(model, target_name):
    _check(model, target_name)


@pytest.mark.qemu
@pytest.mark.slow
@pytest.mark.parametrize("target_name", FULL)
@pytest.mark.parametrize("model", EXAMPLES, ids=lambda p: p.stem)
def test_example_on_every_cortex_m(model, target_name):
    _check(model, target_name)


@pytest.mark.qemu
@pytest.mark.slow
@pytest.mark.tvm
@pytest.mark.parametrize("target_name", QUICK + FULL)
@pytest.mark.parametrize("model", EXAMPLES + ONNX_EXAMPLES, ids=lambda p: p.name)
def test_example_on_every_cortex_m_with_tvm(model, target_name):
    pytest.importorskip("tvm")
    _check(model, target_name, backend="tvm")


@pytest.mark.qemu
def test_instruction_counts_identical_across_runs():
    target = cortex_m("cortex-m4")
    graph = load_model(EXAMPLES[0])
    first = verify_mod.verify_graph(graph, target, runs=1, seed=0).layer_instructions
    second = verify_mod.verify_graph(graph, target, runs=1, seed=0).layer_instructions
    assert first == second


@pytest.mark.qemu
def test_verify_cli_reports_counts_and_footprint(tmp_path):
    cortex_m("cortex-m4")
    report = tmp_path / "r.json"
    model = next(p for p in EXAMPLES if p.stem == "dscnn_block_s8")
    result = CliRunner().invoke(main, ["verify", str(model), "-t", "cortex-m4", "--inputs", "1", "--json", str(report)])
    assert result.exit_code == 0, result.output
    assert "executed instructions (QEMU, not cycles)" in result.output and "flash" in result.output
    import json
    data = json.loads(report.read_text())
    assert data["ok"] and data["fits"]
    assert data["instructions"]["total"] == sum(data["instructions"]["per_layer"])
    from dwscodegen.backends import generate_library
    arena = generate_library(load_model(model), target_or_skip("cortex-m4")).arena_bytes
    # RAM holds the arena; the block runs as one row-fused chain, so the arena is its two windows (3 rows of
    # conv_out, 1 row of dw_out: 640 B) where, in place, it was one 4000-byte tensor and more
    assert data["footprint"]["ram"] >= arena >= 640


def _inject(monkeypatch, statement: str):
    """Make the generated run function misbehave at its start (hang or fault)."""
    real = verify_mod.generate_library

    def broken(graph, target, backend, *rest):
        lib = real(graph, target, backend, *rest)
        c_name = f"{graph.name}.c"
        text = lib.files[c_name].replace("    DWS_AFTER_LAYER(-1,", f"    {statement}\n    DWS_AFTER_LAYER(-1,", 1)
        return replace(lib, files={**lib.files, c_name: text})

    monkeypatch.setattr(verify_mod, "generate_library", broken)


@pytest.mark.qemu
@pytest.mark.parametrize("statement,timeout,error", [
    ("for (volatile int spin = 0; spin >= 0; spin = 0) { }", 3, "cortex-m4.*did not finish within 3"),
    ("*(volatile int *)0x0EEEEEE0 = 1;", 20, "(?s)failed on cortex-m4.*FAULT: MemManage"),
], ids=["hang", "fault"])
def test_misbehaving_library_fails_clearly(monkeypatch, statement, timeout, error):
    target = cortex_m("cortex-m4")
    _inject(monkeypatch, statement)
    with pytest.raises(DwsError, match=error):
        verify_mod.verify_graph(load_model(EXAMPLES[0]), target, runs=1, timeout=timeout)


@pytest.mark.qemu
def test_model_too_large_for_part_is_a_clear_error(tmp_path):
    cortex_m("cortex-m4")
    out = tmp_path / "out"
    model = next(p for p in EXAMPLES if p.stem == "mbv2_inverted_residual_f32")
    # row-fused as one chain, its residual Add included, it needs 6,632 B (issue 13): a smaller part than the 16K
    # it once overran
    result = CliRunner().invoke(main, ["generate", str(model), "-t", "cortex-m4", "-o", str(out), "--ram", "4K"])
    assert result.exit_code == 1
    assert "does not fit cortex-m4: RAM: needs" in result.output and "4,096 B" in result.output
    assert not out.exists()
    ok = CliRunner().invoke(main, ["generate", str(model), "-t", "cortex-m4", "-o", str(out), "--ram", "64K"])
    assert ok.exit_code == 0, ok.output
