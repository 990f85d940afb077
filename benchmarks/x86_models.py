"""Whole-model single-thread time on x86: dwscodegen's library for each x86 target against the TFLite
interpreter with XNNPACK, the same interpreter without a delegate, and onnxruntime (issue 11).

    .venv/bin/python benchmarks/x86_models.py [--models PATH ...] [--rounds 9] [--batch-ms 20]

Models: the MLPerf Tiny KWS int8 and float32 models and every model in ../shared/models/zoo that imports
(the others are listed with the importer's reason), plus the small ONNX examples (the only ones with an ONNX
form, so the only ones onnxruntime runs). For each model, side by side in one process:

  ours/<target>   the templates backend's library for x86_64, x86_64-v3, x86_64-v4 (a target whose ISA the host
                  lacks is n/a), first verified against the model's own oracle (verify_graph), then built as a
                  shared object without the layer hook and called through ctypes with preallocated buffers
  xnnpack         ai-edge-litert Interpreter(num_threads=1), default op resolver (applies XNNPACK)
  tflite          the same with OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES (TFLite's optimized kernels)
  onnxruntime     .onnx models only: CPU provider, 1 intra-op / 1 inter-op thread, ORT_ENABLE_ALL

Every method is prepared first; then --rounds rounds each time every model and method in turn (interleaved, so
a burst of load from the other users of the machine hits all methods alike), one batch of N calls each (N so
that a batch lasts about --batch-ms). Reported: the median over rounds of the per-call thread CPU time (the
primary figure: it leaves out time spent waiting for a core) and of the wall time, and ours / XNNPACK of the
CPU medians. Every figure includes the call from Python (ctypes for ours, the interpreter's invoke() binding,
session.run): the ctypes floor is measured and printed.

Goals (issue 11, ours / XNNPACK <= 1.0 on x86_64-v4, <= 1.5 on x86_64-v3) are checked for KWS and every MobileNet;
where one is missed, the library is rebuilt with a clock in its layer hook (x86bench/layer_profile.py) and the
share of the time per op type and kernel is written beside the goal.

Writes benchmarks/results/x86_models.md and .json (every round, machine, versions, settings, goal checks).
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "TVM_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dwscodegen.errors import DwsError  # noqa: E402
from dwscodegen.importers import load_model  # noqa: E402
from dwscodegen.ops import op_macs  # noqa: E402
from dwscodegen.runner.native import missing_cpu_flags  # noqa: E402
from dwscodegen.targets import load_target  # noqa: E402
from dwscodegen.verify import random_inputs  # noqa: E402
from x86bench import layer_profile  # noqa: E402
from x86bench.common import NotAvailable, one_line  # noqa: E402
from x86bench.models import OnnxRuntime, Ours, Tflite, ctypes_floor, oracle_for, timed  # noqa: E402
from x86bench.report import machine_info, versions  # noqa: E402

SHARED = ROOT.parent / "shared" / "models"
DEFAULT_MODELS = ([SHARED / "kws_ref_model.tflite", SHARED / "kws_ref_model_float32.tflite"]
                  + sorted((SHARED / "zoo").glob("*")) + sorted((ROOT / "examples").glob("mbv2_small*.onnx")))
TARGETS = ("x86_64", "x86_64-v3", "x86_64-v4")
BACKENDS = ("templates", "tvm")
BACKEND_PREFIX = {"templates": "ours", "tvm": "tvm"}
METHODS = tuple(f"ours/{t}" for t in TARGETS) + ("xnnpack", "tflite", "onnxruntime")
TVM_METHODS = tuple(f"tvm/{t}" for t in TARGETS)
GOALS = {"x86_64-v4": 1.0, "x86_64-v3": 1.5}          # ours / XNNPACK, issue 11
# the models the goals are for: KWS int8 and float32 and the MobileNets (the zoo's, and held-out ones alike)
GOAL_MODELS = re.compile(r"^(kws|mbv\d|mobilenet)", re.IGNORECASE)


def prepare(path: Path, graph, args, workdir: Path) -> dict:
    inputs = random_inputs(graph, args.seed, 1)[0]
    runners, results = {}, {}
    oracle, oracle_note = oracle_for(path)

    def attempt(method: str, make):
        try:
            runners[method] = make()
            results[method] = dict(runners[method].info, rounds=[])
        except NotAvailable as exc:
            results[method] = dict(error=str(exc))
        except Exception as exc:     # a benchmark keeps going; the reason lands in the table
            results[method] = dict(error=f"{type(exc).__name__}: {one_line(str(exc))}")

    for backend in BACKENDS[:2 if args.tvm else 1]:
        for name in TARGETS:
            target, method = load_target(name), f"{BACKEND_PREFIX[backend]}/{name}"
            missing = missing_cpu_flags(target)
            if missing:
                results[method] = dict(error=f"host lacks {', '.join(missing)}")
                continue
            attempt(method, lambda t=target, b=backend: Ours(graph, t, inputs, workdir / graph.name / b / t.name, b,
                                                              oracle))
    suffix = path.suffix.lower()
    for method, delegate in (("xnnpack", True), ("tflite", False)):
        if suffix != ".tflite":
            results[method] = dict(error="not a .tflite model")
            continue
        attempt(method, lambda d=delegate: Tflite(path, graph, inputs, d))
    if suffix == ".onnx":
        attempt("onnxruntime", lambda: OnnxRuntime(path, graph, inputs))
    else:
        results["onnxruntime"] = dict(error="no ONNX form of this model")
    for method, runner in runners.items():
        runner.sample(3)                                  # warm-up
        pilot = min(runner.sample(5)[1] for _ in range(3))
        results[method]["runs_per_batch"] = max(5, int(args.batch_ms * 1e6 / max(pilot, 1.0)))
    return dict(runners=runners, results=results, oracle_note=oracle_note)


def profile(graph, target, libdir: Path) -> list[dict] | str:
    """Our library's time per op type and kernel (x86bench/layer_profile.py), or why there is none."""
    try:
        return layer_profile.shares(graph, target, layer_profile.layer_times(graph, target, libdir))
    except (NotAvailable, OSError, ValueError) as exc:
        return f"no profile: {one_line(str(exc))}"


