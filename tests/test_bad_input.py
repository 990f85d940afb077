"""Hostile and careless input (issue 14, "Bad input"): each case exits 1 with a message that says what and
where, prints no traceback, leaves nothing behind and keeps an earlier output intact."""
from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
from pathlib import Path

import numpy as np
import pytest

from dwscodegen.output import MANIFEST

from .support.cli import BASE, Untouched, assert_refused, copy_example, invoke
from .support.tflite_builder import build_single_op_model
from .support.tflite_cases import act, single_op

X86 = ("-t", "x86_64")


@pytest.fixture
def work(tmp_path):
    """(model, its JSON document, an earlier good output folder, the temp folder the tool must leave empty)."""
    model, doc = copy_example(tmp_path)
    out = tmp_path / "out"
    assert invoke("generate", model, *X86, "-o", out).exit_code == 0
    return model, doc, out, tmp_path / "tmp"


def _tensor(doc: dict, name: str) -> dict:
    return next(t for t in doc["tensors"] if t["name"] == name)


def _write(path: Path, doc: dict) -> Path:
    path.write_text(json.dumps(doc))
    return path


def _refused(tmp_path, temp, args, *fragments):
    with Untouched(tmp_path, temp=temp):
        assert_refused(invoke(*args), *fragments)


@pytest.mark.parametrize("command", ["generate", "verify"])
def test_npz_holding_strings(tmp_path, work, command):
    model, doc, out, temp = work
    weights = np.load(model.with_suffix(".npz"))
    np.savez(tmp_path / "strings.npz", **{k: np.array(["w"] * v.size) for k, v in weights.items()})
    bad = _write(tmp_path / "strings.json", dict(doc, weights="strings.npz"))
    extra = ["-o", out] if command == "generate" else []
    _refused(tmp_path, temp, [command, bad, *X86, *extra], "strings.json", "tensor 'dw_w'", "holds <U1 values")


@pytest.mark.parametrize("command", ["generate", "verify", "tune"])
def test_binary_tuning_database(tmp_path, work, command):
    model, _, out, temp = work
    db = tmp_path / "db.jsonl"
    db.write_bytes(bytes(range(256)) * 4)
    extra = ["-o", out] if command == "generate" else []
    _refused(tmp_path, temp, [command, model, *X86, "--db", db, *extra], str(db), "is not a tuning database")


def test_verify_json_into_a_missing_folder_fails_before_the_run(tmp_path, work):
    model, _, _, temp = work
    with Untouched(tmp_path, temp=temp):
        result = invoke("verify", model, *X86, "--json", tmp_path / "no" / "such" / "report.json")
        assert_refused(result, "--json", "does not exist")
        assert "layers," not in result.output and "PASS" not in result.output   # nothing was run


def test_output_under_proc(tmp_path, work):
    model, _, _, temp = work
    _refused(tmp_path, temp, ["generate", model, *X86, "-o", "/proc/dwscodegen-out"],
             "cannot write '/proc/dwscodegen-out'")


def test_output_in_an_immutable_folder_keeps_the_earlier_output(tmp_path, work):
    model, _, out, temp = work
    locked = tmp_path / "locked"
    locked.mkdir()
    shutil.copytree(out, locked / "out")
    if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(locked)], capture_output=True).returncode:
        pytest.skip("chattr +i is not available here (needs root and a file system with attributes)")
    try:
        _refused(tmp_path, temp, ["generate", model, *X86, "-o", locked / "out"], f"cannot write '{locked / 'out'}'")
    finally:
        subprocess.run(["chattr", "-i", str(locked)], check=True)


def test_read_only_output_folder(tmp_path, work):
    """The same without root: a folder the user cannot write (as root, chattr above covers it)."""
    model, _, out, temp = work
    if os.geteuid() == 0:
        pytest.skip("root writes into read-only folders; the immutable-folder test covers this case")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        _refused(tmp_path, temp, ["generate", model, *X86, "-o", ro / "out"], "cannot write")
    finally:
        ro.chmod(stat.S_IRWXU)


def test_a_5000_character_graph_name(tmp_path, work):
    model, doc, out, temp = work
    bad = _write(tmp_path / "long.json", dict(doc, name="n" * 5000))
    _refused(tmp_path, temp, ["generate", bad, *X86, "-o", out], "long.json", "5000 characters, at most 64")


def _tflite(tmp_path: Path, name: str, **options) -> Path:
    op, inputs, outputs, base = single_op("CONV_2D", "int8", np.random.default_rng(5))
    if "output_scale" in options:
        outputs = [act("y", outputs[0].shape, "int8", options.pop("output_scale"), 4)]
    path = tmp_path / f"{name}.tflite"
    path.write_bytes(build_single_op_model(op, inputs, outputs, {**base, **options}))
    return path


@pytest.mark.parametrize("case, options, message", [
    ("dilation0", dict(dilation_h=0), "dilation must be >= 1, got [0, 1]"),
    ("stride0", dict(stride_w=0), "stride must be >= 1, got [2, 0]"),
    ("stride_negative", dict(stride_h=-1), "stride must be >= 1, got [-1, 2]"),
])
@pytest.mark.parametrize("command", ["generate", "verify"])
def test_bad_strides_and_dilations_in_a_tflite(tmp_path, work, command, case, options, message):
    _, _, out, temp = work
    path = _tflite(tmp_path, case, **options)
    extra = ["-o", out] if command == "generate" else []
    _refused(tmp_path, temp, [command, path, *X86, *extra], f"{case}.tflite", "operator 0 (CONV_2D", message)


