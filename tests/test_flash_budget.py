"""The flash budget (flash_budget.py, variant_costs.py, cli/fit.py): the knapsack against brute force on seeded
synthetic layers, the candidates of a real layer, and `generate` / `verify` with --optimize on a model whose
fastest kernels miss the budget (a fit by default, the layers that took smaller kernels named; a budget no mix
meets is a click error naming the options that help)."""
from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from dwscodegen.cli import main
from dwscodegen.flash_budget import UNIT, choose, solve
from dwscodegen.targets import load_target
from dwscodegen.variant_costs import DEFAULT, Candidate, layer_candidates
from .support.layers import ConvCase, conv_graph

MBV1 = Path("/work/shared/models/zoo/mbv1_a025_96_c2_s8.tflite")


def _layers(rng, n: int) -> list[list[Candidate]]:
    out = []
    for _ in range(n):
        k = int(rng.integers(1, 4))
        out.append([Candidate(DEFAULT if i == 0 else f"v{i}", float(rng.integers(100, 10_000)),
                              int(rng.integers(1, 200)) * UNIT, False) for i in range(k)])
    return out


def _brute(layers, budget):
    best = None
    for picks in itertools.product(*(range(len(c)) for c in layers)):
        if sum(c[i].flash for c, i in zip(layers, picks)) <= budget:
            cost = sum(c[i].instructions for c, i in zip(layers, picks))
            best = cost if best is None or cost < best else best
    return best


