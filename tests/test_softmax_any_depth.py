"""int8 SOFTMAX at any depth and input scale, bit for bit as TFLite computes it.

TFLite's reference kernel (ai-edge-litert 2.3, BUILTIN_REF) aborts its process outside two limits
(reference/softmax.py): beta * input scale <= 2^-26 (in Prepare) and a row whose sum of exps reaches
2^28 (in Invoke: ~512 values within rounding of the maximum). Each case is a single-op .tflite
model run by the TFLite oracle (oracles/tflite_interpreter.py) in a child process: every row the
reference kernel computes comes from it, the others from TFLite's builtin kernel, and the oracle's
notes say which. Checked against it, bit-exactly:
1. the NumPy reference;
2. the C of both backends on x86_64 (verify with these inputs), and one case on cortex-m55.
The rows of a case are: uniform over int8, flat (all equal), narrow (within 8 of the maximum), one-hot.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from dwscodegen import qparams as qp
from dwscodegen.importers import load_model
from dwscodegen.reference import softmax
from dwscodegen.targets import load_target
from dwscodegen.verify import verify_graph
from .support.targets import target_or_skip

pytest.importorskip("ai_edge_litert")
from dwscodegen.oracles.tflite_interpreter import run_tflite  # noqa: E402
from .support.tflite_builder import TensorSpec, build_single_op_model  # noqa: E402


@dataclass(frozen=True)
class Case:
    depth: int
    scale: float
    beta: float
    rows: tuple            # row kinds
    builtin_rows: int      # rows TFLite's reference kernel cannot compute (from its builtin kernel)
    prepare: bool = False  # the reference kernel's Prepare rejects the op (every row is builtin)


CASES = {
    "10": Case(10, 0.1, 1.0, ("uniform", "flat", "narrow", "onehot"), 0),
    "1000": Case(1000, 0.1, 1.0, ("uniform", "flat", "narrow", "onehot"), 2),
    "1001-s0.5": Case(1001, 0.5, 1.0, ("uniform", "flat", "narrow", "onehot"), 1),
    "1000-s7.8e-9": Case(1000, 7.84e-9, 1.0, ("uniform", "flat"), 2, prepare=True),   # the zoo classifiers
    "10-s1e-9": Case(10, 1e-9, 1.0, ("uniform", "flat", "onehot"), 3, prepare=True),   # a right shift
    "10-s2^-26": Case(10, 2.0 ** -26, 1.0, ("uniform", "onehot"), 2, prepare=True),    # the limit itself
    "10-s40-b2": Case(10, 40.0, 2.0, ("uniform", "narrow", "onehot"), 0),             # multiplier capped
    "1-class": Case(1, 0.1, 1.0, ("uniform", "flat"), 0),
    "8193-wraps": Case(8193, 0.1, 1.0, ("flat", "uniform"), 0),          # the int32 sum wraps to 2^19
    "10000": Case(10000, 1.0, 1.0, ("uniform", "flat", "onehot"), 1),
}


def rows(case: Case, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = np.empty((len(case.rows), case.depth), dtype=np.int8)
    for r, kind in enumerate(case.rows):
        if kind == "uniform":
            x[r] = rng.integers(-128, 128, case.depth)
        elif kind == "flat":
            x[r] = rng.integers(-128, 128)
        elif kind == "narrow":
            x[r] = rng.integers(120, 128, case.depth)
        else:
            x[r] = -128
            x[r, rng.integers(case.depth)] = 127
    return x


def model_file(tmp_path, case: Case):
    shape = (len(case.rows), case.depth)
    path = tmp_path / "softmax.tflite"
    path.write_bytes(build_single_op_model(
        "SOFTMAX", [TensorSpec("x", shape, "int8", scale=case.scale, zero_point=0)],
        [TensorSpec("y", shape, "int8", scale=softmax.OUTPUT_SCALE, zero_point=softmax.OUTPUT_ZERO_POINT)],
        {"beta": case.beta}))
    return path


def check_notes(notes: list[str], case: Case, sets: int = 1) -> None:
    """The oracle says exactly which rows (of all input sets) are not the reference kernel's, and why."""
    if not case.builtin_rows:
        assert notes == []
        return
    n, total = case.builtin_rows * sets, len(case.rows) * sets
    which = "all its rows" if n == total else f"{n} of its {total} rows"
    assert any(f"cannot compute {which}" in n and "BUILTIN_WITHOUT_DEFAULT_DELEGATES" in n for n in notes), notes
    assert any("2^-26" in n for n in notes) == case.prepare, notes
    if not case.prepare:            # the whole model's run really aborted first, in the child
        assert "killed by SIGABRT in invoke" in notes[0], notes


@pytest.mark.parametrize("name", list(CASES))
def test_numpy_softmax_matches_tflite(tmp_path, name):
    case = CASES[name]
    path = model_file(tmp_path, case)
    x = rows(case, seed=len(name))
    oracle = run_tflite(path, load_model(path), {"x": x})
    check_notes(oracle.notes, case)
    got = softmax.softmax_int8(x, qp.softmax_params(case.scale, case.beta))
    np.testing.assert_array_equal(got, oracle["y"])
    reason, beyond = softmax.tflite_reference_rejects(x, case.scale, case.beta)
    assert bool(reason) == case.prepare and int(beyond.sum()) == case.builtin_rows


def test_reference_kernel_values_past_the_int32_sum():
    """8193 equal values: TFLite's sum wraps to 2^19, and its answer (127 everywhere) is reproduced."""
    x = rows(CASES["8193-wraps"], seed=1)[:1]
    assert (softmax.softmax_int8(x, qp.softmax_params(0.1, 1.0)) == 127).all()


BACKENDS = ["templates", pytest.param("tvm", marks=pytest.mark.tvm)]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", list(CASES))
def test_c_softmax_matches_tflite_on_x86(tmp_path, name, backend):
    if backend == "tvm":
        pytest.importorskip("tvm")
    case = CASES[name]
    path = model_file(tmp_path, case)
    inputs = [{"x": rows(case, seed)} for seed in (len(name), 100 + len(name))]
    report = verify_graph(load_model(path), load_target("x86_64"), backend=backend, oracle="tflite", inputs=inputs,
                          footprint=False)
    assert report.ok, [c.summary() for c in report.comparisons]
    check_notes(report.oracle_notes, case, sets=2)


@pytest.mark.qemu
def test_c_softmax_matches_tflite_on_cortex_m55(tmp_path):
    case = CASES["1000"]
    target = target_or_skip("cortex-m55")
    path = model_file(tmp_path, case)
    report = verify_graph(load_model(path), target, oracle="tflite", inputs=[{"x": rows(case, 4)}])
    assert report.ok, [c.summary() for c in report.comparisons]
    check_notes(report.oracle_notes, case)
