"""`verify`: build, run and compare with the oracle."""
from __future__ import annotations

import json
from pathlib import Path

import click

from ..targets import load_target
from .common import (backend_opt, check_writable_file, model_arg, target_opt, tuned_schedules, user_errors,
                     write_file)


@click.command()
@model_arg
@target_opt
@backend_opt
@click.option("--inputs", "runs", default=3, show_default=True, type=click.IntRange(1, 1000),
              help="Number of seeded random inputs to check.")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the random inputs.")
@click.option("--timeout", default=120.0, show_default=True, type=click.FloatRange(1), help="Seconds per run.")
@click.option("--db", "db_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Tuning database from `tune`: use the best recorded schedule per layer.")
@click.option("--oracle", default="auto", show_default=True,
              type=click.Choice(["auto", "numpy", "tflite", "onnxruntime"]),
              help="What the outputs must equal: auto = the model's own framework (the TFLite interpreter's "
                   "reference kernels for .tflite, onnxruntime for .onnx) when installed, else the NumPy reference.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the report as JSON to this file.")
@user_errors
def verify(model: Path, target: str, backend: str, runs: int, seed: int, timeout: float, db_path: Path | None,
           oracle: str, json_path: Path | None):
    """Build MODEL's library for TARGET, run it and compare every output with the oracle.

    The default oracle (--oracle auto) is the model's own framework: for a .tflite model the TFLite
    interpreter with its reference kernels (ai-edge-litert, BUILTIN_REF), for an .onnx model onnxruntime;
    for a JSON graph, or when that framework is not installed, the NumPy reference (TFLite semantics).
    int8 must be bit-exact; float32 within 1e-5 * max(1, max|reference|). Exits 0 only if every output matches.
    """
    from ..importers import load_model
    from ..verify import ORACLE_LABELS, choose_oracle, verify_graph
    from .progress import Stages

    if json_path:
        check_writable_file(json_path, "--json")
    tgt = load_target(target)
    with Stages() as progress:
        progress(f"reading {model.name}")
        graph = load_model(model)
        progress(None)
        oracle = choose_oracle(graph, oracle)
        click.echo(f"{graph.name}: {len(graph.ops)} layers, {'/'.join(sorted(graph.activation_dtypes()))}, on "
                   f"{tgt.name} ({backend} backend), {runs} seeded input(s), seed {seed}; "
                   f"oracle: {ORACLE_LABELS[oracle]}")
        schedules = tuned_schedules(graph, db_path, tgt, backend)
        report = verify_graph(graph, tgt, backend, runs=runs, seed=seed, timeout=timeout, oracle=oracle,
                              schedules=schedules, progress=progress)
    click.echo(f"  {tgt.name}: {report.footprint.summary()}")
    for problem in report.fit_problems:
        click.echo(f"  warning: does not fit the target's part: {problem}")
    for c in report.comparisons:
        click.echo(f"  output {c.summary()}")
    if report.layer_instructions:
        click.echo(f"  executed instructions (QEMU, not cycles): total {sum(report.layer_instructions):,}")
        for op, count in zip(graph.ops, report.layer_instructions):
            click.echo(f"    {op.index:>3} {op.name:<24} {op.type:<16} {count:>12,}")
    if report.first_bad_layer:
        click.echo(f"  {report.first_bad_layer}")
    if json_path:
        write_file(json_path, json.dumps(_report_json(report), indent=2) + "\n", "--json")
    if not report.ok:
        raise click.ClickException(f"{graph.name} on {tgt.name}: generated code does not match the reference")
    click.echo("PASS")


def _report_json(report) -> dict:
    return dict(graph=report.graph, target=report.target, backend=report.backend, runs=report.runs,
                oracle=report.oracle, ok=report.ok,
                outputs=[dict(tensor=c.tensor, ok=c.ok, mismatches=c.mismatches, total=c.total,
                              max_abs_err=c.max_abs_err, tolerance=c.tolerance) for c in report.comparisons],
                first_bad_layer=report.first_bad_layer,
                instructions=None if report.layer_instructions is None else dict(
                    total=sum(report.layer_instructions), per_layer=report.layer_instructions),
                footprint=report.footprint.as_dict(), fits=not report.fit_problems, fit_problems=report.fit_problems)
