"""Every example, float32 and int8, through the CLI on x86: generate twice (byte-identical), verify."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from dwscodegen.cli import main

EXAMPLES = sorted((Path(__file__).resolve().parent.parent / "examples").glob("*.json"))


@pytest.mark.parametrize("model", EXAMPLES, ids=lambda p: p.stem)
def test_example_verifies_on_x86(model):
    result = CliRunner().invoke(main, ["verify", str(model), "-t", "x86_64", "--inputs", "3", "--seed", "5"])
    assert result.exit_code == 0, result.output
    assert "PASS" in result.output
    assert ("bit-exact" in result.output) == model.stem.endswith("_s8")


@pytest.mark.parametrize("model", EXAMPLES, ids=lambda p: p.stem)
def test_generate_is_deterministic_and_compiles_cleanly(model, tmp_path):
    outs = []
    for name in ("a", "b"):
        out = tmp_path / name
        result = CliRunner().invoke(main, ["generate", str(model), "-t", "x86_64", "-o", str(out)])
        assert result.exit_code == 0, result.output
        outs.append({p.name: p.read_bytes() for p in out.iterdir()})
    assert outs[0] == outs[1]
    c_file = tmp_path / "a" / f"{model.stem}.c"
    text = c_file.read_text()
    for forbidden in ("malloc", "printf", "#include <stdio.h>", "#include <math.h>"):
        assert forbidden not in text
    subprocess.run(["gcc", "-std=c99", "-pedantic", "-Wall", "-Wextra", "-Werror", "-Wshadow", "-Wconversion",
                    "-O2", "-c", str(c_file), "-o", str(tmp_path / "lib.o")], check=True, capture_output=True)
