"""Generate, build, run on the target, and compare with the NumPy reference.

On a mismatch the harness is rebuilt with per-layer tracing and the first layer that differs from
the reference is named, so a wrong kernel is found without a debugger.
"""
from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from .backends import Library, generate_library
from .backends.c_layout import layout_c
from .backends.render import C_TYPES, render
from .compare import Comparison, compare
from .errors import DwsError
from .footprint import Footprint, check_fit, measure
from .ir import DTYPES, Graph
from .reference.graph import run_graph
from .runner import RunResult
from .targets import Target
from .toolchain import compile_program

HOOK = "dws_layer_hook"


ORACLES = ("auto", "numpy", "tflite", "onnxruntime")
ORACLE_SUFFIX = {"tflite": ".tflite", "onnxruntime": ".onnx"}
ORACLE_LABELS = {"numpy": "NumPy reference", "tflite": "TFLite interpreter (BUILTIN_REF reference kernels)",
                 "onnxruntime": "onnxruntime (CPU, graph optimizations off)"}


def _installed(oracle: str) -> bool:
    from .oracles import onnxruntime_session, tflite_interpreter
    return {"tflite": tflite_interpreter, "onnxruntime": onnxruntime_session}[oracle].available()


def choose_oracle(graph: Graph, oracle: str) -> str:
    """auto: the model's own framework when it came from one (and is installed), else the NumPy reference."""
    suffix = Path(graph.source).suffix.lower()
    if oracle == "auto":
        own = next((o for o, s in ORACLE_SUFFIX.items() if s == suffix), None)
        if own == "tflite" and _installed(own):
            from .oracles.tflite_interpreter import custom_ops
            own = None if custom_ops(Path(graph.source)) else own    # the interpreter cannot run them
        return own if own and _installed(own) else "numpy"
    if oracle in ORACLE_SUFFIX and suffix != ORACLE_SUFFIX[oracle]:
        raise DwsError(f"the {oracle} oracle runs {ORACLE_SUFFIX[oracle]} models, not '{graph.source}'")
    return oracle


