"""Command line: `dwscodegen generate | verify | run | inspect | tune`. User errors become click errors, not
tracebacks."""
from __future__ import annotations

import click

from .. import __version__
from .build import generate, inspect
from .check import run, verify
from .tune import tune


@click.group()
@click.version_option(__version__, prog_name="dwscodegen")
def main():
    """Depthwise-separable CNN graphs to self-contained, verified C for Cortex-M and x86."""


for _command in (generate, verify, run, inspect, tune):
    main.add_command(_command)
