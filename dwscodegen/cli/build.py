"""`generate` and `inspect`: a model's C library, and what it is made of."""
from __future__ import annotations

import json
from pathlib import Path

import click

from .. import __version__
from ..targets import load_target
from .common import backend_opt, model_arg, target_opt, user_errors
from .fit import choose_kernels, fit_error, optimize_opt


@click.command()
@model_arg
@target_opt
@click.option("-o", "--output", "outdir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Directory for <name>.h and <name>.c; replaced atomically, never left half-written.")
@backend_opt
@click.option("--db", "db_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Tuning database from `tune`: use the best recorded schedule per layer.")
@click.option("--flash", metavar="SIZE", help="Flash budget (e.g. 512K); default: the target file's part.")
@click.option("--ram", metavar="SIZE", help="RAM budget (e.g. 128K); default: the target file's part.")
@optimize_opt
@user_errors
def generate(model: Path, target: str, outdir: Path, backend: str, db_path: Path | None, flash: str | None,
             ram: str | None, optimize: str):
    """Generate a C library (<name>.h, <name>.c) for MODEL on TARGET.

    The library is compiled for TARGET to measure its flash and RAM; a library that does not fit the target's
    part (or --flash/--ram) is an error and nothing is written. With --optimize balanced (the default) layers
    take smaller (int8-weight) kernels where the fastest ones would not fit the flash budget.
    """
    from ..footprint import check_fit, parse_size
    from ..importers import load_model
    from ..output import check_output_dir, write_output_dir
    from .progress import Stages

    check_output_dir(outdir)
    tgt = load_target(target)
    budgets = (parse_size(flash) if flash else None, parse_size(ram) if ram else None)
    with Stages() as progress:
        progress(f"reading {model.name}")
        graph = load_model(model)
        progress(f"generating C ({backend} backend, {len(graph.ops)} layers) and measuring it on {tgt.name}")
        mix = choose_kernels(graph, db_path, tgt, backend, optimize, *budgets)
        lib, fp = mix.lib, mix.footprint
        progress(None)
    if check_fit(fp, tgt, *budgets):
        raise fit_error(graph, mix, tgt, backend, budgets[1], mix.records)
    manifest = dict(graph=graph.name, model=model.name, target=tgt.name, backend=backend, version=__version__,
                    optimize=optimize,
                    arena_bytes=lib.arena_bytes, footprint=fp.as_dict(), files=sorted(lib.files))
    write_output_dir(outdir, lib.files, manifest)
    click.echo(f"wrote {outdir}/: {', '.join(sorted(lib.files))} ({len(graph.ops)} layers)")
    click.echo(f"  {tgt.name}: {fp.summary()}")
    click.echo(f"  arena {lib.arena_bytes:,} B{_fusion_summary(lib.plan)}")


def _fusion_summary(plan) -> str:
    """The row-fused chains of the plan (row_fusion.py), for the footprint report."""
    if not plan.fusions:
        return ""
    pairs = ", ".join(f.where() for f in plan.fusions)
    return (f"; row-fused layers {pairs} (windows {sum(f.window_bytes for f in plan.fusions):,} B in the arena; "
            "their middle tensors are never stored)")


@click.command()
@model_arg
@target_opt
@backend_opt
@click.option("--flash", metavar="SIZE", help="Flash budget of the fit verdict; default: the target file's part.")
@click.option("--ram", metavar="SIZE", help="RAM budget of the fit verdict; default: the target file's part.")
@click.option("--json", "as_json", is_flag=True, help="Print the layers, totals, fit verdict and arena plan "
              "(memory_plan: each tensor's offset, size, lifetime, in-place overlap) as JSON.")
@click.option("--memory-plot", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE.png",
              help="Draw the arena plan: each tensor a box over (op index, arena offset), the peak marked.")
@optimize_opt
@user_errors
def inspect(model: Path, target: str, backend: str, flash: str | None, ram: str | None, as_json: bool,
            memory_plot: Path | None, optimize: str):
    """Print MODEL's layers (op, shapes, MACs, parameters, arena offsets), the totals, the flash and RAM of
    its library on TARGET (the kernels `generate --optimize` picks), and whether that fits the target's part
    (and with which --optimize or --flash/--ram it would)."""
    from ..flash_budget import choose
    from ..footprint import check_fit, fit_options, fit_verdict, parse_size
    from ..graph_stats import layer_rows
    from ..importers import load_model
    from ..memory_timeline import plot, timeline

    tgt = load_target(target)
    budgets = (parse_size(flash) if flash else None, parse_size(ram) if ram else None)
    graph = load_model(model)
    mix = choose(graph, tgt, backend, optimize, budgets[0], ram=budgets[1])
    lib, fp = mix.lib, mix.footprint
    rows = layer_rows(graph, lib.plan)
    macs, params = sum(r.macs for r in rows), sum(r.params for r in rows)
    if memory_plot is not None:
        plot(graph, lib.plan, memory_plot)
    if as_json:
        problems = check_fit(fp, tgt, *budgets)
        doc = dict(graph=graph.name, model=model.name, target=tgt.name, backend=backend,
                   dtypes=sorted(graph.activation_dtypes()), layers=[vars(r) for r in rows], macs=macs,
                   params=params, arena_bytes=lib.arena_bytes, footprint=fp.as_dict(),
                   budget=dict(flash=budgets[0] if budgets[0] is not None else tgt.flash_bytes,
                               ram=budgets[1] if budgets[1] is not None else tgt.ram_bytes),
                   fits=not problems, fit_problems=problems, fit_options=fit_options(fp, tgt, *budgets),
                   memory_plan=timeline(graph, lib.plan))
        click.echo(json.dumps(doc, indent=2))
        return
    click.echo(f"{graph.name} ({model.name}): {len(graph.ops)} layers, {'/'.join(sorted(graph.activation_dtypes()))}")
    header = f"{'#':>3} {'name':<22} {'op':<16} {'input':<16} {'output':<16} {'MACs':>11} {'params':>8} {'arena':>13}"
    click.echo(header)
    for r in rows:
        click.echo(f"{r.index:>3} {r.name[:22]:<22} {r.op:<16} {r.input_shape:<16} {r.output_shape:<16} "
                   f"{r.macs:>11,} {r.params:>8,} {r.arena:>13}")
    click.echo(f"total: {macs:,} MACs, {params:,} parameters; {tgt.name}: {fp.summary()}; arena {lib.arena_bytes:,} B"
               f"{_fusion_summary(lib.plan)}")
    verdict = fit_verdict(fp, tgt, *budgets)
    if check_fit(fp, tgt, *budgets):
        verdict = str(fit_error(graph, mix, tgt, backend, budgets[1], tail="")).split(": ", 1)[1]
    click.echo(f"  {verdict}")
