"""`tune`: search schedules per distinct layer and record them."""
from __future__ import annotations

from pathlib import Path

import click

from ..targets import load_target
from .common import backend_option, check_writable_file, model_arg, target_opt, user_errors
from .fit import optimize_opt


@click.command()
@model_arg
@target_opt
@backend_option("Backend whose choices are searched: templates = the kernel variant per layer (portable or the "
                "target's SIMD kernels), tvm = loop schedule knobs.")
@click.option("--trials", default=8, show_default=True, type=click.IntRange(1, 1000),
              help="Candidates per distinct layer (the default schedule included).")
@click.option("--db", "db_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Tuning database (JSON lines); default: <model>.<target>.tuning.jsonl. Measured "
                   "candidates are skipped, so an interrupted run resumes.")
@click.option("--jobs", default=1, show_default=True, type=click.IntRange(1, 64), help="Local worker processes.")
@click.option("--scheduler", metavar="ADDRESS", help="Send measurements to a dask.distributed scheduler.")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Tuning curves PNG; default: next to the database.")
@click.option("--flash", metavar="SIZE", help="Flash budget of the kernel mix reported at the end (e.g. 460K); "
                                              "default: the target file's part.")
@optimize_opt
@user_errors
def tune(model: Path, target: str, backend: str, trials: int, db_path: Path | None, jobs: int,
         scheduler: str | None, plot_path: Path | None, flash: str | None, optimize: str):
    """Search schedules per distinct layer of MODEL on TARGET; record every measurement in a database.

    Each candidate is built, checked bit-exactly against the reference (a wrong one is rejected and
    logged), and measured: executed instructions under QEMU on Cortex-M, median time on native targets.
    Use the result with `generate --db` / `verify --db`. Each record also holds the candidate's flash, so
    the end of the run reports the kernel mix --optimize picks under the flash budget, from the database.
    """
    from ..importers import load_model
    from ..tuning import graph_hash, pending_jobs
    from ..tuning_db import TuningDB
    from ..tuning_report import format_table, layer_rows, plot_curves
    from ..tuning_run import run_jobs
    from .progress import Counter

    tgt = load_target(target)
    graph = load_model(model)
    db_path = db_path or model.with_name(f"{model.stem}.{tgt.name}.tuning.jsonl")
    if plot_path:
        check_writable_file(plot_path, "--plot")
    db = TuningDB.open(db_path)
    if db.skipped_lines:
        click.echo(f"note: {db.skipped_lines} unreadable line(s) in {db_path} skipped (an interrupted write)")
    model_hash = graph_hash(graph)
    todo = pending_jobs(model.resolve(), graph, tgt.name, backend, trials, db)
    mine = len(db.of_model(model_hash).records)
    others = len(db.records) - mine
    others = f"; {others} of other models or older versions left alone" if others else ""
    click.echo(f"{graph.name} on {tgt.name}: {len(todo)} measurement(s) to run "
               f"({mine} of this model already in {db_path}{others})")
    rejected = []
    with Counter(len(todo), "tuning") as progress:
        def record(result: dict) -> None:
            db.append(result)
            if not result["ok"]:
                rejected.append(f"{result['op']} {result['schedule']}: {result.get('error', '')}")
            progress.update()
        run_jobs(todo, jobs, scheduler, record)
    for line in rejected:
        click.echo(f"rejected: {line}")
    unit = "executed instructions (QEMU)" if tgt.runner == "qemu" else "ns per run (median)"
    ours = db.of_model(model_hash)
    click.echo(format_table(layer_rows(graph, ours, tgt.name, backend), unit))
    plot_path = plot_path or db_path.with_suffix(".png")
    plot_curves(graph, ours, tgt.name, backend, plot_path)
    click.echo(f"tuning curves: {plot_path}")
    _report_mix(graph, tgt, backend, optimize, flash, db)


def _report_mix(graph, tgt, backend: str, optimize: str, flash: str | None, db) -> None:
    """The kernel mix `generate --db --optimize` would build under the budget, its instructions and flash."""
    from ..flash_budget import choose, smaller_layers
    from ..footprint import parse_size
    from ..tuning_select import select_schedules
    selection = select_schedules(graph, db, tgt.name, backend)
    mix = choose(graph, tgt, backend, optimize, parse_size(flash) if flash else None, selection.schedules,
                 selection.records)
    budget = f"{mix.budget:,} B" if mix.budget else "no budget"
    instructions = mix.instructions()
    cost = f", {instructions:,.0f} instructions in its tuned layers" if instructions else ""
    verdict = "fits" if mix.fits else "does NOT fit"
    click.echo(f"--optimize {optimize}, flash budget {budget}: flash {mix.footprint.flash:,} B ({verdict}){cost}; "
               f"{len(smaller_layers(graph, tgt, mix))} layer(s) on smaller kernels than their fastest")
