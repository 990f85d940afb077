"""Bad input of every kind gives a clear click error (what, where), no traceback, and no output dir."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from dwscodegen.cli import main

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
BASE = "mbv1_ds_block_s8"


def copy_example(tmp_path: Path) -> tuple[Path, dict]:
    for suffix in (".json", ".npz"):
        shutil.copy(EXAMPLES / f"{BASE}{suffix}", tmp_path / f"{BASE}{suffix}")
    return tmp_path / f"{BASE}.json", json.loads((EXAMPLES / f"{BASE}.json").read_text())


def tensor(doc: dict, name: str) -> dict:
    return next(t for t in doc["tensors"] if t["name"] == name)


def op(doc: dict, name: str) -> dict:
    return next(o for o in doc["ops"] if o["name"] == name)


def _malformed(doc, path):
    path.write_text('{"name": "x", "tensors": [')
    return None


def _edit(fn):
    def apply(doc, path):
        fn(doc)
        path.write_text(json.dumps(doc))
    return apply


BAD = {
    "malformed_json": (_malformed, ["not valid JSON", "line 1"]),
    "missing_tensor": (_edit(lambda d: op(d, "pw1")["inputs"].__setitem__(0, "nope")),
                       ["op 1 'pw1'", "input tensor 'nope' is not declared"]),
    "filter_shape_mismatch": (_edit(lambda d: tensor(d, "input").__setitem__("shape", [1, 16, 16, 4])),
                              ["op 0 'dw1'", "filter shape [1, 3, 3, 8] does not match input channels 4"]),
    "output_shape_mismatch": (_edit(lambda d: tensor(d, "output").__setitem__("shape", [1, 8, 8, 12])),
                              ["op 1 'pw1'", "output 'output' has shape [1, 8, 8, 12]", "[1, 8, 8, 16]"]),
    "unsupported_dtype": (_edit(lambda d: tensor(d, "dw_out").__setitem__("dtype", "float16")),
                          ["tensor 'dw_out'", "unsupported dtype 'float16'"]),
    "mixed_dtype": (_edit(lambda d: tensor(d, "dw_out").update(dtype="float32")),
                    ["op 0 'dw1'", "output 'dw_out' is float32; expected int8"]),
    "bad_padding": (_edit(lambda d: op(d, "dw1").__setitem__("padding", "FULL")),
                    ["op 0 'dw1'", "padding must be", "'FULL'"]),
    "negative_padding": (_edit(lambda d: op(d, "dw1").__setitem__("padding", [1, -1, 0, 0])),
                         ["op 0 'dw1'", "must be >= 0"]),
    "zero_stride": (_edit(lambda d: op(d, "dw1").__setitem__("stride", [0, 1])),
                    ["op 0 'dw1'", "stride must be >= 1"]),
    "unknown_op": (_edit(lambda d: op(d, "pw1").__setitem__("type", "Softmax3D")),
                   ["op 1 'pw1'", "unsupported op type 'Softmax3D'"]),
    "missing_npz": (_edit(lambda d: d.__setitem__("weights", "gone.npz")), ["gone.npz", "not found"]),
    "missing_npz_entry": (_edit(lambda d: tensor(d, "dw_w").__setitem__("data", {"npz": "nokey"})),
                          ["tensor 'dw_w'", "npz entry 'nokey' not found"]),
    "asymmetric_filter": (_edit(lambda d: tensor(d, "pw_w")["quant"].__setitem__("zero_point", [3] * 16)),
                          ["op 1 'pw1'", "symmetric"]),
    "bad_activation": (_edit(lambda d: op(d, "pw1").__setitem__("activation", "gelu")),
                       ["op 1 'pw1'", "unknown activation 'gelu'"]),
    "not_execution_order": (_edit(lambda d: d["ops"].reverse()),
                            ["op 0 'pw1'", "execution order"]),
}


@pytest.mark.parametrize("kind", sorted(BAD))
@pytest.mark.parametrize("command", ["generate", "verify"])
def test_bad_model_is_a_clear_error(tmp_path, kind, command):
    model, doc = copy_example(tmp_path)
    corrupt, expected = BAD[kind]
    corrupt(doc, model)
    out = tmp_path / "out"
    args = [command, str(model), "-t", "x86_64"] + (["-o", str(out)] if command == "generate" else [])
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit)
    assert result.output.startswith("Error: ")
    for fragment in expected:
        assert fragment in result.output
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out")] == []


def test_unknown_target(tmp_path):
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["generate", str(EXAMPLES / f"{BASE}.json"), "-t", "cortex-z9", "-o", str(out)])
    assert result.exit_code == 1
    assert "unknown target 'cortex-z9'" in result.output and "x86_64" in result.output
    assert not out.exists()


def test_missing_model_file(tmp_path):
    result = CliRunner().invoke(main, ["verify", str(tmp_path / "none.json"), "-t", "x86_64"])
    assert result.exit_code == 1 and "no such file" in result.output


def test_failed_generate_keeps_earlier_output(tmp_path):
    model, doc = copy_example(tmp_path)
    out = tmp_path / "out"
    assert CliRunner().invoke(main, ["generate", str(model), "-t", "x86_64", "-o", str(out)]).exit_code == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    BAD["zero_stride"][0](doc, model)
    result = CliRunner().invoke(main, ["generate", str(model), "-t", "x86_64", "-o", str(out)])
    assert result.exit_code == 1
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_refuses_to_replace_a_foreign_directory(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("precious")
    result = CliRunner().invoke(main, ["generate", str(EXAMPLES / f"{BASE}.json"), "-t", "x86_64", "-o", str(out)])
    assert result.exit_code == 1 and "was not written by dwscodegen" in result.output
    assert (out / "notes.txt").read_text() == "precious"
