"""`dwscodegen tune`: candidates measured, wrong ones rejected, the database resumable and used by verify."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from dwscodegen.cli import main
from dwscodegen.importers import load_model
from dwscodegen.targets import load_target
from dwscodegen.toolchain import toolchain_available
from dwscodegen.tuning import Job, layer_key, measure
from dwscodegen.tuning_db import TuningDB

pytest.importorskip("tvm")
MODEL = Path(__file__).resolve().parent.parent / "examples" / "dscnn_block_s8.json"


def cortex_m4():
    ok, why = toolchain_available(load_target("cortex-m4"))
    if not ok:
        pytest.skip(why)


def test_identical_layers_share_a_key():
    kws = Path(__file__).resolve().parent.parent.parent / "shared" / "models" / "kws_ref_model.tflite"
    if not kws.is_file():
        pytest.skip("needs ../shared/models")
    graph = load_model(kws)
    keys = [layer_key(graph, op) for op in graph.ops]
    assert keys[1] == keys[3] == keys[5] == keys[7]        # the four depthwise layers
    assert keys[2] == keys[4] == keys[6] == keys[8]        # the four pointwise layers
    assert len(set(keys)) == 7


def test_database_skips_a_torn_last_line(tmp_path):
    db_path = tmp_path / "db.jsonl"
    good = dict(key="k", target="t", backend="tvm", schedule={"a": 1}, ok=True, cost=10)
    better = dict(good, schedule={"a": 2}, cost=7)
    wrong = dict(good, schedule={"a": 3}, ok=False, cost=None)
    db_path.write_text("\n".join(json.dumps(r) for r in (good, better, wrong)) + '\n{"key": "k", "tar')
    db = TuningDB.open(db_path)
    assert db.skipped_lines == 1 and len(db.records) == 3
    assert db.best("k", "t", "tvm")["schedule"] == {"a": 2}
    db.append(dict(good, schedule={"a": 4}, cost=3))
    assert TuningDB.open(db_path).best("k", "t", "tvm")["cost"] == 3


def _database(path, records) -> TuningDB:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return TuningDB.open(path)


@pytest.mark.qemu
def test_invalid_candidate_is_rejected_not_kept():
    cortex_m4()
    result = measure(Job(str(MODEL), 2, "cortex-m4", "tvm", {"oc_tile": 99}))
    assert result["ok"] is False and result["cost"] is None and "oc_tile" in result["error"]


@pytest.mark.qemu
def test_tune_resume_and_verify_with_database(tmp_path):
    cortex_m4()
    db, plot = tmp_path / "db.jsonl", tmp_path / "curves.png"
    args = ["tune", str(MODEL), "-t", "cortex-m4", "--backend", "tvm", "--trials", "3", "--db", str(db), "--jobs", "2",
            "--plot", str(plot)]
    first = CliRunner().invoke(main, args)
    assert first.exit_code == 0, first.output
    records = TuningDB.open(db).records
    # 3 layers x 3 candidates, plus each layer's reference C loop (templates)
    assert len(records) == 12 and all(r["ok"] for r in records)
    assert all(r["unit"] == "instructions" and r["cost"] > 0 for r in records)
    assert "| conv1 |" in first.output and plot.stat().st_size > 10_000
    # An interrupted run: drop the last two records and tear the new last line.
    lines = db.read_text().splitlines()
    db.write_text("\n".join(lines[:-2]) + "\n" + lines[-2][:15])
    again = CliRunner().invoke(main, args)
    assert again.exit_code == 0, again.output
    assert "2 measurement(s) to run" in again.output and "1 unreadable line" in again.output
    verified = CliRunner().invoke(main, ["verify", str(MODEL), "-t", "cortex-m4", "--backend", "tvm", "--db", str(db),
                                         "--inputs", "1"])
    assert verified.exit_code == 0, verified.output
    assert re.search(r"tuned schedules for \d of 3 tunable layers \(tvm backend, cortex-m4, 9 records\)",
                     verified.output) and "PASS" in verified.output


@pytest.mark.qemu
@pytest.mark.slow
def test_tune_on_a_local_dask_cluster(tmp_path):
    cortex_m4()
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        db = tmp_path / "db.jsonl"
        result = CliRunner().invoke(main, ["tune", str(MODEL), "-t", "cortex-m4", "--backend", "tvm", "--trials", "2",
                                           "--db", str(db), "--scheduler", cluster.scheduler_address])
    assert result.exit_code == 0, result.output
    assert len(TuningDB.open(db).records) == 9


@pytest.mark.qemu
def test_tune_templates_kernel_variants(tmp_path):
    """The templates backend's choices are kernel variants of the registry: portable and the target's SIMD kernels
    (tiles, int8 weights), the default's own variant measured once, as the default schedule {}."""
    cortex_m4()
    db = tmp_path / "db.jsonl"
    result = CliRunner().invoke(main, ["tune", str(MODEL), "-t", "cortex-m4", "--backend", "templates",
                                       "--db", str(db), "--plot", str(tmp_path / "c.png")])
    assert result.exit_code == 0, result.output
    records = [r for r in TuningDB.open(db).records if r["backend"] == "templates"]
    kernels = {r["schedule"].get("kernel") for r in records}
    assert {None, "portable", "pointwise_conv2d_s8_dsp_1x2", "pointwise_conv2d_s8_dsp_2x4",
            "pointwise_conv2d_s8_dsp_w8_4x2", "depthwise_conv2d_s8_dsp_padded_4c"} <= kernels
    assert not kernels & {"conv2d_s8_dsp_im2col_2x2", "depthwise_conv2d_s8_dsp_4c", "pointwise_conv2d_s8_dsp_4x2"}
    by_kernel = {(r["op"], r["schedule"].get("kernel")): r["cost"] for r in records}
    dw = [c for (op, k), c in by_kernel.items() if "dw2" in op and k is None][0]
    portable = [c for (op, k), c in by_kernel.items() if "dw2" in op and k == "portable"][0]
    assert dw < portable        # the SIMD kernel is measured faster, so it is what tuning keeps
    verified = CliRunner().invoke(main, ["verify", str(MODEL), "-t", "cortex-m4", "--db", str(db), "--inputs", "1"])
    assert verified.exit_code == 0 and "PASS" in verified.output


def test_tvm_space_offers_a_knob_only_where_it_applies():
    """exp_table is an int8 softmax knob: a float32 softmax (an ONNX QDQ model's) is not offered it, so its
    candidates are not all rejected at build as they were (`tune` on mbv2_small_qdq: 4 of 4 rejected)."""
    from dwscodegen.backends.tvm.knobs import searched
    from dwscodegen.tuning import candidates
    graph = load_model(MODEL.parent / "mbv2_small_qdq.onnx")
    softmax = next(op for op in graph.ops if op.type == "Softmax")
    assert graph.op_dtype(softmax) == "float32"
    found = candidates(graph, softmax, "tvm", trials=8, target=load_target("cortex-m4"))
    assert len(found) > 1 and not any("exp_table" in c for c in found)
    assert "exp_table" in searched("softmax", "int8") and "exp_table" not in searched("softmax", "float32")
