"""The framework oracles run in a child process (oracles/isolation.py): a crash of the framework is a
clear DwsError, and nothing (child process, temporary folder) outlives a call, even an interrupted
one. Every model is built here (tests/oracles/tflite_builder.py); nothing needs ../shared.
"""
from __future__ import annotations

import os
import signal
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from dwscodegen.errors import DwsError
from dwscodegen.importers import load_model

pytest.importorskip("ai_edge_litert")
from dwscodegen.oracles.tflite_interpreter import run_tflite  # noqa: E402
from oracles.tflite_builder import TensorSpec, build_single_op_model  # noqa: E402

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


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_interrupt_leaves_no_child_and_no_folder(tmp_path, own_tmp):
    """Ctrl-C (a real SIGINT to this process) while the child is inside invoke of a slow model (a
    float CONV_2D of 5 GMAC on the reference kernels): KeyboardInterrupt, the child killed and
    reaped, its folder gone."""
    rng = np.random.default_rng(0)
    n = 512
    x = TensorSpec("x", (1, n, n, 64), "float32")
    w = TensorSpec("w", (64, 3, 3, 64), "float32", data=rng.normal(0, 0.1, (64, 3, 3, 64)).astype(np.float32))
    b = TensorSpec("b", (64,), "float32", data=np.zeros(64, np.float32))
    path = tmp_path / "conv.tflite"
    path.write_bytes(build_single_op_model("CONV_2D", [x, w, b], [TensorSpec("y", (1, n, n, 64), "float32")],
                                           {"padding": "SAME"}))
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