@pytest.mark.parametrize("seed", range(6))
def test_solver_finds_the_fewest_instructions_that_fit(seed):
    rng = np.random.default_rng(seed)
    layers = _layers(rng, 6)
    low = sum(min(c.flash for c in cands) for cands in layers)
    high = sum(max(c.flash for c in cands) for cands in layers)
    for budget in (low, (low + high) // 2, high, low + 7 * UNIT):
        picks = solve(layers, budget)
        assert picks is not None
        assert sum(c[i].flash for c, i in zip(layers, picks)) <= budget
        assert sum(c[i].instructions for c, i in zip(layers, picks)) == _brute(layers, budget)
    assert solve(layers, low - 1) is None


def test_solver_takes_the_smaller_flash_on_ties_and_rounds_flash_up():
    a = [Candidate(DEFAULT, 10.0, 100, False), Candidate("small", 10.0, 50, False)]
    assert solve([a], 1000) == [1]
    # 33 B rounds up to 3 units: a budget of 2 units fits only the 17 B one
    b = [Candidate(DEFAULT, 1.0, 33, False), Candidate("small", 5.0, 17, False)]
    assert solve([b], 2 * UNIT) == [1]


def test_candidates_of_a_pointwise_layer():
    """Every kernel choice, the default first; the int8-weight ones smaller and estimated slower; a tuning
    record's instructions and flash win over the estimates."""
    target = load_target("cortex-m4")
    graph = conv_graph(ConvCase("Conv2D", (1, 6, 6, 64), (1, 1), out_channels=64), "int8", seed=1)
    op = graph.ops[0]
    cands = {c.kernel: c for c in layer_candidates(graph, op, target, [])}
    assert list(cands)[0] == DEFAULT and "portable" in cands
    w8 = cands["pointwise_conv2d_s8_dsp_w8_4x2"]
    assert w8.flash < cands[DEFAULT].flash and w8.instructions > cands[DEFAULT].instructions
    from dwscodegen.tuning import layer_key
    key = layer_key(graph, op)
    records = [dict(key=key, schedule=s, ok=True, cost=c, flash=f) for s, c, f in
               [({}, 900, 9000), ({"kernel": "portable"}, 9000, 5000),
                ({"kernel": "pointwise_conv2d_s8_dsp_1x2"}, 1200, 8000),
                ({"kernel": "pointwise_conv2d_s8_dsp_w8_4x2"}, 1000, 6000),
                ({"kernel": "pointwise_conv2d_s8_dsp_w8_1x2"}, 1300, 5500)]]
    listed = {r["schedule"].get("kernel") for r in records}
    records += [dict(key=key, schedule={"kernel": k}, ok=True, cost=1500, flash=9500)    # the other tiles
                for k in cands if k not in listed and k not in (DEFAULT, "pointwise_conv2d_s8_dsp_4x2")]
    measured = {c.kernel: c for c in layer_candidates(graph, op, target, records)}
    assert measured["pointwise_conv2d_s8_dsp_w8_4x2"] == Candidate("pointwise_conv2d_s8_dsp_w8_4x2", 1000.0, 6000, True)
    # an old record without flash: its instructions count, the flash of the whole layer stays estimated
    old = [dict(r) for r in records]
    del old[3]["flash"]
    mixed = {c.kernel: c for c in layer_candidates(graph, op, target, old)}
    assert mixed["pointwise_conv2d_s8_dsp_w8_4x2"].instructions == 1000.0
    assert mixed[DEFAULT].flash == cands[DEFAULT].flash


def test_a_tuned_default_variant_is_the_default_schedule_with_a_partial_database():
    """A tuning database whose best for a layer is its default variant by name ({"kernel": <default>}), and which
    measured only that candidate: the speed choice is that kernel, the default schedule {} (one representation),
    not the estimated-fastest of the candidates the database lacks."""
    from dwscodegen.backends.templates import kernel_used
    from dwscodegen.tuning import layer_key
    target = load_target("cortex-m4")
    graph = conv_graph(ConvCase("Conv2D", (1, 6, 6, 64), (1, 1), out_channels=64), "int8", seed=1)
    op = graph.ops[0]
    default = kernel_used(graph, op, target)
    # measured slower than every estimate, so that the estimated fastest is some other candidate
    records = [dict(key=layer_key(graph, op), schedule={"kernel": default}, ok=True, cost=10 ** 9)]
    cands = layer_candidates(graph, op, target, records)
    assert min(cands, key=lambda c: c.instructions).kernel != DEFAULT
    for optimize in ("speed", "balanced"):
        mix = choose(graph, target, "templates", optimize, budget=10 ** 7, tuned={0: {"kernel": default}}, records=records)
        assert mix.schedules.get(0, {}) == {} and mix.speed == {}, (optimize, mix.schedules)
        assert kernel_used(graph, op, target, mix.schedules.get(0, {}).get("kernel")) == default


def test_optimize_help_states_the_size_slack_it_uses(monkeypatch):
    from dwscodegen import flash_budget
    from dwscodegen.cli.fit import optimize_help
    assert "within 10 % (or 2 KiB)" in optimize_help()
    monkeypatch.setattr(flash_budget, "SIZE_SLACK", (0.25, 4096))
    assert "within 25 % (or 4 KiB)" in optimize_help()


def _pointwise_model(tmp_path) -> Path:
    """A .tflite 160 x 160 pointwise convolution: its int16 weights (51 KB) dominate its library."""
    from .support.tflite_builder import build_single_op_model
    from .support.tflite_cases import act, bias, conv_weights
    rng = np.random.default_rng(4)
    model = build_single_op_model("CONV_2D", [act("x", (1, 4, 4, 160), "int8"), conv_weights(rng, (160, 1, 1, 160), "int8", 0),
                                              bias(rng, 160, "int8")], [act("y", (1, 4, 4, 160), "int8", 0.4, 2)],
                                  dict(padding="SAME", fused_activation="RELU6"))
    path = tmp_path / "big_pointwise.tflite"
    path.write_bytes(model)
    return path


@pytest.fixture(scope="module")
def pointwise(tmp_path_factory):
    """The model, and the flash of its speed and size libraries on cortex-m4."""
    from dwscodegen.importers import load_model
    path = _pointwise_model(tmp_path_factory.mktemp("flash"))
    target = load_target("cortex-m4")
    graph = load_model(path)
    speed = choose(graph, target, "templates", "speed")
    size = choose(graph, target, "templates", "size")
    return path, graph, speed, size


@pytest.mark.qemu
def test_choose_fits_a_budget_the_fastest_kernels_miss(pointwise):
    path, graph, speed, size = pointwise
    target = load_target("cortex-m4")
    assert size.footprint.flash < speed.footprint.flash - 20_000
    budget = (speed.footprint.flash + size.footprint.flash) // 2
    balanced = choose(graph, target, "templates", "balanced", budget)
    assert balanced.fits and balanced.footprint.flash <= budget
    assert balanced.schedules[0]["kernel"].startswith("pointwise_conv2d_s8_dsp_w8")
    assert not choose(graph, target, "templates", "speed", budget).fits
    assert choose(graph, target, "templates", "balanced", speed.footprint.flash).schedules == {}


def _cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.mark.qemu
def test_cli_fits_by_default_and_names_the_layers_on_smaller_kernels(pointwise, tmp_path):
    path, graph, speed, size = pointwise
    budget = (speed.footprint.flash + size.footprint.flash) // 2
    out = _cli("generate", path, "-t", "cortex-m4", "-o", tmp_path / "lib", "--flash", budget)
    assert out.exit_code == 0, out.output
    assert "1 of 1 layers take smaller kernels" in out.output and "pointwise_conv2d_s8_dsp_w8" in out.output
    speed_run = _cli("generate", path, "-t", "cortex-m4", "-o", tmp_path / "lib2", "--flash", budget, "--optimize", "speed")
    assert speed_run.exit_code == 1 and "Traceback" not in speed_run.output
    assert "--optimize balanced" in speed_run.output and "nothing written" in speed_run.output
    assert not (tmp_path / "lib2").exists()
    report = _cli("inspect", path, "-t", "cortex-m4", "--flash", budget, "--optimize", "speed")
    assert report.exit_code == 0 and "does not fit" in report.output and "--optimize balanced" in report.output
    verified = _cli("verify", path, "-t", "cortex-m4", "--flash", budget, "--inputs", 1, "--oracle", "numpy")
    assert verified.exit_code == 0 and "PASS" in verified.output and "pointwise_conv2d_s8_dsp_w8" in verified.output


@pytest.mark.qemu
def test_cli_budget_no_mix_meets_names_the_options(pointwise, tmp_path):
    path, graph, speed, size = pointwise
    # the smallest library: every layer on its smallest kernel, which --optimize size takes where only it fits
    target = load_target("cortex-m4")
    smallest = choose(graph, target, "templates", "size", size.footprint.flash - 1)
    assert smallest.fits and smallest.footprint.flash < size.footprint.flash and smallest.notes
    assert not choose(graph, target, "templates", "size", smallest.footprint.flash - 1).fits
    out = _cli("generate", path, "-t", "cortex-m4", "-o", tmp_path / "lib", "--flash", smallest.footprint.flash - 1000)
    assert out.exit_code == 1 and "Traceback" not in out.output
    from dwscodegen.footprint import fit_options
    larger = fit_options(smallest.footprint, load_target("cortex-m4"), smallest.footprint.flash - 1000)
    assert "not even every layer on its smallest kernel" in out.output and f"it would fit with {larger[0]}" in out.output
    small = _cli("generate", path, "-t", "cortex-m4", "-o", tmp_path / "lib", "--optimize", "size")
    assert small.exit_code == 0 and "pointwise_conv2d_s8_dsp_w8" in small.output, small.output


@pytest.mark.qemu
@pytest.mark.slow
@pytest.mark.skipif(not MBV1.exists(), reason="the model zoo is not on this machine")
def test_mobilenet_v1_fits_the_512k_part_by_default(tmp_path):
    """The issue's model: its fastest kernels need more than cortex-m4's 512 KB part; by default it fits."""
    out = _cli("generate", MBV1, "-t", "cortex-m4", "-o", tmp_path / "lib")
    assert out.exit_code == 0, out.output
    assert "take smaller kernels to fit 524,288 B" in out.output
    speed = _cli("generate", MBV1, "-t", "cortex-m4", "-o", tmp_path / "lib2", "--optimize", "speed")
    assert speed.exit_code == 1 and "--optimize balanced" in speed.output


@pytest.mark.qemu
def test_tune_records_flash_and_meets_a_budget_from_the_database(pointwise, tmp_path):
    """Each candidate's flash is recorded beside its instructions; tune reports the mix under the budget, and
    generate --db meets it with measured costs; a database from before flash was recorded still works."""
    import json
    from dwscodegen.tuning_db import TuningDB
    path, graph, speed, size = pointwise
    budget = (speed.footprint.flash + size.footprint.flash) // 2
    db = tmp_path / "db.jsonl"
    out = _cli("tune", path, "-t", "cortex-m4", "--db", db, "--plot", tmp_path / "c.png", "--flash", budget)
    assert out.exit_code == 0, out.output
    records = [r for r in TuningDB.open(db).records if r["ok"]]
    flash = {r["schedule"].get("kernel"): r["flash"] for r in records}
    # the default (pointwise_conv2d_s8_dsp_4x2) is measured as the default schedule {}
    assert flash["pointwise_conv2d_s8_dsp_w8_4x2"] < flash[None] - 20_000
    assert f"--optimize balanced, flash budget {budget:,} B" in out.output and "(fits)" in out.output
    built = _cli("generate", path, "-t", "cortex-m4", "-o", tmp_path / "lib", "--db", db, "--flash", budget)
    assert built.exit_code == 0 and "pointwise_conv2d_s8_dsp_w8" in built.output, built.output
    old = tmp_path / "old.jsonl"
    old.write_text("".join(json.dumps({k: v for k, v in r.items() if k != "flash"}) + "\n" for r in records))
    again = _cli("generate", path, "-t", "cortex-m4", "-o", tmp_path / "lib2", "--db", old, "--flash", budget)
    assert again.exit_code == 0 and "pointwise_conv2d_s8_dsp_w8" in again.output, again.output


def _count_builds(monkeypatch):
    """Every library generate_library builds for flash_budget.py and verify.py (the real function, counted), by
    schedules, and every footprint measured."""
    from dwscodegen import flash_budget, verify
    built, measured = [], []
    for module in (flash_budget, verify):
        real_build, real_measure = module.generate_library, module.measure

        def build(graph, target, backend="templates", schedules=None, _real=real_build):
            built.append(repr(sorted((schedules or {}).items())))
            return _real(graph, target, backend, schedules)

        def measure(lib, target, _real=real_measure):
            measured.append(lib)
            return _real(lib, target)
        monkeypatch.setattr(module, "generate_library", build)
        monkeypatch.setattr(module, "measure", measure)
    return built, measured


@pytest.mark.qemu
def test_no_library_is_built_twice(pointwise, tmp_path, monkeypatch):
    """verify with a flash budget runs the library the budget chose (built and measured once); the fit error of a
    speed library over its budget starts the balanced search from that library instead of building it again."""
    path, graph, speed, size = pointwise
    budget = (speed.footprint.flash + size.footprint.flash) // 2
    built, measured = _count_builds(monkeypatch)
    checked = _cli("verify", path, "-t", "cortex-m4", "--flash", budget, "--inputs", "1")
    assert checked.exit_code == 0 and "PASS" in checked.output, checked.output
    assert len(built) == len(set(built)) and len(measured) == len(built), built
    built.clear()
    measured.clear()
    refused = _cli("generate", path, "-t", "cortex-m4", "-o", tmp_path / "lib", "--flash", budget, "--optimize", "speed")
    assert refused.exit_code == 1 and "--optimize balanced" in refused.output
    assert len(built) == len(set(built)) >= 2, built


def test_size_on_a_target_without_a_flash_budget_names_no_budget(pointwise, tmp_path):
    """x86 targets have no part: --optimize size still picks the small kernels and says so (no budget to name)."""
    from .support.targets import target_or_skip
    target_or_skip("x86_64-v3")
    path = pointwise[0]
    out = _cli("generate", path, "-t", "x86_64-v3", "-o", tmp_path / "lib", "--optimize", "size")
    assert out.exit_code == 0, out.output
    assert "take smaller kernels (no flash budget)" in out.output, out.output
