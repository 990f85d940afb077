"""The framework oracles run in a child process (oracles/isolation.py): a crash of the framework is a
clear DwsError, an int8 SOFTMAX that TFLite's reference kernel cannot run is computed by TFLite's
builtin kernel and reported, and nothing (child process, temporary folder) outlives a call, even an
interrupted one. Every model is built here (tests/support/tflite_builder.py); nothing needs ../shared.
"""
from __future__ import annotations

import json
import os
import signal
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from dwscodegen import qparams as qp
from dwscodegen.cli import main
from dwscodegen.errors import DwsError
from dwscodegen.importers import load_model

pytest.importorskip("ai_edge_litert")
from dwscodegen.oracles import isolation  # noqa: E402
from dwscodegen.oracles.tflite_interpreter import run_tflite  # noqa: E402
from .support.tflite_builder import TensorSpec, build_single_op_model  # noqa: E402

WORKER = b"dwscodegen.oracles.worker"


@pytest.fixture
def own_tmp(tmp_path, monkeypatch):
    """A temporary directory of this test's own for the oracle's folders (others may share /tmp)."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    return tmp


def worker_children() -> list[int]:
    """Pids of this process's oracle worker children that still exist (zombies included)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (entry / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue
        if ppid == os.getpid() and WORKER in cmdline:
            pids.append(int(entry.name))
    return pids


def add_model(tmp_path: Path, scale_a: float) -> Path:
    ins = [TensorSpec("a", (1, 4), "int8", scale=scale_a, zero_point=0),
           TensorSpec("b", (1, 4), "int8", scale=0.1, zero_point=0)]
    path = tmp_path / f"add_{scale_a:g}.tflite"
    path.write_bytes(build_single_op_model("ADD", ins, [TensorSpec("y", (1, 4), "int8", scale=0.1, zero_point=0)], {}))
    return path


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_crashing_oracle_is_a_clear_error(tmp_path, own_tmp):
    """ADD with an input scale of 0: the reference kernel's Prepare aborts (QuantizeMultiplier's
    TFLITE_CHECK) -- a real SIGABRT of the child, which the importer would have refused to load, so
    the graph is the same model with a valid scale."""
    graph = load_model(add_model(tmp_path, 0.1))
    inputs = {"a": np.zeros((1, 4), np.int8), "b": np.ones((1, 4), np.int8)}
    assert run_tflite(add_model(tmp_path, 0.1), graph, inputs)["y"].shape == (1, 4)
    with pytest.raises(DwsError) as info:
        run_tflite(add_model(tmp_path, 0.0), graph, inputs)
    message = str(info.value)
    for part in ("add_0.tflite", "crashed", "killed by SIGABRT", "allocate_tensors", "Prepare", "--oracle numpy"):
        assert part in message, message
    assert list(own_tmp.iterdir()) == [] and worker_children() == []


def test_unreadable_model_is_an_error(tmp_path, own_tmp):
    graph = load_model(add_model(tmp_path, 0.1))
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"\0\0\0\0TFL3" + b"\xff" * 64)
    with pytest.raises(DwsError, match="bad.tflite"):
        run_tflite(bad, graph, {"a": np.zeros((1, 4), np.int8), "b": np.zeros((1, 4), np.int8)})
    assert list(own_tmp.iterdir()) == []


def softmax_model(tmp_path: Path, shape, scale: float) -> Path:
    path = tmp_path / "softmax.tflite"
    path.write_bytes(build_single_op_model("SOFTMAX", [TensorSpec("x", shape, "int8", scale=scale, zero_point=0)],
                                           [TensorSpec("y", shape, "int8", scale=1 / 256, zero_point=-128)], {}))
    return path


