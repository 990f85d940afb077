"""Shared pieces of the x86 layer benchmark: methods, timing by batches, output checks, layer constants."""
from __future__ import annotations

import gc
import math
import statistics
import time

import numpy as np
from dwscodegen.ir import Graph, Op

DEFAULT_MODEL = "../shared/models/kws_ref_model_float32.tflite"   # the read-only data beside a checkout; skipped when absent
BATCHES = 7                     # the harness's fixed number of batches (templates/harness/main.c.j2)
METHODS = ("templates", "tvm", "onnxruntime", "tvm-llvm")
LABELS = {"templates": "dwscodegen C, templates", "tvm": "dwscodegen C, tvm backend",
          "onnxruntime": "onnxruntime", "tvm-llvm": "TVM LLVM"}


MIN_RUNS, MAX_RUNS = 10, 20_000_000


class NotAvailable(Exception):
    """This method cannot run this layer; the message says why (shown as n/a in the table)."""


def runs_for(estimate_ns: float, batch_ms: float, fixed: int | None) -> int:
    if fixed:
        return fixed
    return int(min(max(math.ceil(batch_ms * 1e6 / max(estimate_ns, 1.0)), MIN_RUNS), MAX_RUNS))


def timed_batches(call, runs: int, batches: int = BATCHES) -> float:
    """Median ns per call over `batches` batches of `runs` calls (garbage collector off)."""
    per_run = []
    gc_was = gc.isenabled()
    gc.disable()
    try:
        for _ in range(batches):
            start = time.perf_counter_ns()
            for _ in range(runs):
                call()
            per_run.append((time.perf_counter_ns() - start) / runs)
    finally:
        if gc_was:
            gc.enable()
    return statistics.median(per_run)


def estimate_ns(call, warmup: int = 10, min_ms: float = 5.0) -> float:
    """Warm up, then a rough ns per call from a loop of at least min_ms."""
    for _ in range(warmup):
        call()
    runs, start = 0, time.perf_counter_ns()
    while True:
        call()
        runs += 1
        elapsed = time.perf_counter_ns() - start
        if elapsed >= min_ms * 1e6:
            return elapsed / runs


def check_close(got: np.ndarray, want: np.ndarray, rel: float) -> tuple[bool, float]:
    """(ok, max abs error) with a tolerance of rel * max|want| (at least rel)."""
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    if got.shape != want.shape:
        return False, float("inf")
    err = float(np.max(np.abs(got - want))) if got.size else 0.0
    return err <= rel * max(float(np.max(np.abs(want))), 1.0), err


def dequantized_filter(graph: Graph, op: Op) -> np.ndarray:
    """Float filter of a conv: the int8 filter of a hybrid conv dequantized, scale * (q - zero_point)."""
    w = graph.tensor(op.inputs[1])
    if w.dtype == "float32":
        return np.asarray(w.data, np.float32)
    q = w.quant
    shape = [1] * len(w.shape)
    if q.axis is not None:
        shape[q.axis] = -1
    scale = np.asarray(q.scale, np.float64).reshape(shape)
    zero = np.asarray(q.zero_point, np.float64).reshape(shape)
    return (scale * (w.data.astype(np.float64) - zero)).astype(np.float32)


def bias_of(graph: Graph, op: Op, channels: int) -> np.ndarray:
    if len(op.inputs) > 2:
        return np.asarray(graph.tensor(op.inputs[2]).data, np.float32)
    return np.zeros(channels, np.float32)


def one_line(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def fmt_ns(ns: float | None) -> str:
    return "n/a" if ns is None else f"{ns:,.0f}"
