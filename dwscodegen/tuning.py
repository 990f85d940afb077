"""Per-layer schedule search: candidates are built, checked bit-exactly, measured, and recorded.

Cost on Cortex-M is QEMU's executed-instruction count of the layer (exact, repeatable); on native
targets the median wall time of repeated runs. A wrong candidate is logged as rejected and never
becomes a layer's best. Identical layers (same op, shapes, attributes) share one key and one search.
"""
from __future__ import annotations

import functools
import hashlib
import itertools
import json
import random
import subprocess
import time
from dataclasses import asdict, dataclass, is_dataclass
from pathlib import Path

from . import procs
from .errors import DwsError
from .importers import load_model
from .ir import Graph, Op
from .targets import Target, load_target
from .tuning_db import TuningDB, schedule_id
from .validate import validate

# Values searched per knob of each TVM kernel family (tvm_schedules validates the combinations).
# The portable C loop every tuned layer is compared with.
REFERENCE = "templates"
REFERENCE_SCHEDULE = {"kernel": "portable"}


def _plain(value):
    if is_dataclass(value):
        return _plain(asdict(value))
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def layer_key(graph: Graph, op: Op) -> str:
    """Identical for layers that would get identical code up to constant values."""
    shapes = [(graph.tensor(n).shape, graph.tensor(n).dtype, graph.tensor(n).is_const) for n in op.inputs]
    out = graph.tensor(op.outputs[0])
    text = json.dumps([op.type, shapes, out.shape, out.dtype, _plain(op.attrs)], sort_keys=True, default=str)
    return f"{op.type}-{hashlib.sha256(text.encode()).hexdigest()[:16]}"


def layer_graph(graph: Graph, op: Op) -> Graph:
    """The one-op graph of `op` with its real constants, to build and measure in isolation."""
    names = set(op.inputs) | set(op.outputs)
    single = Op(0, op.name, op.type, list(op.inputs), list(op.outputs), op.attrs)
    inputs = list(dict.fromkeys(n for n in op.inputs if not graph.tensor(n).is_const))
    return validate(Graph(name="layer", tensors={n: graph.tensor(n) for n in names}, ops=[single],
                          inputs=inputs, outputs=list(op.outputs), source=graph.source))


def candidates(graph: Graph, op: Op, backend: str, trials: int, seed: int = 0, target: Target | None = None) -> list[dict]:
    """The default schedule first, then a seeded sample of the valid space (templates: every kernel variant
    of the registry that applies on the target, the portable loop included, the default's own variant left out
    as it is the default schedule; tvm: the knobs of the layer's kernel on the
    target, its tensorized kernel where it has one)."""
    if backend == "templates":
        # the registry's variants that apply (tiles, int8 / int16 weights, ...), less the default's own: {} is it
        from .backends.templates import kernel_choices, kernel_used
        choices = kernel_choices(graph, op, target) if target is not None else []
        default = kernel_used(graph, op, target) if target is not None else None
        return ([{}] + [{"kernel": k} for k in choices if k != default])[:max(trials, 1)]
    from .backends.tvm import schedule_kind
    from .backends.tvm.knobs import resolve, searched
    kind = schedule_kind(graph, op, target or load_target("x86_64"))
    space = searched(kind, graph.op_dtype(op))
    if not space:
        return [{}]
    valid = []
    for values in itertools.product(*space.values()):
        schedule = dict(zip(space, values))
        try:
            resolve(kind, op.where(), schedule)
        except DwsError:
            continue
        valid.append(schedule)
    random.Random(seed).shuffle(valid)
    return [{}] + valid[:max(trials - 1, 0)]


@functools.lru_cache(maxsize=4)
def _model(path: str) -> Graph:
    return load_model(path)


def toolchain_versions(target: Target) -> dict:
    versions = {}
    for tool in [target.cc] + (["qemu-system-arm"] if target.runner == "qemu" else []):
        try:
            first = procs.run([tool, "--version"], timeout=30).stdout
            versions[tool] = first.splitlines()[0] if first else "?"
        except (OSError, subprocess.SubprocessError):
            versions[tool] = "unavailable"
    return versions


def graph_hash(graph: Graph) -> str:
    """What the model computes, not what it is called: ops, attributes, shapes, quantization and constants
    (tensor and op names left out, since exporters rename them). Tuning records carry it."""
    h = hashlib.sha256()
    for op in graph.ops:
        h.update(json.dumps([op.type, _plain(op.attrs)], sort_keys=True, default=str).encode())
        for name in [*op.inputs, *op.outputs]:
            t = graph.tensor(name)
            q = None if t.quant is None else [t.quant.scale.tolist(), t.quant.zero_point.tolist(), t.quant.axis]
            h.update(json.dumps([t.shape, t.dtype, q, t.is_const]).encode())
            if t.is_const:
                h.update(t.data.tobytes())
    return h.hexdigest()[:16]


@dataclass(frozen=True)
class Job:
    model: str
    op_index: int
    target: str
    backend: str
    schedule: dict
    tuned_for: str | None = None     # the backend `tune` searched (None: `backend`); reference runs differ


def measure(job: Job) -> dict:
    """Build, verify and measure one candidate; runs in a worker process or on a dask worker."""
    from .verify import verify_graph
    graph = _model(job.model)
    op = graph.ops[job.op_index]
    target = load_target(job.target)
    record = dict(key=layer_key(graph, op), op=op.where(), target=job.target, backend=job.backend,
                  tuned_for=job.tuned_for or job.backend, model=Path(job.model).name, model_hash=graph_hash(graph),
                  schedule=job.schedule, toolchain=toolchain_versions(target), time=time.time())
    try:
        report = verify_graph(layer_graph(graph, op), target, job.backend, runs=1, seed=0, oracle="numpy",
                              schedules={0: job.schedule} if job.schedule else None,
                              timing_repeats=50 if target.runner == "native" else 0, footprint=True)
    except DwsError as exc:
        return dict(record, ok=False, cost=None, error=str(exc)[:500])
    if not report.ok:
        return dict(record, ok=False, cost=None, error="wrong result: " + report.comparisons[0].summary()[:400])
    cost = report.layer_instructions[0] if report.layer_instructions else report.ns_per_run
    # flash: the one-layer library's, the second objective (flash_budget.py; older records lack it)
    return dict(record, ok=True, cost=cost, unit="instructions" if report.layer_instructions else "ns",
                flash=report.footprint.flash)


def distinct_layers(graph: Graph) -> list[Op]:
    seen, layers = set(), []
    for op in graph.ops:
        key = layer_key(graph, op)
        if key not in seen:
            seen.add(key)
            layers.append(op)
    return layers


def pending_jobs(model: Path, graph: Graph, target: str, backend: str, trials: int, db: TuningDB) -> list[Job]:
    """Every candidate (and each layer's reference C loop) not yet in the database for this model."""
    jobs = []
    tgt = load_target(target)
    db = db.of_model(graph_hash(graph))
    for op in distinct_layers(graph):
        key = layer_key(graph, op)
        wanted = candidates(graph, op, backend, trials, target=tgt)
        if schedule_id(REFERENCE_SCHEDULE) not in db.measured(key, target, REFERENCE):
            jobs.append(Job(str(model), op.index, target, REFERENCE, REFERENCE_SCHEDULE, tuned_for=backend))
        done = db.measured(key, target, backend) | ({schedule_id(REFERENCE_SCHEDULE)} if backend == REFERENCE else set())
        jobs += [Job(str(model), op.index, target, backend, s) for s in wanted if schedule_id(s) not in done]
    return jobs
