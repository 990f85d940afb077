"""The user's own data (issue 14): `verify --input` checks the library on it against the oracle, `run` returns
what the library computes, natively and under QEMU; classifier outputs get top-1 agreement; bad files are
clear errors."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from dwscodegen.importers import load_model
from dwscodegen.oracles import tflite_interpreter
from dwscodegen.reference.graph import run_graph

from .support.cli import Untouched, assert_refused, copy_example, invoke
from .support.targets import target_or_skip
from .support.tflite_builder import build_single_op_model, run_reference
from .support.tflite_cases import single_op

KWS = Path(__file__).resolve().parent.parent.parent / "shared" / "models" / "kws_ref_model.tflite"
needs_litert = pytest.mark.skipif(not tflite_interpreter.available(), reason="ai-edge-litert not installed")


@pytest.fixture
def model(tmp_path):
    return copy_example(tmp_path)[0]


def _fc_model(tmp_path) -> Path:
    """A one-op int8 FULLY_CONNECTED .tflite: input [2, 20], classifier-shaped output [2, 6]."""
    path = tmp_path / "fc.tflite"
    path.write_bytes(build_single_op_model(*single_op("FULLY_CONNECTED", "int8", np.random.default_rng(5))))
    return path


def _int8(rng, shape):
    return rng.integers(-128, 128, shape).astype(np.int64)    # int64 on purpose: any integer dtype is taken


@pytest.mark.parametrize("layout, shape", [("single", (1, 16, 16, 8)), ("stacked", (4, 1, 16, 16, 8)),
                                           ("batch", (3, 16, 16, 8))])
def test_verify_input_npy_on_x86(tmp_path, model, layout, shape):
    data = tmp_path / "x.npy"
    np.save(data, _int8(np.random.default_rng(1), shape))
    result = invoke("verify", model, "-t", "x86_64", "--input", data, "--json", tmp_path / "r.json")
    assert result.exit_code == 0 and "PASS" in result.output, result.output
    runs = 1 if layout == "single" else shape[0]
    assert f"{runs} input(s) from {data}" in result.output
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["inputs"] == str(data) and report["runs"] == runs


@pytest.mark.qemu
def test_verify_input_npz_on_cortex_m4(tmp_path, model):
    target_or_skip("cortex-m4")
    data = tmp_path / "x.npz"
    np.savez(data, input=_int8(np.random.default_rng(2), (2, 1, 16, 16, 8)))
    result = invoke("verify", model, "-t", "cortex-m4", "--input", data)
    assert result.exit_code == 0 and "PASS" in result.output, result.output
    assert "2 input(s) from" in result.output and "executed instructions" in result.output


@needs_litert
def test_verify_input_reports_top1_of_a_classifier(tmp_path):
    model = _fc_model(tmp_path)
    data = tmp_path / "x.npz"
    np.savez(data, _int8(np.random.default_rng(3), (5, 2, 20)))      # positional: arr_0
    result = invoke("verify", model, "-t", "x86_64", "--input", data)
    assert result.exit_code == 0, result.output
    assert "oracle: TFLite interpreter" in result.output
    assert "top-1 class of 'y' agrees with the oracle on 10 of 10 rows (100.0 %)" in result.output


@needs_litert
def test_verify_kws_on_float_features(tmp_path):
    """A firmware engineer's case: float features for the int8 KWS model, quantized and said so."""
    if not KWS.is_file():
        pytest.skip("needs ../shared/models/kws_ref_model.tflite")
    data = tmp_path / "mfcc.npy"
    np.save(data, np.random.default_rng(4).normal(0, 20, (3, 49, 10, 1)).astype(np.float32))
    result = invoke("verify", KWS, "-t", "x86_64", "--input", data)
    assert result.exit_code == 0, result.output
    assert "note: input '" in result.output and "float data quantized to int8 with scale" in result.output
    assert "top-1 class of" in result.output and "on 3 of 3 rows (100.0 %)" in result.output