def goal_line(g: dict) -> str:
    head = f"- {g['model']} on {g['target']}: "
    if g["ratio"] is None:
        return head + "no figure"
    line = head + f"{g['ratio']:.2f} (goal <= {g['goal']:g}): {'met' if g['met'] else 'MISSED'}"
    where = g.get("where")
    if where:
        line += "; our time goes to " + (where if isinstance(where, str) else layer_profile.summary(where))
    return line


def finish(results: dict) -> None:
    """Medians over rounds, and ours / XNNPACK of the CPU medians."""
    for r in results.values():
        if r.get("rounds"):
            r["cpu_ns"] = statistics.median(c for _, c in r["rounds"])
            r["wall_ns"] = statistics.median(w for w, _ in r["rounds"])
            lo, hi = min(c for _, c in r["rounds"]), max(c for _, c in r["rounds"])
            r["cpu_spread"] = hi / lo if lo > 0 else None
    base = results.get("xnnpack", {}).get("cpu_ns")
    for t in TARGETS:
        ours = results.get(f"ours/{t}", {}).get("cpu_ns")
        if ours and base:
            results[f"ours/{t}"]["vs_xnnpack"] = ours / base


def fmt_us(ns) -> str:
    return "n/a" if ns is None else f"{ns / 1000:,.1f}"