@pytest.mark.parametrize("command", ["generate", "verify"])
def test_activation_bound_that_overflows_int32(tmp_path, work, command):
    _, _, out, temp = work
    path = _tflite(tmp_path, "tiny_scale", output_scale=1e-10)     # relu6: 6 / 1e-10 > INT32_MAX
    extra = ["-o", out] if command == "generate" else []
    _refused(tmp_path, temp, [command, path, *X86, *extra], "op 0 'conv_2d_0'", "relu6 bound 6", "outside int32")


def test_scale_given_as_a_string(tmp_path, work):
    model, doc, out, temp = work
    _tensor(doc, "input")["quant"]["scale"] = "0.03"
    bad = _write(model, doc)
    _refused(tmp_path, temp, ["generate", bad, *X86, "-o", out], "tensor 'input'", "quant scale must be a number")


def test_npz_array_of_the_right_size_but_another_shape(tmp_path, work):
    model, doc, out, temp = work
    weights = dict(np.load(model.with_suffix(".npz")))
    weights["dw_w"] = weights["dw_w"].reshape(8, 3, 3, 1)       # 72 values either way
    np.savez(model.with_suffix(".npz"), **weights)
    _refused(tmp_path, temp, ["generate", model, *X86, "-o", out], "tensor 'dw_w'", "shape [8, 3, 3, 1]",
             "[1, 3, 3, 8]")


@pytest.mark.parametrize("command", ["generate", "verify", "inspect", "tune"])
def test_a_path_given_as_target_name(tmp_path, work, command):
    model, _, out, temp = work
    extra = ["-o", out] if command == "generate" else []
    _refused(tmp_path, temp, [command, model, "-t", "../targets/x86_64", *extra],
             "'../targets/x86_64' is not a target name", "x86_64")


@pytest.mark.parametrize("backend", ["templates", "tvm"])
def test_names_that_would_break_c_comments(tmp_path, backend):
    """Tensor and op names holding comment delimiters, a trigraph and a newline: the C still compiles and is right."""
    if backend == "tvm":
        pytest.importorskip("tvm")
    model, doc = copy_example(tmp_path)
    nasty = {"input": "in/*put", "dw_out": "*/dw??/\nout", "output": "out*/"}
    for t in doc["tensors"]:
        t["name"] = nasty.get(t["name"], t["name"])
    for o in doc["ops"]:
        o["name"] += "/* */"
        o["inputs"] = [nasty.get(n, n) for n in o["inputs"]]
        o["outputs"] = [nasty.get(n, n) for n in o["outputs"]]
    doc["inputs"], doc["outputs"] = ["in/*put"], ["out*/"]
    _write(model, doc)
    result = invoke("verify", model, *X86, "--backend", backend, "--inputs", "1")
    assert result.exit_code == 0 and "PASS" in result.output, result.output


def test_a_shape_whose_offsets_overflow_int(tmp_path, work):
    model, doc, out, temp = work
    _tensor(doc, "input")["shape"] = [1, 20000, 20000, 8]
    bad = _write(model, doc)
    _refused(tmp_path, temp, ["generate", bad, *X86, "-o", out], "tensor 'input' [1, 20000, 20000, 8]",
             "3,200,000,000 bytes", "32-bit int")


def test_output_folder_with_a_manifest_and_a_foreign_file(tmp_path, work):
    """The data-loss case: a dwscodegen.json does not make every file beside it ours to delete."""
    model, _, out, temp = work
    (out / "notes.txt").write_text("the user's own notes")
    _refused(tmp_path, temp, ["generate", model, *X86, "-o", out], "did not write (notes.txt)")
    (out / "notes.txt").unlink()
    (out / MANIFEST).write_text("{not json")
    _refused(tmp_path, temp, ["generate", model, *X86, "-o", out], f"{MANIFEST} is unreadable")


@pytest.mark.parametrize("mask", [0o022, 0o027])
def test_output_folders_honour_the_umask(tmp_path, mask):
    model, _ = copy_example(tmp_path)
    saved = os.umask(mask)
    try:
        assert invoke("generate", model, *X86, "-o", tmp_path / "new" / "out").exit_code == 0
    finally:
        os.umask(saved)
    for folder in (tmp_path / "new", tmp_path / "new" / "out"):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o777 & ~mask
    assert stat.S_IMODE((tmp_path / "new" / "out" / f"{BASE}.h").stat().st_mode) == 0o666 & ~mask



@pytest.mark.parametrize("kind", ["Conv2D", "DepthwiseConv2D"])
def test_conv_bias_of_the_wrong_shape_is_named(kind):
    """The conv kinds check their bias the same way (validate_tensors.check_bias): a constant of the
    accumulator type, one per output channel; the message names the tensor and both shapes."""
    from dwscodegen.errors import DwsError
    from dwscodegen.validate import validate
    from .support.layers import ConvCase, conv_graph
    graph = conv_graph(ConvCase(kind, (1, 5, 5, 8), (3, 3), out_channels=8), "int8", seed=1)
    bias = graph.tensor("b")
    bias.data, bias.shape = bias.data[:3], (3,)
    with pytest.raises(DwsError, match=r"bias 'b' must be a constant int32 tensor of shape \[8\], got int32 \[3\]"):
        validate(graph)
