"""`verify` (build, run, compare with the oracle) and `run` (what the generated library computes on the
user's data)."""
from __future__ import annotations

import json
from pathlib import Path

import click
from click.core import ParameterSource

from ..targets import load_target
from .common import (backend_opt, check_writable_file, model_arg, target_opt, tuned_schedules, user_errors,
                     write_file)
from .fit import choose_kernels, optimize_opt

db_opt = click.option("--db", "db_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                      help="Tuning database from `tune`: use the best recorded schedule per layer.")
timeout_opt = click.option("--timeout", default=120.0, show_default=True, type=click.FloatRange(1),
                           help="Seconds the program may run (all inputs together).")
input_help = ("Your own inputs: a .npy (one-input models) or .npz (one array per graph input, by input name or "
              "arr_0, arr_1, ...), each of the input's shape or [samples, ...shape]; int8 inputs take integers, or "
              "floats, which are quantized with the input's scale and zero point (and said so).")


@click.command()
@model_arg
@target_opt
@backend_opt
@click.option("--inputs", "runs", default=3, show_default=True, type=click.IntRange(1, 1000),
              help="Number of seeded random inputs to check.")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the random inputs.")
@click.option("--input", "input_path", type=click.Path(dir_okay=False, path_type=Path),
              help=input_help + " Checked instead of random inputs.")
@timeout_opt
@db_opt
@click.option("--oracle", default="auto", show_default=True,
              type=click.Choice(["auto", "numpy", "tflite", "onnxruntime"]),
              help="What the outputs must equal: auto = the model's own framework (the TFLite interpreter's "
                   "reference kernels for .tflite, onnxruntime for .onnx) when installed, else the NumPy reference.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the report as JSON to this file.")
@click.option("--flash", metavar="SIZE", help="Flash of the part the fit is checked against (e.g. 4M); default: "
                                              "the target file's part. QEMU runs on the board's memory either way.")
@click.option("--ram", metavar="SIZE", help="RAM of the part the fit is checked against; default: the target file's.")
@optimize_opt
@user_errors
def verify(model: Path, target: str, backend: str, runs: int, seed: int, input_path: Path | None, timeout: float,
           db_path: Path | None, oracle: str, json_path: Path | None, flash: str | None, ram: str | None,
           optimize: str):
    """Build MODEL's library for TARGET, run it and compare every output with the oracle.

    The default oracle (--oracle auto) is the model's own framework: for a .tflite model the TFLite
    interpreter with its reference kernels (ai-edge-litert, BUILTIN_REF), for an .onnx model onnxruntime;
    for a JSON graph, or when that framework is not installed, the NumPy reference (TFLite semantics).
    int8 must be bit-exact; float32 within 1e-5 * max(1, max|reference|). For classifier outputs ([N, K]
    scores) the report adds top-1 agreement. Exits 0 only if every output matches.
    """
    from ..errors import DwsError
    from ..flash_budget import has_choice
    from ..footprint import parse_size
    from ..importers import load_model
    from ..verify import ORACLE_LABELS, choose_oracle, verify_graph
    from .progress import Stages

    ctx = click.get_current_context()
    if input_path and any(ctx.get_parameter_source(p) != ParameterSource.DEFAULT for p in ("runs", "seed")):
        raise DwsError("--input gives the inputs; --inputs/--seed choose random ones: use one or the other")
    if json_path:
        check_writable_file(json_path, "--json")
    tgt = load_target(target)
    with Stages() as progress:
        progress(f"reading {model.name}")
        graph = load_model(model)
        progress(None)
        user = _user_inputs(input_path, graph)
        oracle = choose_oracle(graph, oracle)
        source = f"{len(user.sets)} input(s) from {input_path}" if user else f"{runs} seeded input(s), seed {seed}"
        click.echo(f"{graph.name}: {len(graph.ops)} layers, {'/'.join(sorted(graph.activation_dtypes()))}, on "
                   f"{tgt.name} ({backend} backend), {source}; oracle: {ORACLE_LABELS[oracle]}")
        budget = parse_size(flash) if flash else None
        mix = None
        ram_budget = parse_size(ram) if ram else None
        # speed chooses its arena plan under the RAM budget (ram_budget.py): the library generate would write
        if has_choice(tgt, optimize, budget) or optimize == "speed":
            progress(f"choosing kernels (--optimize {optimize})")
            mix = choose_kernels(graph, db_path, tgt, backend, optimize, budget, ram_budget)  # built and measured
            schedules = mix.schedules
        else:
            schedules = tuned_schedules(graph, db_path, tgt, backend)
        report = verify_graph(graph, tgt, backend, runs=runs, seed=seed, timeout=timeout, oracle=oracle,
                              schedules=schedules, progress=progress, input_sets=user.sets if user else None,
                              flash=budget, ram=ram_budget,
                              library=mix.lib if mix else None, measured=mix.footprint if mix else None)
    click.echo(f"  {tgt.name}: {report.footprint.summary()}")
    for note in report.oracle_notes:
        click.echo(f"  NOTE on the oracle: {note}")
    for problem in report.fit_problems:
        click.echo(f"  warning: does not fit the target's part: {problem}")
    for c in report.comparisons:
        click.echo(f"  output {c.summary()}")
    for name, (agree, rows) in report.top1.items():
        click.echo(f"  top-1 class of '{name}' agrees with the oracle on {agree} of {rows} rows "
                   f"({100 * agree / rows:.1f} %)")
    _print_instructions(graph, report.layer_instructions, report.row_fused)
    if report.first_bad_layer:
        click.echo(f"  {report.first_bad_layer}")
    if json_path:
        write_file(json_path, json.dumps(_report_json(report, input_path), indent=2) + "\n", "--json")
    against = ORACLE_LABELS[oracle] + (f", except as the {len(report.oracle_notes)} note(s) on the oracle above say"
                                       if report.oracle_notes else "")
    if not report.ok:
        raise click.ClickException(f"{graph.name} on {tgt.name}: generated code does not match the reference "
                                   f"({against})")
    click.echo(f"PASS (against {against})")


@click.command()
@model_arg
@target_opt
@backend_opt
@click.option("--input", "input_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help=input_help)
@click.option("-o", "--output", "out_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Where the outputs go: .npy (one-output models) or .npz keyed by output tensor name; samples "
                   "laid out as in --input.")
@timeout_opt
@db_opt
@user_errors
def run(model: Path, target: str, backend: str, input_path: Path, out_path: Path, timeout: float,
        db_path: Path | None):
    """Run MODEL's generated library on TARGET (natively, or under QEMU for Cortex-M) on the inputs in
    --input, and write what it computes to -o. Nothing is compared: see `verify --input` for that."""
    from ..importers import load_model
    from ..user_data import check_output_file, save_outputs
    from ..verify import run_library
    from .progress import Stages

    check_writable_file(out_path, "-o")
    tgt = load_target(target)
    with Stages() as progress:
        progress(f"reading {model.name}")
        graph = load_model(model)
        progress(None)
        check_output_file(out_path, graph)
        user = _user_inputs(input_path, graph)
        schedules = tuned_schedules(graph, db_path, tgt, backend)
        outputs, counts, row_fused = run_library(graph, tgt, user.sets, backend, schedules, timeout, progress)
    shapes = save_outputs(out_path, graph, outputs, user.layout)
    click.echo(f"{graph.name} on {tgt.name} ({backend} backend): {len(user.sets)} input(s) from {input_path}; "
               f"wrote {out_path}: " + ", ".join(f"'{n}' {list(s)}" for n, s in shapes.items()))
    _print_instructions(graph, counts, row_fused)


def _user_inputs(input_path: Path | None, graph):
    if input_path is None:
        return None
    from ..user_data import load_inputs
    user = load_inputs(input_path, graph)
    for note in user.notes:
        click.echo(f"  note: {note}")
    return user


def _print_instructions(graph, counts: list[int] | None, row_fused: dict[int, int]) -> None:
    if counts:
        click.echo(f"  executed instructions (QEMU, not cycles) of the first input: total {sum(counts):,}")
        for op, count in zip(graph.ops, counts):
            shown = f"{count:>12,}" if op.index not in row_fused else f"in op {row_fused[op.index]}'s row pipeline"
            click.echo(f"    {op.index:>3} {op.name:<24} {op.type:<16} {shown}")


def _report_json(report, input_path: Path | None) -> dict:
    return dict(graph=report.graph, target=report.target, backend=report.backend, runs=report.runs,
                inputs=str(input_path) if input_path else "random", oracle=report.oracle,
                oracle_notes=report.oracle_notes, ok=report.ok,
                outputs=[dict(tensor=c.tensor, ok=c.ok, mismatches=c.mismatches, total=c.total,
                              max_abs_err=c.max_abs_err, tolerance=c.tolerance) for c in report.comparisons],
                top1={name: dict(agree=a, rows=n) for name, (a, n) in report.top1.items()},
                first_bad_layer=report.first_bad_layer,
                instructions=None if report.layer_instructions is None else dict(
                    total=sum(report.layer_instructions), per_layer=report.layer_instructions,
                    row_fused_into={str(k): v for k, v in report.row_fused.items()}),
                footprint=report.footprint.as_dict(), fits=not report.fit_problems, fit_problems=report.fit_problems)
