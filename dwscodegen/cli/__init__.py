"""Command line: `dwscodegen generate | verify | inspect | tune`. User errors become click errors, never tracebacks."""
from __future__ import annotations

import click

from .. import __version__
from .build import generate, inspect
from .check import verify
from .tune import tune


@click.group()
@click.version_option(__version__, prog_name="dwscodegen")
def main():
    """Depthwise-separable CNN graphs to self-contained, verified C for Cortex-M and x86."""


for _command in (generate, verify, inspect, tune):
    main.add_command(_command)
