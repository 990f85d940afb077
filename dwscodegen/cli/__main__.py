"""`python -m dwscodegen.cli`: the same as the `dwscodegen` command."""
from . import main

main(prog_name="dwscodegen")