def oracle_values(graph: Graph, oracle: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return oracle_batch(graph, oracle, [inputs])[0]


def oracle_batch(graph: Graph, oracle: str, input_sets: list[dict[str, np.ndarray]]) -> list[dict[str, np.ndarray]]:
    """The oracle's tensors for each input set. A framework's (one child process for the batch) may
    carry `notes` (oracles.isolation.OracleValues): what did not come from the labelled oracle."""
    if oracle == "tflite":
        from .oracles.tflite_interpreter import run_tflite_batch
        return run_tflite_batch(Path(graph.source), graph, input_sets)
    if oracle == "onnxruntime":
        from .oracles.onnxruntime_session import run_onnxruntime_batch
        return run_onnxruntime_batch(Path(graph.source), graph, input_sets)
    return [run_graph(graph, inputs) for inputs in input_sets]


QDQ_NOTE = ("onnxruntime runs a QDQ model as written, as float ops between DequantizeLinear and QuantizeLinear: its "
            "float32 sums and interpolations round otherwise than exact integer kernels, so int8 outputs are compared "
            "within 1 LSB (and a float output of DequantizeLinear within that LSB's value)")


def qdq_tolerance(graph: Graph, oracle: str) -> int:
    """1 LSB for the int8 outputs of an ONNX QDQ model checked against onnxruntime, else 0 (bit-exact)."""
    return int(oracle == "onnxruntime" and any(graph.op_dtype(op) == "int8" for op in graph.ops))


def dequantized_tolerances(graph: Graph, lsb: int) -> dict[str, float]:
    """What `lsb` int8 steps become in each float32 tensor a Dequantize makes (a QDQ model's float output): the
    step of the int8 input's scale. Tensors not listed compare with no float slack."""
    if not lsb:
        return {}
    return {op.outputs[0]: lsb * float(np.max(graph.tensor(op.inputs[0]).quant.scale))
            for op in graph.ops if op.type == "Dequantize"}


@dataclass
class VerifyReport:
    graph: str
    target: str
    backend: str
    runs: int
    oracle: str
    comparisons: list[Comparison]
    first_bad_layer: str | None = None
    layer_instructions: list[int] | None = None      # per layer, first run (Cortex-M only)
    row_fused: dict[int, int] = field(default_factory=dict)   # fused op -> the chain's last op, whose count includes it
    footprint: Footprint | None = None
    fit_problems: list[str] = field(default_factory=list)
    layers: list[tuple] = field(default_factory=list)     # (op, Comparison) when layers were checked
    ns_per_run: int | None = None                         # median wall time per run (timing_repeats)
    oracle_notes: list[str] = field(default_factory=list)  # what the oracle computed otherwise than labelled
    top1: dict[str, tuple[int, int]] = field(default_factory=dict)   # classifier output -> (agree, runs)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.comparisons)


def random_inputs(graph: Graph, seed: int, runs: int) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    sets = []
    for _ in range(runs):
        inputs = {}
        for name in graph.inputs:
            t = graph.tensor(name)
            if t.dtype == "int8":
                inputs[name] = rng.integers(-128, 128, size=t.shape, dtype=np.int8)
            else:
                inputs[name] = rng.normal(0.0, 1.0, size=t.shape).astype(np.float32)
        sets.append(inputs)
    return sets


def is_classifier_output(tensor) -> bool:
    """[N, K] scores with K >= 2 classes (a classifier's logits or softmax): top-1 is what its user reads."""
    return len(tensor.shape) == 2 and tensor.shape[1] >= 2


def top1_agreement(got: np.ndarray, expected: np.ndarray) -> tuple[int, int]:
    """(rows whose arg-max class agrees, rows) over runs x N rows of [runs, N, K] scores; ties take the
    first class on both sides."""
    k = got.shape[-1]
    agree = np.argmax(got.reshape(-1, k), axis=1) == np.argmax(expected.reshape(-1, k), axis=1)
    return int(agree.sum()), int(agree.size)


def write_harness(graph: Graph, lib: Library, build_dir: Path) -> list[Path]:
    """Library files plus the harness main.c in build_dir; returns the C sources to compile."""
    for name, text in lib.files.items():
        (build_dir / name).write_text(text)
    tensors = [graph.tensor(n) for n in graph.inputs], [graph.tensor(n) for n in graph.outputs]
    args = [f"in{i}" for i in range(len(graph.inputs))] + [f"out{i}" for i in range(len(graph.outputs))]
    typed = [[dict(size=t.size, ctype=C_TYPES[t.dtype]) for t in group] for group in tensors]
    main = layout_c(render("harness/main.c.j2", name=graph.name, inputs=typed[0], outputs=typed[1],
                           args=", ".join(args)))
    (build_dir / "harness_main.c").write_text(main)
    return [build_dir / f"{graph.name}.c", build_dir / "harness_main.c"]


def run_program(target: Target, exe: Path, args: list[str], cwd: Path, timeout: float,
                count_marker: str | None = None) -> RunResult:
    if target.runner == "qemu":
        from .runner.qemu import run_qemu
        return run_qemu(exe, target, args, cwd, timeout, count_marker=count_marker)
    from .runner.native import run_native
    return run_native(exe, args, cwd, timeout, target=target)


def _run_checked(target: Target, exe: Path, runs: int, cwd: Path, timeout: float, count: bool) -> RunResult:
    result = run_program(target, exe, [str(runs)], cwd, timeout, count_marker=HOOK if count else None)
    if result.returncode != 0:
        output = (result.stderr + result.stdout).strip()[-2000:]
        raise DwsError(f"the generated program failed on {target.name} (exit code {result.returncode}): {output}")
    return result


def _read(path: Path, tensor) -> np.ndarray:
    data = np.fromfile(path, dtype=DTYPES[tensor.dtype])
    if data.size != tensor.size:
        raise DwsError(f"{path.name}: expected {tensor.size} values of '{tensor.name}', got {data.size}")
    return data.reshape(tensor.shape)


def _execute(graph: Graph, target: Target, exe: Path, work: Path, input_sets: list[dict], timeout: float,
             count: bool) -> tuple[list[dict[str, np.ndarray]], RunResult]:
    """Run the built harness on input_sets in work; the outputs of each run, and the run's result."""
    for r, inputs in enumerate(input_sets):
        for i, name in enumerate(graph.inputs):
            np.ascontiguousarray(inputs[name], dtype=DTYPES[graph.tensor(name).dtype]).tofile(work / f"in_{r}_{i}.bin")
    result = _run_checked(target, exe, len(input_sets), work, timeout, count=count)
    outputs = [{name: _read(work / f"out_{r}_{i}.bin", graph.tensor(name)) for i, name in enumerate(graph.outputs)}
               for r in range(len(input_sets))]
    return outputs, result


def _running(target: Target, runs: int) -> str:
    return f"running {runs} input(s) on {target.name}" + (" under QEMU" if target.runner == "qemu" else "")


def _layer_counts(graph: Graph, result: RunResult, lib) -> list[int] | None:
    """Executed instructions per op of the first run, from the one marker per library call. A row-fused producer
    has no call of its own (it runs inside the row pipeline of its chain's last op): it counts 0, and the chain's
    instructions are its last op's (row_fused_into says which)."""
    if not result.marker_counts:
        return None
    inside = row_fused_into(lib)
    marks = result.marker_counts[:len(graph.ops) - len(inside) + 1]
    per_call = iter([b - a for a, b in zip(marks, marks[1:])])
    return [0 if op.index in inside else next(per_call, 0) for op in graph.ops]


def row_fused_into(lib) -> dict[int, int]:
    """op index of each row-fused op but a chain's last -> the last op, whose call runs it (the library's plan)."""
    return {i: f.consumer for f in lib.plan.fusions for i in f.ops[:-1]}


def run_library(graph: Graph, target: Target, input_sets: list[dict[str, np.ndarray]], backend: str = "templates",
                schedules: dict[int, dict] | None = None, timeout: float = 120.0,
                progress: Callable[[str | None], None] | None = None
                ) -> tuple[list[dict], list[int] | None, dict[int, int]]:
    """What the generated library computes on input_sets (natively or under QEMU): the outputs of each
    run, the executed instructions per layer of the first run (QEMU only, else None), and the row-fused
    producers whose instructions their consumer's count holds (row_fused_into)."""
    stage = progress or (lambda label: None)
    stage(f"generating C ({backend} backend, {len(graph.ops)} layers)")
    lib = generate_library(graph, target, backend, schedules)
    with tempfile.TemporaryDirectory(prefix="dwscodegen-run-") as tmp:
        work = Path(tmp)
        sources = write_harness(graph, lib, work)
        stage(f"compiling the library and its harness for {target.name}")
        exe = compile_program(target, sources, [work], work / "harness", defines={"DWS_LAYER_HOOK": HOOK})
        stage(_running(target, len(input_sets)))
        outputs, result = _execute(graph, target, exe, work, input_sets, timeout, count=target.runner == "qemu")
    stage(None)
    return outputs, _layer_counts(graph, result, lib), row_fused_into(lib)


def verify_graph(graph: Graph, target: Target, backend: str = "templates", runs: int = 3, seed: int = 0,
                 timeout: float = 120.0, build_dir: Path | None = None, oracle: str = "auto",
                 check_layers: bool = False, schedules: dict[int, dict] | None = None,
                 timing_repeats: int = 0, footprint: bool = True,
                 progress: Callable[[str | None], None] | None = None,
                 input_sets: list[dict[str, np.ndarray]] | None = None, flash: int | None = None,
                 ram: int | None = None, library: Library | None = None,
                 measured: Footprint | None = None) -> VerifyReport:
    """check_layers: also compare every intermediate layer output with the oracle (report.layers).
    schedules: op index -> schedule parameters for the backend. timing_repeats (native targets): also
    time that many runs of the first input and report the median nanoseconds per run. footprint: also
    compile the library alone to measure flash/RAM (the tuner, which only needs the cost, skips it) and
    check it against the part (flash / ram bytes; default the target file's).
    progress: called with the name of each stage as it starts (the CLI shows the long ones).
    input_sets: the inputs to check (the user's data, user_data.load_inputs) instead of `runs` seeded ones.
    report.oracle_notes: whatever the oracle did not compute as its label says (see oracles/).
    library, measured: the library of these schedules and its footprint where the caller has built and measured
    them already (the flash budget's choice, flash_budget.Mix), so that they are not built twice."""
    stage = progress or (lambda label: None)
    oracle = choose_oracle(graph, oracle)
    if target.runner == "native":
        from .runner.native import require_host_isa
        require_host_isa(target)     # before building: the binary could not run here
    input_sets = input_sets if input_sets is not None else random_inputs(graph, seed, runs)
    runs = len(input_sets)
    if library is None:
        stage(f"generating C ({backend} backend, {len(graph.ops)} layers)")
    lib = library if library is not None else generate_library(graph, target, backend, schedules)
    with tempfile.TemporaryDirectory(prefix="dwscodegen-verify-") as tmp:
        work = Path(build_dir or tmp)
        work.mkdir(parents=True, exist_ok=True)
        sources = write_harness(graph, lib, work)
        defines = {"DWS_LAYER_HOOK": HOOK}
        if timing_repeats and target.runner == "native":
            defines["DWS_TIMING"] = str(timing_repeats)
        stage(f"compiling the library and its harness for {target.name}")
        exe = compile_program(target, sources, [work], work / "harness", defines=defines)
        stage(_running(target, runs))
        outputs, result = _execute(graph, target, exe, work, input_sets, timeout, count=target.runner == "qemu")
        report = VerifyReport(graph=graph.name, target=target.name, backend=backend, runs=runs, oracle=oracle,
                              comparisons=[])
        if footprint:
            if measured is None:
                stage(f"measuring flash and RAM on {target.name}")
            report.footprint = measured if measured is not None else measure(lib, target)
            report.fit_problems = check_fit(report.footprint, target, flash, ram)
        timing = re.search(r"^dws_timing_ns (\d+)$", result.stdout, re.M)
        report.ns_per_run = int(timing.group(1)) if timing else None
        report.layer_instructions = _layer_counts(graph, result, lib)
        report.row_fused = row_fused_into(lib)
        stage(f"running the oracle ({ORACLE_LABELS[oracle]})")
        references = oracle_batch(graph, oracle, input_sets)
        report.oracle_notes = list(dict.fromkeys(n for ref in references for n in getattr(ref, "notes", [])))
        lsb = qdq_tolerance(graph, oracle)
        if lsb:
            report.oracle_notes.append(QDQ_NOTE)
        slack = dequantized_tolerances(graph, lsb)
        for name in graph.outputs:
            got = np.stack([out[name] for out in outputs])
            expected = np.stack([ref[name] for ref in references])
            report.comparisons.append(compare(name, got, expected, runs_axis=True, int_tolerance=lsb,
                                              float_tolerance=slack.get(name, 0.0)))
            if is_classifier_output(graph.tensor(name)):
                report.top1[name] = top1_agreement(got, expected)
        if check_layers or not report.ok:
            stage("rebuilding with per-layer tracing to compare every layer")
            report.layers = _layer_comparisons(graph, target, sources, work, runs, references, timeout, lsb, slack)
        if not report.ok:
            report.first_bad_layer = _first_bad_layer(report.layers, report.row_fused)
        stage(None)
        return report


def _layer_comparisons(graph: Graph, target: Target, sources: list[Path], work: Path, runs: int,
                       references: list[dict], timeout: float, lsb: int, slack: dict[str, float]) -> list[tuple]:
    """Rebuild with DWS_TRACE and compare every layer's output that the oracle kept: [(op, Comparison)], with
    the outputs' tolerances (lsb int8 steps; slack: dequantized_tolerances)."""
    exe = compile_program(target, sources, [work], work / "harness_trace",
                          defines={"DWS_LAYER_HOOK": HOOK, "DWS_TRACE": "1"})
    _run_checked(target, exe, runs, work, timeout, count=False)
    result = []
    for op in graph.ops:
        tensor = graph.tensor(op.outputs[0])
        if any(tensor.name not in ref for ref in references):
            continue   # the oracle did not keep this tensor
        if not (work / f"trace_0_{op.index}.bin").exists():
            continue   # row-fused into a later layer (row_fusion.py): its output is never stored whole
        got = np.stack([_read(work / f"trace_{r}_{op.index}.bin", tensor) for r in range(runs)])
        expected = np.stack([ref[tensor.name] for ref in references])
        result.append((op, compare(tensor.name, got, expected, runs_axis=True, int_tolerance=lsb,
                                   float_tolerance=slack.get(tensor.name, 0.0))))
    return result


def _first_bad_layer(layers: list[tuple], row_fused: dict[int, int] | None = None) -> str:
    for op, c in layers:
        if not c.ok:
            # a row-fused chain has one output traced, its last op's: the difference may be in any of its ops
            inside = sorted(i for i, last in (row_fused or {}).items() if last == op.index)
            within = f" (ops {', '.join(map(str, inside))} run row-fused in its call, untraced)" if inside else ""
            return f"{op.where()} is the first layer that differs{within}: {c.summary()}"
    return "every layer output matches the reference; the difference is in how outputs are written"
