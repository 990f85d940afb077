"""Whole-model runners for benchmarks/x86_models.py: our generated library (a shared object called through
ctypes), the TFLite interpreter (XNNPACK, or its builtin kernels without a delegate) and onnxruntime, each
behind the same interface: prepare once (checking its output first), then `sample(runs)` -> (wall ns, CPU ns)
per call of a batch of `runs` calls."""
from __future__ import annotations

import ctypes
import dataclasses
import gc
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from dwscodegen.backends import generate_library
from dwscodegen.errors import DwsError
from dwscodegen.ir import DTYPES, Graph
from dwscodegen.toolchain import WARNING_FLAGS
from dwscodegen.verify import verify_graph

from .common import NotAvailable, one_line


def timed(call, runs: int) -> tuple[float, float]:
    """(wall, thread CPU) nanoseconds per call over one batch of `runs` calls, the garbage collector off.
    The CPU time leaves out the time this thread waited for a core, which a shared machine has plenty of."""
    was = gc.isenabled()
    gc.disable()
    try:
        wall, cpu = time.perf_counter_ns(), time.thread_time_ns()
        for _ in range(runs):
            call()
        return (time.perf_counter_ns() - wall) / runs, (time.thread_time_ns() - cpu) / runs
    finally:
        if was:
            gc.enable()