def markdown(data: dict) -> str:
    notes: list[str] = []

    def note(text: str) -> str:
        if text not in notes:
            notes.append(text)
        return f"[{notes.index(text) + 1}]"

    rows = []
    for model in data["models"]:
        cells = []
        for m in METHODS:
            r = model["results"][m]
            if r.get("cpu_ns") is None:
                cells.append(f"n/a {note(m + ': ' + r.get('error', 'no figure'))}")
            else:
                cells.append(fmt_us(r["cpu_ns"]) + ("~" if (r.get("cpu_spread") or 1) > 1.25 else ""))
        ratios = [f"{model['results'][f'ours/{t}']['vs_xnnpack']:.2f}" if model["results"][f"ours/{t}"].get("vs_xnnpack")
                  else "—" for t in TARGETS]
        rows.append(f"| {model['name']} | {model['macs'] / 1e6:.2f} | " + " | ".join(cells) + " | " + " | ".join(ratios) + " |")
    s, m = data["settings"], data["machine"]
    lines = [
        "# x86 whole-model single-thread time",
        "",
        f"Generated by `{s['command']}` on {data['date']} ({s['elapsed_s']:g} s).",
        "",
        f"Machine: {m['cpu_model']} ({m['logical_cpus']} logical CPUs, shared with other work; Linux {m['kernel']}; "
        f"flags include {m['cpu'].get('flags', '?')}). Load average (1 min) at the start and end: "
        f"{s['load_average'][0]:.2f}, {s['load_average'][1]:.2f}.",
        "",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in data["versions"].items()) + ".",
        "",
        f"Microseconds of thread CPU time per inference, median of {s['rounds']} interleaved rounds (one batch of N "
        f"calls per method per round, N so that a batch lasts ~{s['batch_ms']:g} ms); `~`: the rounds spread by more "
        f"than 25 %. Every figure includes the call from Python: {data['ctypes_floor_ns']:.0f} ns of it is the "
        "ctypes call itself (measured on an empty C function).",
        "",
        "| model | MMACs | ours x86_64 | ours x86_64-v3 | ours x86_64-v4 | TFLite + XNNPACK | TFLite, no delegate "
        "| onnxruntime | ours/XNNPACK x86_64 | v3 | v4 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        *rows,
        "",
        "Goals (issue 11): ours / XNNPACK <= 1.0 on x86_64-v4 and <= 1.5 on x86_64-v3, KWS int8 and float32 and "
        "the MobileNets; where one is missed, the share of our time per op type and kernel (a layer-hook clock "
        "build of the same library, median of 200 runs):",
        "",
        *([goal_line(g) for g in data["goals"]] or ["- none of these models is one the goals are for"]),
        "",
        "Wall-clock medians (µs), for comparison: " + "; ".join(
            f"{model['name']}: " + ", ".join(f"{m} {fmt_us(model['results'][m].get('wall_ns'))}" for m in METHODS
                                             if model["results"][m].get("wall_ns"))
            for model in data["models"]) + ".",
        "",
        "Checks: every `ours` figure is of a library whose outputs matched the model's own oracle first "
        "(TFLite BUILTIN_REF for .tflite, onnxruntime for .onnx; int8 bit-exact, float32 within tolerance): "
        + "; ".join(f"{model['name']} " + ", ".join(f"{t}: {model['results'][f'ours/{t}'].get('check', 'n/a')}"
                                                    for t in TARGETS) for model in data["models"]) + ".",
        "",
    ]
    if any(m in model["results"] for model in data["models"] for m in TVM_METHODS):
        lines += ["The tvm backend's library (same verification and timing), µs of thread CPU time:", "",
                  "| model | tvm x86_64 | tvm x86_64-v3 | tvm x86_64-v4 | templates x86_64-v4 |", "|---|---:|---:|---:|---:|"]
        for model in data["models"]:
            r = model["results"]
            cells = [fmt_us(r.get(m, {}).get("cpu_ns")) for m in TVM_METHODS + ("ours/x86_64-v4",)]
            lines.append(f"| {model['name']} | " + " | ".join(cells) + " |")
        lines.append("")
    oracle_notes = [f"{model['name']}: {model['oracle_note']}" for model in data["models"] if model.get("oracle_note")]
    if oracle_notes:
        lines += ["Oracles:", "", *[f"- {n}" for n in oracle_notes], ""]
    if data["skipped"]:
        lines += ["Models left out (they do not import today):", "", *[f"- {s}" for s in data["skipped"]], ""]
    if notes:
        lines += ["Notes:", "", *[f"{i + 1}. {n}" for i, n in enumerate(notes)], ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="*", type=Path, default=DEFAULT_MODELS)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--batch-ms", type=float, default=20.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tvm", action="store_true", help="also the tvm backend's library for each target")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "x86_models"))
    args = parser.parse_args(argv)
    started, load0 = time.time(), os.getloadavg()[0]
    models, skipped = [], []
    with tempfile.TemporaryDirectory(prefix="dws-x86-models-") as tmp:
        work = Path(tmp)
        for path in args.models:
            if not path.exists():
                skipped.append(f"{path.name}: not present ({path})")
                continue
            try:
                graph = load_model(path)
            except DwsError as exc:
                skipped.append(f"{path.name}: {one_line(str(exc), 240)}")
                continue
            print(f"preparing {path.name}", file=sys.stderr, flush=True)
            entry = dict(name=graph.name, source=str(path), macs=sum(op_macs(graph, op) for op in graph.ops))
            entry.update(prepare(path, graph, args, work), graph=graph)
            models.append(entry)
        floor = ctypes_floor(load_target("x86_64"), work / "floor")
        for r in range(args.rounds):
            print(f"round {r + 1}/{args.rounds}", file=sys.stderr, flush=True)
            for model in models:
                for method, runner in model["runners"].items():
                    res = model["results"][method]
                    res["rounds"].append(timed(runner.call, res["runs_per_batch"]))
        goals = []
        for model in models:
            finish(model["results"])
            if GOAL_MODELS.match(model["name"]):
                for target, goal in GOALS.items():
                    ratio = model["results"][f"ours/{target}"].get("vs_xnnpack")
                    entry = dict(model=model["name"], target=target, goal=goal, ratio=ratio,
                                 met=ratio is not None and ratio <= goal)
                    runner = model["runners"].get(f"ours/{target}")
                    if runner is not None and not entry["met"]:      # where the time goes, per layer kind
                        print(f"profiling {model['name']} on {target}", file=sys.stderr, flush=True)
                        entry["where"] = profile(model["graph"], load_target(target), runner.workdir)
                    goals.append(entry)
            del model["runners"], model["graph"]
    data = dict(date=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                machine=machine_info(), versions=versions(load_target("x86_64")), ctypes_floor_ns=floor,
                settings=dict(rounds=args.rounds, batch_ms=args.batch_ms, seed=args.seed,
                              load_average=[load0, os.getloadavg()[0]], elapsed_s=round(time.time() - started, 1),
                              command=shlex.join(["benchmarks/x86_models.py"] + (sys.argv[1:] if argv is None else argv)),
                              cflags={t: list(load_target(t).cflags) for t in TARGETS}),
                models=models, goals=goals, skipped=skipped)
    text = markdown(data)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".md").write_text(text)
    out.with_suffix(".json").write_text(json.dumps(data, indent=1, default=str) + "\n")
    print(text)
    print(f"wrote {out.with_suffix('.md')} and {out.with_suffix('.json')}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
