"""Honest reports (issue 14): tuning records say what they were measured for and a run says which it
ignores; a database for the other backend is refused; inspect's JSON and fit verdict; progress lines;
the tuning curves start at the default schedule."""
from __future__ import annotations

import json
import re

import pytest

from dwscodegen.backends import generate_library
from dwscodegen.importers import load_model
from dwscodegen.targets import load_target
from dwscodegen.tuning import graph_hash, layer_key
from dwscodegen.tuning_db import TuningDB
from dwscodegen.tuning_report import tuning_curves, tuning_figure

from .support.cli import BASE, assert_refused, copy_example, invoke
from .support.targets import target_or_skip


@pytest.fixture
def model(tmp_path):
    return copy_example(tmp_path)[0]


def _records(graph, target="cortex-m4", backend="templates", tuned_for=None, **extra):
    """A record maker for this graph: _records(graph)(op index, schedule, cost)."""
    def make(index, schedule, cost):
        op = graph.ops[index]
        return dict(key=layer_key(graph, op), op=op.where(), target=target, backend=backend,
                    tuned_for=tuned_for or backend, model=f"{BASE}.json", model_hash=graph_hash(graph),
                    schedule=schedule, ok=True, cost=cost, unit="instructions", **extra)
    return make


def _write_db(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_graph_hash_is_content_not_names(model):
    graph = load_model(model)
    doc = json.loads(model.read_text())
    for t in doc["tensors"]:
        t["name"] += "_renamed"
    for o in doc["ops"]:
        o["name"] += "_renamed"
        o["inputs"] = [n + "_renamed" for n in o["inputs"]]
        o["outputs"] = [n + "_renamed" for n in o["outputs"]]
    doc["inputs"] = [n + "_renamed" for n in doc["inputs"]]
    doc["outputs"] = [n + "_renamed" for n in doc["outputs"]]
    renamed = model.with_name("renamed.json")
    renamed.write_text(json.dumps(doc))
    assert graph_hash(load_model(renamed)) == graph_hash(graph)
    doc["tensors"][0]["quant"]["zero_point"] = 5
    renamed.write_text(json.dumps(doc))
    assert graph_hash(load_model(renamed)) != graph_hash(graph)


def test_generate_uses_what_applies_and_names_what_it_ignores(tmp_path, model):
    target_or_skip("cortex-m4")
    graph = load_model(model)
    mine, m7 = _records(graph), _records(graph, target="cortex-m7")
    other = dict(mine(0, {}, 10), model="other.json", model_hash="0123456789abcdef")
    legacy = {k: v for k, v in mine(1, {}, 10).items() if k not in ("model_hash", "tuned_for")}
    db = _write_db(tmp_path / "db.jsonl", [
        mine(0, {"kernel": "portable"}, 150), mine(0, {}, 100), mine(0, {"kernel": "depthwise_conv2d_s8_dsp_4c"}, 100),
        mine(1, {"kernel": "portable"}, 200), mine(1, {}, 100), mine(1, {"kernel": "pointwise_conv2d_s8_dsp_1x2"}, 80),
        m7(0, {}, 1), m7(1, {}, 1), other, legacy])
    result = invoke("generate", model, "-t", "cortex-m4", "--db", db, "-o", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert ("tuned schedules for 1 of 2 tunable layers (templates backend, cortex-m4, 6 records); "
            "default measured best for 1") in result.output
    assert ("warning: " + str(db) + ": ignored 4 records: 2 for target cortex-m7; 1 of another model "
            "(other.json, hash 0123456789abcdef); 1 written by an older dwscodegen") in result.output
    expected = generate_library(graph, load_target("cortex-m4"), "templates",
                                {1: {"kernel": "pointwise_conv2d_s8_dsp_1x2"}}).files
    assert (tmp_path / "out" / f"{BASE}.c").read_text() == expected[f"{BASE}.c"]


@pytest.mark.parametrize("tuned, road", [("tvm", "templates"), ("templates", "tvm")])
def test_a_database_for_the_other_backend_is_refused(tmp_path, model, tuned, road):
    graph = load_model(model)
    make = _records(graph, target="x86_64", backend=tuned)
    records = [make(0, {}, 10), make(1, {}, 10)]
    if tuned == "tvm":     # a tvm tune also measures the templates reference loop
        reference = _records(graph, target="x86_64", backend="templates", tuned_for="tvm")
        records.append(reference(0, {"kernel": "portable"}, 20))
    db = _write_db(tmp_path / "db.jsonl", records)
    assert_refused(invoke("generate", model, "-t", "x86_64", "--backend", road, "--db", db, "-o", tmp_path / "out"),
                   f"has no {road}-backend records", f"tuned for the {tuned} backend: use --backend {tuned}")
    assert not (tmp_path / "out").exists()


def test_a_database_of_which_nothing_applies_is_refused(tmp_path, model):
    graph = load_model(model)
    db = _write_db(tmp_path / "db.jsonl", [_records(graph, target="cortex-m7")(0, {}, 1)])
    assert_refused(invoke("verify", model, "-t", "x86_64", "--db", db), "no templates-backend records",
                   "1 for target cortex-m7", "dwscodegen tune -t x86_64")


def test_tune_records_what_it_measured_for_and_prints_lines_without_a_terminal(tmp_path, model):
    db = tmp_path / "db.jsonl"
    result = invoke("tune", model, "-t", "x86_64", "--db", db, "--plot", tmp_path / "c.png")
    assert result.exit_code == 0, result.output
    assert [line for line in result.output.splitlines() if line.startswith("tuning:")] == [
        "tuning: 1/4 (25 %)", "tuning: 2/4 (50 %)", "tuning: 3/4 (75 %)", "tuning: 4/4 (100 %)"]
    graph = load_model(model)
    records = TuningDB.open(db).records
    assert len(records) == 4
    assert {(r["target"], r["backend"], r["tuned_for"], r["model"], r["model_hash"]) for r in records} == {
        ("x86_64", "templates", "templates", f"{BASE}.json", graph_hash(graph))}


def test_inspect_json_and_the_fit_verdict(model):
    result = invoke("inspect", model, "-t", "x86_64", "--flash", "1K", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["target"] == "x86_64" and [r["name"] for r in doc["layers"]] == ["dw1", "pw1"]
    assert doc["budget"]["flash"] == 1024 and doc["fits"] is False
    needed = doc["footprint"]["flash"]
    # the block's two layers are row-fused (its depthwise as three one-row kernels: 2-4K of flash)
    part = "2K" if needed <= 2048 else "4K"
    assert 1024 < needed <= 4096 and doc["fit_options"] == [f"--flash {part}"]
    text = invoke("inspect", model, "-t", "x86_64", "--flash", "1K")
    assert text.exit_code == 0
    assert f"does not fit x86_64: flash: needs {needed:,} B" in text.output
    assert f"it would fit with --flash {part}" in text.output
    fits = invoke("inspect", model, "-t", "x86_64", "--flash", "1M", "--ram", "1M")
    assert re.search(r"fits x86_64: flash [\d,]+ of 1,048,576 B \(0 %\), RAM", fits.output), fits.output


def test_inspect_takes_the_target_like_the_other_commands(model):
    result = invoke("inspect", model)
    assert result.exit_code == 2 and "Missing option '-t'" in result.output


def test_verify_help_names_the_default_oracle():
    text = " ".join(invoke("verify", "--help").output.split())
    assert "The default oracle (--oracle auto) is the model's own framework" in text
    assert "TFLite interpreter with its reference kernels" in text and "onnxruntime" in text
    assert "NumPy reference" in text


def test_verify_names_its_stages(model):
    from click.testing import CliRunner

    from dwscodegen.cli import main
    result = CliRunner(env={"DWSCODEGEN_PROGRESS_AFTER": "0"}).invoke(main, ["verify", str(model), "-t", "x86_64"])
    assert result.exit_code == 0, result.output
    stages = [line.strip() for line in result.output.splitlines() if line.strip().startswith("...")]
    assert stages == ["... reading mbv1_ds_block_s8.json", "... generating C (templates backend, 2 layers)",
                      "... compiling the library and its harness for x86_64", "... running 3 input(s) on x86_64",
                      "... measuring flash and RAM on x86_64", "... running the oracle (NumPy reference)"]


def test_tuning_curves_start_at_the_default(model):
    graph = load_model(model)
    mine = _records(graph)
    db = TuningDB(path=None, records=[   # the order tune measures: the portable reference loop first
        mine(0, {"kernel": "portable"}, 150), mine(0, {}, 100), mine(0, {"kernel": "depthwise_conv2d_s8_dsp_4c"}, 100),
        mine(1, {"kernel": "portable"}, 200), mine(1, {}, 100), mine(1, {"kernel": "pointwise_conv2d_s8_dsp_1x2"}, 80)])
    assert tuning_curves(graph, db, "cortex-m4", "templates") == {"dw1": [1.0, 1.0, 1.0], "pw1": [1.0, 1.0, 0.8]}
    fig = tuning_figure(graph, db, "cortex-m4", "templates")
    fig.canvas.draw()
    ax = fig.axes[0]
    legend = ax.get_legend().get_window_extent()
    assert legend.x0 >= ax.get_window_extent().x1          # beside the axes, not on the data
    assert all(float(t).is_integer() for t in ax.get_xticks())