@needs_litert
@pytest.mark.parametrize("target", ["x86_64", pytest.param("cortex-m4", marks=pytest.mark.qemu)])
def test_run_returns_what_the_library_computes(tmp_path, target):
    target_or_skip(target)
    model = _fc_model(tmp_path)
    x = np.random.default_rng(6).integers(-128, 128, (3, 2, 20)).astype(np.int8)
    np.save(tmp_path / "x.npy", x)
    result = invoke("run", model, "-t", target, "--input", tmp_path / "x.npy", "-o", tmp_path / "y.npy")
    assert result.exit_code == 0, result.output
    assert "'y' [3, 2, 6]" in result.output
    got = np.load(tmp_path / "y.npy")
    expected = np.stack([run_reference(model.read_bytes(), [sample])[0] for sample in x])   # the TFLite interpreter
    assert got.dtype == np.int8 and np.array_equal(got, expected)


@pytest.mark.parametrize("target", ["x86_64", pytest.param("cortex-m4", marks=pytest.mark.qemu)])
def test_run_keeps_the_input_layout(tmp_path, model, target):
    target_or_skip(target)
    x = np.random.default_rng(7).integers(-128, 128, (2, 16, 16, 8)).astype(np.int8)   # 2 samples on the batch axis
    np.save(tmp_path / "x.npy", x)
    result = invoke("run", model, "-t", target, "--input", tmp_path / "x.npy", "-o", tmp_path / "y.npz")
    assert result.exit_code == 0, result.output
    with np.load(tmp_path / "y.npz") as y:
        got = y["output"]
    graph = load_model(model)
    expected = np.concatenate([run_graph(graph, {"input": x[i:i + 1]})["output"] for i in range(2)])
    assert got.shape == (2, 8, 8, 16) and np.array_equal(got, expected)


@pytest.mark.parametrize("case, fragments", [
    ("shape", ["input 'input' is [1, 16, 16, 8], the array is [16, 16, 4, 8]"]),
    ("keys", ["holds arrays ['images', 'labels']", "named input"]),
    ("strings", ["holds <U1 values, not numbers"]),
    ("range", ["values -300..299 are outside int8"]),
    ("nan", ["NaN or infinite"]),
    ("suffix", ["expected a .npy or .npz file"]),
    ("missing", ["no such file"]),
])
def test_bad_input_files(tmp_path, model, case, fragments):
    path = tmp_path / ("x.npz" if case == "keys" else "x.txt" if case == "suffix" else "x.npy")
    if case == "shape":
        np.save(path, np.zeros((16, 16, 4, 8), np.int8))
    elif case == "keys":
        np.savez(path, images=np.zeros((1, 16, 16, 8), np.int8), labels=np.zeros(1, np.int8))
    elif case == "strings":
        np.save(path, np.full((1, 16, 16, 8), "a"))
    elif case == "range":
        np.save(path, np.linspace(-300, 299, 2048).astype(np.int64).reshape(1, 16, 16, 8))
    elif case == "nan":
        np.save(path, np.full((1, 16, 16, 8), np.nan, np.float32))
    elif case == "suffix":
        path.write_text("1 2 3")
    temp = tmp_path / "tmp"
    with Untouched(tmp_path, temp=temp):
        for command in (["verify", model, "-t", "x86_64", "--input", path],
                        ["run", model, "-t", "x86_64", "--input", path, "-o", tmp_path / "y.npy"]):
            assert_refused(invoke(*command), *fragments)


def test_input_and_random_inputs_are_exclusive(tmp_path, model):
    np.save(tmp_path / "x.npy", np.zeros((1, 16, 16, 8), np.int8))
    assert_refused(invoke("verify", model, "-t", "x86_64", "--input", tmp_path / "x.npy", "--inputs", "5"),
                   "use one or the other")


def test_run_output_must_be_npy_or_npz(tmp_path, model):
    np.save(tmp_path / "x.npy", np.zeros((1, 16, 16, 8), np.int8))
    assert_refused(invoke("run", model, "-t", "x86_64", "--input", tmp_path / "x.npy", "-o", tmp_path / "y.csv"),
                   "-o", "expected a .npy or .npz file name")
    assert not (tmp_path / "y.csv").exists()