def test_rejected_softmax_is_run_on_the_builtin_kernel_and_reported(tmp_path, own_tmp):
    """A row of 1000 equal values: the whole model really aborts in the child's invoke; run again
    without it, the row comes from TFLite's builtin kernel, the other from the reference kernel."""
    path = softmax_model(tmp_path, (2, 1000), 0.1)
    x = np.random.default_rng(3).integers(-128, 128, (2, 1000)).astype(np.int8)
    x[1] = 9
    values = run_tflite(path, load_model(path), {"x": x})
    first, note = values.notes
    assert "killed by SIGABRT in invoke" in first and "run again with its int8 SOFTMAX ops separately" in first
    assert "SOFTMAX op 0 ('y', depth 1000)" in note and "1 of its 2 rows" in note and "2^28" in note
    assert (values["y"][1] == -128).all() and values["y"][0].max() > -128
    assert list(own_tmp.iterdir()) == [] and worker_children() == []


def test_verify_says_which_oracle_computed_what(tmp_path):
    """The zoo classifiers' case: a logits scale below 2^-26, rejected by the reference kernel's Prepare."""
    path = softmax_model(tmp_path, (1, 1000), 7.84e-9)
    result = CliRunner().invoke(main, ["verify", str(path), "-t", "x86_64", "--inputs", "2",
                                       "--json", str(tmp_path / "report.json")])
    assert result.exit_code == 0, result.output
    assert "oracle: TFLite interpreter (BUILTIN_REF reference kernels)" in result.output
    assert "NOTE on the oracle: SOFTMAX op 0 ('y', depth 1000): TFLite's reference kernel cannot compute all its " \
           "rows (beta * input scale * 2^26 = 0.5261 <= 1" in result.output
    assert "PASS (against TFLite interpreter (BUILTIN_REF reference kernels), except as the 1 note(s)" in result.output
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["oracle"] == "tflite" and len(report["oracle_notes"]) == 1


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def slow_conv_model(tmp_path: Path, rng) -> Path:
    """A float CONV_2D of 5 GMAC: many seconds on the reference kernels."""
    n = 512
    x = TensorSpec("x", (1, n, n, 64), "float32")
    w = TensorSpec("w", (64, 3, 3, 64), "float32", data=rng.normal(0, 0.1, (64, 3, 3, 64)).astype(np.float32))
    b = TensorSpec("b", (64,), "float32", data=np.zeros(64, np.float32))
    path = tmp_path / "conv.tflite"
    path.write_bytes(build_single_op_model("CONV_2D", [x, w, b], [TensorSpec("y", (1, n, n, 64), "float32")],
                                           {"padding": "SAME"}))
    return path


def test_oracle_that_does_not_finish_is_a_clear_error(tmp_path, own_tmp, monkeypatch):
    """A framework that never returns (here: a slow model under a 2 s limit) ends in an error naming the
    limit and what to do, with the child killed and its folder gone, instead of a verify that never ends."""
    rng = np.random.default_rng(0)
    path = slow_conv_model(tmp_path, rng)
    graph = load_model(path)
    monkeypatch.setattr(isolation, "ORACLE_TIMEOUT_SECONDS", 2)
    start = time.monotonic()
    with pytest.raises(DwsError) as info:
        run_tflite(path, graph, {"x": rng.normal(0, 1, (1, 512, 512, 64)).astype(np.float32)})
    assert time.monotonic() - start < 30
    message = str(info.value)
    for part in ("did not finish within 2 s", "--oracle numpy", "--inputs"):
        assert part in message, message
    assert worker_children() == [] and list(own_tmp.iterdir()) == []


def test_interrupt_leaves_no_child_and_no_folder(tmp_path, own_tmp):
    """Ctrl-C (a real SIGINT to this process) while the child is inside invoke of a slow model (a
    float CONV_2D of 5 GMAC on the reference kernels): KeyboardInterrupt, the child killed and
    reaped, its folder gone."""
    rng = np.random.default_rng(0)
    n = 512
    path = slow_conv_model(tmp_path, rng)
    graph = load_model(path)
    seen = []

    def interrupt_inside_invoke():
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            progress = list(own_tmp.glob("dwscodegen-oracle-*/progress"))
            if progress and "invoke" in progress[0].read_text():
                seen.extend(worker_children())
                os.kill(os.getpid(), signal.SIGINT)
                return
            time.sleep(0.02)

    thread = threading.Thread(target=interrupt_inside_invoke, daemon=True)
    thread.start()
    start = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        run_tflite(path, graph, {"x": rng.normal(0, 1, (1, n, n, 64)).astype(np.float32)})
    thread.join()
    assert len(seen) == 1, "the child was not seen inside invoke"
    assert time.monotonic() - start < 30
    assert not Path(f"/proc/{seen[0]}").exists()
    assert worker_children() == [] and list(own_tmp.iterdir()) == []