def _compile_shared(target, source: Path, out: Path) -> None:
    cmd = [target.cc, *WARNING_FLAGS, *target.cflags, "-fPIC", "-shared", str(source), "-o", str(out), "-lm"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise NotAvailable(f"compiling failed: $ {shlex.join(cmd)}: {one_line(proc.stderr)}")


def oracle_for(path: Path) -> tuple[str, str]:
    """(oracle, note) for verify_graph: the model's own framework, unless TFLite's BUILTIN_REF interpreter dies on
    the model (it aborts the process in allocate_tensors on some int8 models), found out in a child process."""
    if path.suffix.lower() != ".tflite":
        return "auto", ""
    probe = ("import sys; from ai_edge_litert.interpreter import Interpreter, OpResolverType; "
             "i = Interpreter(model_path=sys.argv[1], experimental_op_resolver_type=OpResolverType.BUILTIN_REF); "
             "i.allocate_tensors(); i.invoke()")
    proc = subprocess.run([sys.executable, "-c", probe, str(path)], capture_output=True, text=True)
    if proc.returncode == 0:
        return "auto", ""
    return "numpy", (f"TFLite's BUILTIN_REF interpreter fails on this model (exit {proc.returncode} in "
                     "allocate_tensors/invoke), so ours is checked against the NumPy reference instead")


class Ours:
    """The library generated for `target`, verified against `oracle` (verify_graph), then built as a shared
    object without the layer hook and called through ctypes with preallocated buffers. schedules: op index ->
    schedule (as verify_graph), e.g. {"kernel": "portable"} to time a layer's portable kernel."""

    def __init__(self, graph: Graph, target, inputs: dict, workdir: Path, backend: str = "templates",
                 oracle: str = "auto", schedules: dict[int, dict] | None = None):
        checked, what = graph, ""
        try:
            report = verify_graph(graph, target, backend=backend, runs=2, seed=3, footprint=False,
                                  build_dir=workdir / "verify", oracle=oracle, schedules=schedules)
        except DwsError as exc:
            raise NotAvailable(one_line(str(exc))) from None
        except ValueError as exc:
            # The NumPy reference refuses inputs TFLite's int8 softmax cannot compute (a row's sum of exps
            # reaching 2^28): check everything up to the final softmax, which runs the portable kernel.
            if graph.ops[-1].type != "Softmax":
                raise NotAvailable(f"the reference cannot run this model: {one_line(str(exc))}") from None
            checked = dataclasses.replace(graph, ops=graph.ops[:-1], outputs=[graph.ops[-1].inputs[0]])
            what = f" up to the final softmax (the reference refuses it: {one_line(str(exc), 120)})"
            report = verify_graph(checked, target, backend=backend, runs=2, seed=3, footprint=False,
                                  build_dir=workdir / "verify", oracle="numpy")
        errors = max(c.max_abs_err for c in report.comparisons)
        self.check = f"{'ok' if report.ok else 'MISMATCH'} vs {report.oracle}{what} (max abs err {errors:.3g})"
        if not report.ok:
            raise NotAvailable(f"wrong result: {self.check}")
        lib = generate_library(graph, target, backend, schedules)
        self.workdir = workdir          # the library's sources (layer_profile.py rebuilds them with a clock)
        workdir.mkdir(parents=True, exist_ok=True)
        for name, text in lib.files.items():
            (workdir / name).write_text(text)
        so = workdir / f"lib{graph.name}.so"
        _compile_shared(target, workdir / f"{graph.name}.c", so)
        self.lib = ctypes.CDLL(str(so))
        fn = getattr(self.lib, f"{graph.name}_run")
        self.buffers = [np.ascontiguousarray(inputs[n]) for n in graph.inputs]
        self.buffers += [np.zeros(graph.tensor(n).shape, DTYPES[graph.tensor(n).dtype]) for n in graph.outputs]
        fn.argtypes = [ctypes.c_void_p] * len(self.buffers)
        fn.restype = ctypes.c_int
        pointers = [b.ctypes.data for b in self.buffers]
        self.call = lambda: fn(*pointers)
        self.call()
        self.info = dict(check=self.check, arena_bytes=lib.arena_bytes, const_bytes=lib.const_bytes)

    def sample(self, runs: int) -> tuple[float, float]:
        return timed(self.call, runs)


class Tflite:
    """ai-edge-litert's interpreter, one thread: `delegate` True is the default op resolver (which applies the
    XNNPACK delegate), False is BUILTIN_WITHOUT_DEFAULT_DELEGATES (TFLite's own optimized kernels)."""

    def __init__(self, path: Path, graph: Graph, inputs: dict, delegate: bool):
        try:
            from ai_edge_litert.interpreter import Interpreter, OpResolverType
        except ImportError:
            raise NotAvailable("ai-edge-litert not installed") from None
        kwargs = dict(model_path=str(path), num_threads=1)
        if not delegate:
            kwargs["experimental_op_resolver_type"] = OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        self.interpreter = Interpreter(**kwargs)
        self.interpreter.allocate_tensors()
        details = {d["name"]: d for d in self.interpreter.get_input_details()}
        for name in graph.inputs:
            d = details[graph.origin.get(name, name)]
            self.interpreter.set_tensor(d["index"], inputs[name].reshape(d["shape"]).astype(d["dtype"]))
        self.call = self.interpreter.invoke
        self.call()
        self.info = dict(check="not checked (the reference is the interpreter's BUILTIN_REF kernels)")

    def sample(self, runs: int) -> tuple[float, float]:
        return timed(self.call, runs)


class OnnxRuntime:
    """onnxruntime on the .onnx file, CPU provider, 1 intra-op and 1 inter-op thread, all graph optimizations."""

    def __init__(self, path: Path, graph: Graph, inputs: dict):
        try:
            import onnxruntime as ort
        except ImportError:
            raise NotAvailable("onnxruntime not installed") from None
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        feeds = {}
        for name in graph.inputs:
            x = inputs[name]
            feeds[graph.origin.get(name, name)] = np.ascontiguousarray(x.transpose(0, 3, 1, 2) if x.ndim == 4 else x)
        run, self.feeds = self.session.run, feeds
        self.call = lambda: run(None, feeds)
        self.call()
        self.info = dict(check="not checked (onnxruntime is the oracle of .onnx models)")

    def sample(self, runs: int) -> tuple[float, float]:
        return timed(self.call, runs)


def ctypes_floor(target, workdir: Path) -> float:
    """Thread CPU ns of one ctypes call, with two pointer arguments, of a C function that does nothing: what
    every figure of ours includes besides the model."""
    workdir.mkdir(parents=True, exist_ok=True)
    source = workdir / "nothing.c"
    source.write_text("int dws_nothing(const void *a, void *b);\n"
                      "int dws_nothing(const void *a, void *b)\n{\n    (void)a;\n    (void)b;\n    return 0;\n}\n")
    _compile_shared(target, source, workdir / "libnothing.so")
    fn = ctypes.CDLL(str(workdir / "libnothing.so")).dws_nothing
    fn.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
    buffers = np.zeros(2, np.int8), np.zeros(2, np.int8)
    pointers = [b.ctypes.data for b in buffers]
    call = lambda: fn(*pointers)     # noqa: E731
    timed(call, 10000)
    return min(timed(call, 20000)[1] for _ in range(5))
