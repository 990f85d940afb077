"""`generate` and `inspect`: a model's C library, and what it is made of."""
from __future__ import annotations

from pathlib import Path

import click

from .. import __version__
from ..errors import DwsError
from ..targets import load_target
from .common import backend_opt, model_arg, target_opt, tuned_schedules, user_errors


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
@user_errors
def generate(model: Path, target: str, outdir: Path, backend: str, db_path: Path | None, flash: str | None,
             ram: str | None):
    """Generate a C library (<name>.h, <name>.c) for MODEL on TARGET.

    The library is compiled once for TARGET to measure its flash and RAM; a library that does not fit
    the target's part (or --flash/--ram) is an error and nothing is written.
    """
    from ..backends import generate_library
    from ..footprint import check_fit, measure, parse_size
    from ..importers import load_model
    from ..output import check_output_dir, write_output_dir

    check_output_dir(outdir)
    tgt = load_target(target)
    budgets = (parse_size(flash) if flash else None, parse_size(ram) if ram else None)
    graph = load_model(model)
    lib = generate_library(graph, tgt, backend, tuned_schedules(graph, db_path, tgt, backend))
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


@click.command()
@model_arg
@click.option("-t", "--target", default="x86_64", show_default=True, metavar="TARGET",
              help="Target whose compiler measures flash and RAM.")
@user_errors
def inspect(model: Path, target: str):
    """Print MODEL's layers: op, shapes, MACs, parameters, arena offsets; totals of MACs, flash and RAM."""
    from ..backends import generate_library
    from ..footprint import measure
    from ..graph_stats import layer_rows
    from ..importers import load_model

    tgt = load_target(target)
    graph = load_model(model)
    lib = generate_library(graph, tgt)
    rows = layer_rows(graph, lib.plan)
    click.echo(f"{graph.name} ({model.name}): {len(graph.ops)} layers, {'/'.join(sorted(graph.activation_dtypes()))}")
    header = f"{'#':>3} {'name':<22} {'op':<16} {'input':<16} {'output':<16} {'MACs':>11} {'params':>8} {'arena':>13}"
    click.echo(header)
    for r in rows:
        click.echo(f"{r.index:>3} {r.name[:22]:<22} {r.op:<16} {r.input_shape:<16} {r.output_shape:<16} "
                   f"{r.macs:>11,} {r.params:>8,} {r.arena:>13}")
    fp = measure(lib, tgt)
    click.echo(f"total: {sum(r.macs for r in rows):,} MACs, {sum(r.params for r in rows):,} parameters; "
               f"{tgt.name}: {fp.summary()}; arena {lib.arena_bytes:,} B")