def chained_model(path: Path) -> None:
    """x -SOFTMAX-> y (scale 1e-9: rejected by the reference kernel's Prepare), then y -QUANTIZE-> z
    (so y must be fed back to the reference kernels) and y -SOFTMAX-> w (a SOFTMAX reading another)."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    def tensor(name, scale, zero_point):
        t = schema.TensorT()
        t.name, t.shape, t.type, t.buffer = name, np.array([2, 10], np.int32), schema.TensorType.INT8, 0
        t.quantization = schema.QuantizationParametersT()
        t.quantization.scale, t.quantization.zeroPoint = [scale], [zero_point]
        return t

    def code(builtin, version):
        c = schema.OperatorCodeT()
        c.builtinCode, c.deprecatedBuiltinCode, c.version = builtin, min(builtin, 127), version
        return c

    def op(opcode, inputs, outputs):
        o = schema.OperatorT()
        o.opcodeIndex, o.inputs, o.outputs = opcode, inputs, outputs
        if opcode == 0:
            o.builtinOptionsType = schema.BuiltinOptions.SoftmaxOptions
            o.builtinOptions = schema.SoftmaxOptionsT()
            o.builtinOptions.beta = 1.0
        return o

    sg = schema.SubGraphT()
    sg.tensors = [tensor("x", 1e-9, 0), tensor("y", 1 / 256, -128), tensor("z", 1 / 128, 0), tensor("w", 1 / 256, -128)]
    sg.inputs, sg.outputs = [0], [2, 3]
    sg.operators = [op(0, [0], [1]), op(1, [1], [2]), op(0, [1], [3])]
    m = schema.ModelT()
    m.version, m.subgraphs, m.buffers = 3, [sg], [schema.BufferT()]
    m.operatorCodes = [code(schema.BuiltinOperator.SOFTMAX, 2), code(schema.BuiltinOperator.QUANTIZE, 1)]
    builder = flatbuffers.Builder(1024)
    builder.Finish(m.Pack(builder), file_identifier=b"TFL3")
    path.write_bytes(bytes(builder.Output()))


def test_softmax_outputs_read_by_other_ops_are_fed_back(tmp_path, own_tmp):
    from dwscodegen.oracles.tflite_interpreter import run_tflite_file
    from dwscodegen.reference import softmax
    from .support.tflite_builder import run_reference

    path = tmp_path / "chain.tflite"
    chained_model(path)
    x = np.random.default_rng(5).integers(-128, 128, (2, 10)).astype(np.int8)
    (values,) = run_tflite_file(path, [{"x": x}], ["y", "z", "w"])
    assert len(values.notes) == 1 and "SOFTMAX op 0 ('y', depth 10)" in values.notes[0]
    np.testing.assert_array_equal(values["y"], softmax.softmax_int8(x, qp.softmax_params(1e-9, 1.0)))
    requantize = build_single_op_model("QUANTIZE", [TensorSpec("y", (2, 10), "int8", scale=1 / 256, zero_point=-128)],
                                       [TensorSpec("z", (2, 10), "int8", scale=1 / 128, zero_point=0)], {})
    (z,) = run_reference(requantize, [values["y"]])
    np.testing.assert_array_equal(values["z"], z)
    assert (values["y"] != 0).all()        # so z is not the requantized zeros the first round starts from
    second = build_single_op_model("SOFTMAX", [TensorSpec("y", (2, 10), "int8", scale=1 / 256, zero_point=-128)],
                                   [TensorSpec("w", (2, 10), "int8", scale=1 / 256, zero_point=-128)], {})
    (w,) = run_reference(second, [values["y"]])
    np.testing.assert_array_equal(values["w"], w)
    assert list(own_tmp.iterdir()) == []
