"""What every command shares: the options, user errors as click errors (never tracebacks), tuning records."""
from __future__ import annotations

import functools
import os
import sys
from pathlib import Path

import click

from ..backends import BACKENDS

from ..errors import DwsError
from ..procs import Terminated, install_stop_handlers, restore_handlers
from ..targets import available_targets


def user_errors(fn):
    """DwsError -> `Error: ...`, exit 1. SIGTERM/SIGHUP -> the children ended (procs.run), temporary folders
    removed (the exception unwinds through them), exit 128 + the signal number, as a shell reports it."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        previous = install_stop_handlers()
        try:
            return fn(*args, **kwargs)
        except DwsError as exc:
            raise click.ClickException(str(exc)) from None
        except Terminated as stop:
            click.echo(f"Error: stopped by {stop.name}; the programs it was running are ended and its "
                       "temporary files removed", err=True)
            sys.exit(128 + stop.signum)
        finally:
            restore_handlers(previous)
    return wrapper


model_arg = click.argument("model", type=click.Path(dir_okay=False, path_type=Path))
target_opt = click.option("-t", "--target", required=True, metavar="TARGET",
                          help=f"Target name, a file in targets/: {', '.join(available_targets())}.")
BACKEND_HELP = ("Code generation road: Jinja C templates, or TVM (TE/TIR schedules lowered to plain C; needs "
                "apache-tvm). Both give the same API and bit-identical int8 results.")


def backend_option(help: str = BACKEND_HELP):
    """--backend, one definition for every command (tune explains it in its own words)."""
    return click.option("--backend", default="templates", show_default=True, type=click.Choice(list(BACKENDS)),
                        help=help)


backend_opt = backend_option()


def tuned_schedules(graph, db_path: Path | None, target, backend: str) -> dict | None:
    """Best recorded schedules for this graph's layers, or None without a database; says which records
    it left out and why (tuning_select), and refuses a database of which nothing applies."""
    selection = tuned_selection(graph, db_path, target, backend)
    return None if selection is None else selection.schedules


def tuned_selection(graph, db_path: Path | None, target, backend: str):
    """tuned_schedules' tuning_select.Selection (its records too), or None without a database."""
    if db_path is None:
        return None
    from ..tuning_db import TuningDB
    from ..tuning_select import select_schedules
    selection = select_schedules(graph, TuningDB.open(db_path), target.name, backend)
    click.echo(f"  {db_path}: {selection.summary(backend, target.name)}")
    ignored = selection.ignored_summary()
    if ignored:
        click.echo(f"  warning: {db_path}: {ignored}", err=True)
    return selection


def check_writable_file(path: Path, option: str) -> None:
    """Before the long work: refuse a report file that could not be written at the end."""
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise DwsError(f"{option} {path}: folder '{parent}' does not exist; create it first")
    if path.is_dir():
        raise DwsError(f"{option} {path}: is a directory")
    if not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise DwsError(f"{option} {path}: not writable")


def write_file(path: Path, data: str | bytes, option: str) -> None:
    try:
        if isinstance(data, bytes):
            path.write_bytes(data)
        else:
            path.write_text(data)
    except OSError as exc:
        raise DwsError(f"{option} {path}: cannot write: {exc.strerror or exc}") from None
