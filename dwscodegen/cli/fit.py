"""--optimize and the flash budget, shared by `generate`, `verify`, `inspect` and `tune` (flash_budget.py)."""
from __future__ import annotations

from pathlib import Path

import click

from ..errors import DwsError
from .common import tuned_selection

def optimize_help() -> str:
    """The --optimize help, its size slack taken from the constant the size choice uses (flash_budget.SIZE_SLACK)."""
    from ..flash_budget import SIZE_SLACK
    fraction, slack = SIZE_SLACK
    return ("Kernel choice per layer: speed = the fastest kernels (the library must fit as it is), and the fastest "
            "arena plan within the RAM budget (fewer row-fused layers where --ram, default the part, has room); "
            "balanced = "
            "the fewest instructions that fit the flash budget (the fastest kernels whenever they fit; else "
            "int8-weight variants where they cost the fewest instructions); size = per layer the fastest kernel "
            f"within {fraction * 100:g} % (or {slack / 1024:g} KiB) of its smallest. balanced and size take the "
            "lowest-RAM arena plan.")


def optimize_option(default: str = "balanced"):
    from ..flash_budget import OPTIMIZE
    return click.option("--optimize", default=default, show_default=True, type=click.Choice(OPTIMIZE),
                        help=optimize_help())


optimize_opt = optimize_option()


def choose_kernels(graph, db_path: Path | None, tgt, backend: str, optimize: str, flash: int | None,
                   ram: int | None = None):
    """The flash_budget.Mix of `optimize` under `flash` and `ram` (default: the target's part); says which layers
    it moved to smaller kernels."""
    from ..flash_budget import choose, smaller_layers
    selection = tuned_selection(graph, db_path, tgt, backend)
    mix = choose(graph, tgt, backend, optimize, flash, selection.schedules if selection else None,
                 selection.records if selection else None, ram=ram)
    moved = smaller_layers(graph, tgt, mix)
    if moved:
        shown = ", ".join(f"'{op.name}' ({got})" for op, _, got in moved[:6])
        more = f" and {len(moved) - 6} more" if len(moved) > 6 else ""
        goal = ("(no flash budget)" if mix.budget is None else f"to fit {mix.budget:,} B of flash" if mix.fits
                else f"(flash budget {mix.budget:,} B)")
        click.echo(f"  --optimize {optimize}: {len(moved)} of {len(graph.ops)} layers take smaller kernels {goal}: "
                   f"{shown}{more}")
    for note in mix.notes:
        click.echo(f"  note: {note}")
    return mix


def fit_error(graph, mix, tgt, backend: str, ram: int | None, records: list[dict] | None = None,
              tail: str = "; nothing written") -> DwsError:
    """The error of a library that misses its part: what is over, and the options that help (an --optimize
    choice only when its library, built and measured, does fit)."""
    from ..flash_budget import choose
    from ..footprint import check_fit, fit_options
    problems = check_fit(mix.footprint, tgt, mix.budget, ram)
    text = f"{graph.name}: does not fit {tgt.name}: " + "; ".join(problems) + f" (--optimize {mix.optimize})"
    options = []
    flash_over = mix.budget is not None and mix.footprint.flash > mix.budget
    smallest = mix
    if flash_over and backend == "templates" and mix.optimize == "speed":
        other = choose(graph, tgt, backend, "balanced", mix.budget, mix.speed, records, built=mix)
        if other.fits:
            options.append(f"--optimize balanced (the default; flash {other.footprint.flash:,} B)")
        smallest = other
    elif flash_over and backend == "templates" and mix.optimize == "balanced":
        text += "; no mix of its kernels fits, not even every layer on its smallest kernel"
        # the flash that would do is the smallest mix's (the balanced choice kept the fastest kernels)
        smallest = choose(graph, tgt, backend, "size", mix.budget, mix.speed, records)
    elif flash_over and backend != "templates":
        text += "; only the templates backend has smaller kernels (--backend templates)"
    ram_budget = ram if ram is not None else tgt.ram_bytes
    if ram_budget is not None and mix.footprint.ram > ram_budget:
        from ..memory_timeline import peak_note
        text += f"; {peak_note(graph, mix.lib.plan)} (the lowest-RAM plan: in place, moves, row fusion)"
        if backend != "templates":
            options.append("--backend templates (its plan row-fuses convolution pairs; this road does not)")
    options += fit_options(smallest.footprint, tgt, mix.budget, ram)
    if options:
        text += f"; it would fit with {' or '.join(options)}"
    return DwsError(text + tail)
