"""Command line: `dwscodegen generate | verify`. User errors become click errors, never tracebacks."""
from __future__ import annotations

import functools
import json
from pathlib import Path

import click

from . import __version__
from .errors import DwsError
from .targets import available_targets, load_target


def user_errors(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except DwsError as exc:
            raise click.ClickException(str(exc)) from None
    return wrapper


model_arg = click.argument("model", type=click.Path(dir_okay=False, path_type=Path))
target_opt = click.option("-t", "--target", required=True, metavar="TARGET",
                          help=f"Target name, a file in targets/: {', '.join(available_targets())}.")
backend_opt = click.option("--backend", default="templates", show_default=True,
                           type=click.Choice(["templates", "tvm"]),
                           help="Code generation road: Jinja C templates, or TVM (TE/TIR schedules lowered to "
                                "plain C; needs apache-tvm). Both give the same API and bit-identical int8 results.")


@click.group()
@click.version_option(__version__, prog_name="dwscodegen")
def main():
    """Depthwise-separable CNN graphs to self-contained, verified C for Cortex-M and x86."""


@main.command()
@model_arg
@target_opt
@click.option("-o", "--output", "outdir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Directory for <name>.h and <name>.c; replaced atomically, never left half-written.")
@backend_opt
@click.option("--db", "db_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Tuning database from `tune`: use the best recorded schedule per layer.")
@click.option("--flash", metavar="SIZE", help="Flash budget (e.g. 512K); default: the target file's part.")
@click.option("--ram", metavar="SIZE", help="RAM budget (e.g. 128K); default: the target file's part.")
@user_errors
def generate(model: Path, target: str, outdir: Path, backend: str, db_path: Path | None, flash: str | None,
             ram: str | None):
    """Generate a C library (<name>.h, <name>.c) for MODEL on TARGET.

    The library is compiled once for TARGET to measure its flash and RAM; a library that does not fit
    the target's part (or --flash/--ram) is an error and nothing is written.
    """
    from .backends import generate_library
    from .footprint import check_fit, measure, parse_size
    from .importers import load_model
    from .output import write_output_dir

    tgt = load_target(target)
    budgets = (parse_size(flash) if flash else None, parse_size(ram) if ram else None)
    graph = load_model(model)
    lib = generate_library(graph, tgt, backend, _tuned(graph, db_path, tgt, backend))
    fp = measure(lib, tgt)
    problems = check_fit(fp, tgt, *budgets)
    if problems:
        raise DwsError(f"{graph.name} does not fit {tgt.name}: " + "; ".join(problems)
                       + ". Use a larger part (--flash/--ram) or a smaller model.")
    manifest = dict(graph=graph.name, model=model.name, target=tgt.name, backend=backend, version=__version__,
                    arena_bytes=lib.arena_bytes, footprint=fp.as_dict(), files=sorted(lib.files))
    write_output_dir(outdir, lib.files, manifest)
    click.echo(f"wrote {outdir}/: {', '.join(sorted(lib.files))} ({len(graph.ops)} layers)")
    click.echo(f"  {tgt.name}: {fp.summary()}")


@main.command()
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
@click.option("--flash", metavar="SIZE", help="Flash of the part the fit is checked against (e.g. 4M); default: "
                                              "the target file's part. QEMU runs on the board's memory either way.")
@click.option("--ram", metavar="SIZE", help="RAM of the part the fit is checked against; default: the target file's.")
@user_errors
def verify(model: Path, target: str, backend: str, runs: int, seed: int, timeout: float, db_path: Path | None,
           oracle: str, json_path: Path | None, flash: str | None, ram: str | None):
    """Build MODEL's library for TARGET, run it and compare with the NumPy reference.

    int8 must be bit-exact; float32 within 1e-5 * max(1, max|reference|). Exits 0 only if every output matches.
    """
    from .footprint import parse_size
    from .importers import load_model
    from .verify import ORACLE_LABELS, choose_oracle, verify_graph

    tgt = load_target(target)
    budgets = dict(flash=parse_size(flash) if flash else None, ram=parse_size(ram) if ram else None)
    graph = load_model(model)
    oracle = choose_oracle(graph, oracle)
    click.echo(f"{graph.name}: {len(graph.ops)} layers, {'/'.join(sorted(graph.activation_dtypes()))}, on {tgt.name} "
               f"({backend} backend), {runs} seeded input(s), seed {seed}; oracle: {ORACLE_LABELS[oracle]}")
    schedules = _tuned(graph, db_path, tgt, backend)
    report = verify_graph(graph, tgt, backend, runs=runs, seed=seed, timeout=timeout, oracle=oracle,
                          schedules=schedules, **budgets)
    click.echo(f"  {tgt.name}: {report.footprint.summary()}")
    for note in report.oracle_notes:
        click.echo(f"  NOTE on the oracle: {note}")
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
        json_path.write_text(json.dumps(_report_json(report), indent=2) + "\n")
    against = ORACLE_LABELS[oracle] + (f", except as the {len(report.oracle_notes)} note(s) on the oracle above say"
                                       if report.oracle_notes else "")
    if not report.ok:
        raise click.ClickException(f"{graph.name} on {tgt.name}: generated code does not match the reference "
                                   f"({against})")
    click.echo(f"PASS (against {against})")


def _tuned(graph, db_path: Path | None, target, backend: str) -> dict | None:
    """Best recorded schedules for this graph's layers, or None without a database."""
    if db_path is None:
        return None
    from .tuning import best_schedules
    from .tuning_db import TuningDB
    schedules = best_schedules(graph, TuningDB.open(db_path), target.name, backend)
    click.echo(f"  tuned schedules from {db_path} for {len(schedules)} of {len(graph.ops)} layers")
    return schedules


def _report_json(report) -> dict:
    return dict(graph=report.graph, target=report.target, backend=report.backend, runs=report.runs,
                oracle=report.oracle, oracle_notes=report.oracle_notes, ok=report.ok,
                outputs=[dict(tensor=c.tensor, ok=c.ok, mismatches=c.mismatches, total=c.total,
                              max_abs_err=c.max_abs_err, tolerance=c.tolerance) for c in report.comparisons],
                first_bad_layer=report.first_bad_layer,
                instructions=None if report.layer_instructions is None else dict(
                    total=sum(report.layer_instructions), per_layer=report.layer_instructions),
                footprint=report.footprint.as_dict(), fits=not report.fit_problems, fit_problems=report.fit_problems)


@main.command()
@model_arg
@click.option("-t", "--target", default="x86_64", show_default=True, metavar="TARGET",
              help="Target whose compiler measures flash and RAM.")
@user_errors
def inspect(model: Path, target: str):
    """Print MODEL's layers: op, shapes, MACs, parameters, arena offsets; totals of MACs, flash and RAM."""
    from .backends import generate_library
    from .footprint import measure
    from .graph_stats import layer_rows
    from .importers import load_model

    tgt = load_target(target)
    graph = load_model(model)
    lib = generate_library(graph, tgt)
    rows = layer_rows(graph, lib.plan)
    click.echo(f"{graph.name} ({model.name}): {len(graph.ops)} layers, {'/'.join(sorted(graph.activation_dtypes()))}")
    header = (f"{'#':>3} {'name':<22} {'op':<16} {'kind':<11} {'input':<16} {'output':<16} {'MACs':>11} "
              f"{'params':>8} {'arena':>13}")
    click.echo(header)
    for r in rows:
        click.echo(f"{r.index:>3} {r.name[:22]:<22} {r.op:<16} {r.kind:<11} {r.input_shape:<16} {r.output_shape:<16} "
                   f"{r.macs:>11,} {r.params:>8,} {r.arena:>13}")
    fp = measure(lib, tgt)
    click.echo(f"total: {sum(r.macs for r in rows):,} MACs, {sum(r.params for r in rows):,} parameters; "
               f"{tgt.name}: {fp.summary()}; arena {lib.arena_bytes:,} B")


@main.command()
@model_arg
@target_opt
@click.option("--backend", default="templates", show_default=True, type=click.Choice(["templates", "tvm"]),
              help="Backend whose choices are searched: templates = the kernel variant per layer (portable or "
                   "the target's SIMD kernels), tvm = loop schedule knobs.")
@click.option("--trials", default=8, show_default=True, type=click.IntRange(1, 1000),
              help="Candidates per distinct layer (the default schedule included).")
@click.option("--db", "db_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Tuning database (JSON lines); default: <model>.<target>.tuning.jsonl. Measured "
                   "candidates are skipped, so an interrupted run resumes.")
@click.option("--jobs", default=1, show_default=True, type=click.IntRange(1, 64), help="Local worker processes.")
@click.option("--scheduler", metavar="ADDRESS", help="Send measurements to a dask.distributed scheduler.")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Tuning curves PNG; default: next to the database.")
@user_errors
def tune(model: Path, target: str, backend: str, trials: int, db_path: Path | None, jobs: int,
         scheduler: str | None, plot_path: Path | None):
    """Search schedules per distinct layer of MODEL on TARGET; record every measurement in a database.

    Each candidate is built, checked bit-exactly against the reference (a wrong one is rejected and
    logged), and measured: executed instructions under QEMU on Cortex-M, median time on native targets.
    Use the result with `generate --db` / `verify --db`.
    """
    from .importers import load_model
    from .tuning import pending_jobs
    from .tuning_db import TuningDB
    from .tuning_report import format_table, layer_rows, plot_curves, run_jobs

    tgt = load_target(target)
    graph = load_model(model)
    db_path = db_path or model.with_name(f"{model.stem}.{tgt.name}.tuning.jsonl")
    db = TuningDB.open(db_path)
    if db.skipped_lines:
        click.echo(f"note: {db.skipped_lines} unreadable line(s) in {db_path} skipped (an interrupted write)")
    todo = pending_jobs(model.resolve(), graph, tgt.name, backend, trials, db)
    click.echo(f"{graph.name} on {tgt.name}: {len(todo)} measurement(s) to run "
               f"({len(db.records)} already in {db_path})")
    rejected = []
    with click.progressbar(length=len(todo), label="tuning", show_pos=True) as bar:
        def record(result: dict) -> None:
            db.append(result)
            if not result["ok"]:
                rejected.append(f"{result['op']} {result['schedule']}: {result.get('error', '')}")
            bar.update(1)
        run_jobs(todo, jobs, scheduler, record)
    for line in rejected:
        click.echo(f"rejected: {line}")
    unit = "executed instructions (QEMU)" if tgt.runner == "qemu" else "ns per run (median)"
    click.echo(format_table(layer_rows(graph, db, tgt.name, backend), unit))
    plot_path = plot_path or db_path.with_suffix(".png")
    plot_curves(graph, db, tgt.name, backend, plot_path)
    click.echo(f"tuning curves: {plot_path}")
