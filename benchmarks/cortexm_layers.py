"""Cortex-M per layer: reference C loop vs default vs tuned vs TVM vs CMSIS-NN, executed instructions under QEMU.

    .venv/bin/python benchmarks/cortexm_layers.py                  # everything: ~2 min, writes benchmarks/results/
    .venv/bin/python benchmarks/cortexm_layers.py --quick          # KWS on cortex-m4 and cortex-m55, writes out/
    .venv/bin/python benchmarks/cortexm_layers.py --tvm-trials 8   # also tune the TVM backend (8 candidates per layer)

Models: the MLPerf Tiny KWS int8 model (../shared/models/kws_ref_model.tflite, skipped with a message when
absent), examples/*_s8.json and examples/mbv2_small_qdq.onnx. Targets: cortex-m3, m4, m7, m55. Columns:

  reference C loop  templates backend, every layer on its portable kernel (schedule {"kernel": "portable"})
  default           templates backend, the target's preferred SIMD variant where one applies
  tuned             `dwscodegen tune --backend templates`, programmatically, into
                    benchmarks/results/tuning/<model>.<target>.templates.jsonl,
                    then the model verified with the best recorded schedule per layer (tuning_select.best_schedules)
  TVM               tvm backend, default schedules
  TVM tuned         (--tvm-trials N > 0) the same tuner with --backend tvm, N candidates per distinct layer
  CMSIS-NN          issue 6's anchors for KWS (CMSIS-NN 99f736a, gcc 12.2 -O3, kernel call only, QEMU 7.2)

Every figure comes from a full-model `verify_graph` run whose outputs matched the oracle bit-exactly (the
TFLite interpreter for .tflite, onnxruntime for .onnx, the NumPy reference for .json); a configuration that
fails to build or to match is reported as such and leaves no figure. Costs are QEMU executed instructions of
each layer's kernel call (not cycles). Output: markdown on stdout and in <out>.md, everything in <out>.json.
"""
from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dwscodegen.backends.templates import kernel_used  # noqa: E402
from dwscodegen.planner import NO_FUSION_ENV  # noqa: E402
from dwscodegen.errors import DwsError  # noqa: E402
from dwscodegen.ops import OPS, layer_kind, op_macs  # noqa: E402
from dwscodegen.importers import load_model  # noqa: E402
from dwscodegen.targets import load_target  # noqa: E402
from dwscodegen.tuning import REFERENCE_SCHEDULE, pending_jobs  # noqa: E402
from dwscodegen.tuning_select import best_schedules  # noqa: E402
from dwscodegen.tuning_db import TuningDB  # noqa: E402
from dwscodegen.tuning_run import run_jobs  # noqa: E402
from dwscodegen.verify import verify_graph  # noqa: E402

# Per-layer figures: each layer its own kernel call, so no row fusion (inside a chain every op but the last
# counts 0); the whole-model instructions with the default plan are in memory.md and tvm_zoo.md.
os.environ.setdefault(NO_FUSION_ENV, "1")

KWS = ROOT.parent / "shared" / "models" / "kws_ref_model.tflite"
RESULTS = ROOT / "benchmarks" / "results"
TARGETS = ["cortex-m3", "cortex-m4", "cortex-m7", "cortex-m55"]
QUICK_TARGETS = ["cortex-m4", "cortex-m55"]
# CMSIS-NN per layer kind (each layer, not summed) and for all conv layers of KWS, from issue 6.
CMSIS_NN = {
    "cortex-m3": dict(conv=1_362_469, depthwise=674_334, pointwise=1_591_948, total=10_427_724),
    "cortex-m4": dict(conv=1_111_180, depthwise=599_617, pointwise=1_068_929, total=7_785_364),
    "cortex-m7": dict(conv=1_120_494, depthwise=594_174, pointwise=1_051_000, total=7_701_190),
    "cortex-m55": dict(conv=289_046, depthwise=166_879, pointwise=202_880, total=1_768_082),
}
GOAL = 1.3   # whole-model conv layers at least 1.3x fewer than CMSIS-NN on M4, M7, M55
# issue 6's rounded figures (7.79 M / 1.3, 1.77 M / 1.3); M7: CMSIS-NN / GOAL
GOAL_LIMITS = {"cortex-m4": 6_000_000, "cortex-m55": 1_360_000}
GOAL_TARGETS = ("cortex-m4", "cortex-m7", "cortex-m55")
# (column, backend, how the schedules are chosen)
CONFIGS = [("reference", "templates"), ("default", "templates"), ("tuned", "templates"),
           ("tvm", "tvm"), ("tvm_tuned", "tvm")]
LABELS = dict(reference="reference C loop", default="default", tuned="tuned", tvm="TVM", tvm_tuned="TVM tuned")


def default_models() -> list[Path]:
    models = [KWS] if KWS.is_file() else []
    return models + sorted((ROOT / "examples").glob("*_s8.json")) + [ROOT / "examples" / "mbv2_small_qdq.onnx"]


def _kind(graph, op) -> str | None:
    """depthwise / pointwise / conv for the convolutions (which CMSIS-NN anchors exist for), else None."""
    return layer_kind(graph, op) if OPS[op.type].kind == "conv" else None


def _shape(graph, name: str) -> str:
    shape = graph.tensor(name).shape
    return "x".join(map(str, shape[1:] if len(shape) > 1 else shape))


def _kernel_used(graph, op, target, schedule: dict | None) -> str:
    """Name of the templates kernel a conv-like layer gets under `schedule` (the SIMD variant's template stem)."""
    return kernel_used(graph, op, target, (schedule or {}).get("kernel"))


# --- tuning -------------------------------------------------------------------------------------------

def tune(model: Path, graph, target: str, backend: str, trials: int, db_path: Path, jobs: int,
         fresh: bool) -> dict:
    """`dwscodegen tune MODEL -t TARGET --backend B --trials N --db DB --jobs J`, programmatically."""
    if fresh and db_path.exists():
        db_path.unlink()
    db_path.parent.mkdir(parents=True, exist_ok=True)
    db = TuningDB.open(db_path)
    before = len(db.records)
    todo = pending_jobs(model.resolve(), graph, target, backend, trials, db)
    rejected = []

    def record(result: dict) -> None:
        db.append(result)
        if not result["ok"]:
            rejected.append(f"{result['op']} {json.dumps(result['schedule'])}: {result.get('error', '')}")

    start = time.time()
    run_jobs(todo, jobs, None, record)
    schedules = best_schedules(graph, db, target, backend)
    return dict(db=str(db_path.relative_to(ROOT)) if db_path.is_relative_to(ROOT) else str(db_path),
                reused=before, measured=len(todo), rejected=rejected, skipped_lines=db.skipped_lines,
                seconds=round(time.time() - start, 1),
                schedules={str(k): v for k, v in sorted(schedules.items())})


# --- verified runs (in worker processes) --------------------------------------------------------------

@functools.lru_cache(maxsize=8)
def _graph(path: str):
    return load_model(Path(path))


def run_config(model: str, target_name: str, backend: str, schedules: dict[int, dict] | None, runs: int) -> dict:
    """One full-model verify; the per-layer counts only if every output matched the oracle."""
    graph = _graph(model)
    start = time.time()
    try:
        report = verify_graph(graph, load_target(target_name), backend=backend, runs=runs, seed=0,
                              schedules=schedules or None)
    except DwsError as exc:
        return dict(ok=False, error=" ".join(str(exc).split())[:400], seconds=round(time.time() - start, 1))
    if not report.ok:
        detail = report.first_bad_layer or "; ".join(c.summary() for c in report.comparisons if not c.ok)
        return dict(ok=False, oracle=report.oracle,
                    error=f"outputs differ from the {report.oracle} oracle: {detail}"[:400], seconds=round(time.time() - start, 1))
    return dict(ok=True, oracle=report.oracle, layers=report.layer_instructions, total=sum(report.layer_instructions),
                footprint=report.footprint.as_dict(), seconds=round(time.time() - start, 1))


# --- one model on one target --------------------------------------------------------------------------

def plan(model: Path, target_name: str, args, tuning_dir: Path) -> tuple[dict, dict]:
    """Tune (templates, and tvm with --tvm-trials), then the verify tasks: column -> (backend, schedules)."""
    graph = _graph(str(model))
    stem = model.name.rsplit(".", 1)[0]
    tuning = {}
    tasks = {"reference": ("templates", {op.index: dict(REFERENCE_SCHEDULE) for op in graph.ops}),
             "default": ("templates", None)}
    tuning["templates"] = tune(model, graph, target_name, "templates", args.trials,
                               tuning_dir / f"{stem}.{target_name}.templates.jsonl", args.jobs, not args.resume)
    tasks["tuned"] = ("templates", {int(k): v for k, v in tuning["templates"]["schedules"].items()})
    if "tvm" not in args.skip:
        tasks["tvm"] = ("tvm", None)
        if args.tvm_trials:
            tuning["tvm"] = tune(model, graph, target_name, "tvm", args.tvm_trials,
                                 tuning_dir / f"{stem}.{target_name}.tvm.jsonl", args.jobs, not args.resume)
            tasks["tvm_tuned"] = ("tvm", {int(k): v for k, v in tuning["tvm"]["schedules"].items()})
    return tasks, tuning


def assemble(model: Path, target_name: str, tasks: dict, tuning: dict, runs: dict) -> dict:
    graph = _graph(str(model))
    target = load_target(target_name)
    kws = model.resolve() == KWS.resolve()
    anchors = CMSIS_NN.get(target_name, {}) if kws else {}
    columns = [c for c, _ in CONFIGS if c in runs]
    tuned_schedules = tasks["tuned"][1] or {}
    layers = []
    for op in graph.ops:
        kind = _kind(graph, op)
        row = dict(index=op.index, layer=op.name, op=op.type, kind=kind,
                   shape=f"{_shape(graph, op.inputs[0])} -> {_shape(graph, op.outputs[0])}",
                   macs=op_macs(graph, op), cmsis_nn=anchors.get(kind))
        if kind:
            row["default_kernel"] = _kernel_used(graph, op, target, None)
            row["tuned_kernel"] = _kernel_used(graph, op, target, tuned_schedules.get(op.index))
        for column in columns:
            row[column] = runs[column]["layers"][op.index] if runs[column]["ok"] else None
        layers.append(row)
    conv = [r for r in layers if r["kind"]]
    totals = dict(conv_macs=sum(r["macs"] for r in conv), model_macs=sum(r["macs"] for r in layers),
                  cmsis_nn_conv=anchors.get("total"))
    for column in columns:
        ok = runs[column]["ok"]
        totals[f"{column}_conv"] = sum(r[column] for r in conv) if ok else None
        totals[f"{column}_model"] = runs[column]["total"] if ok else None
    return dict(model=model.name, target=target_name, features=sorted(target.features), kws=kws,
                oracle=next((r["oracle"] for r in runs.values() if r.get("oracle")), None),
                layers=layers, totals=totals, tuning=tuning,
                runs={c: {k: v for k, v in r.items() if k != "layers"} for c, r in runs.items()})


# --- report -------------------------------------------------------------------------------------------

def _n(value) -> str:
    return f"{value:,}" if isinstance(value, int) else "-"


def _ratio(a, b) -> str:
    return f"{a / b:.2f}x" if a and b else "-"


def _columns(result: dict) -> list[str]:
    return [c for c, _ in CONFIGS if c in result["runs"]]


def table(result: dict) -> str:
    cols = _columns(result)
    anchors = result["kws"]
    head = ["layer", "kind", "shape", "MACs"] + [LABELS[c] for c in cols] + (["CMSIS-NN"] if anchors else []) + \
        ["tuned kernel", "ref C / tuned"] + (["CMSIS-NN / tuned"] if anchors else [])
    lines = ["| " + " | ".join(head) + " |",
             "|---|---|---|" + "---:|" * (1 + len(cols) + anchors) + "---|" + "---:|" * (1 + anchors)]
    for r in result["layers"]:
        cells = [f"{r['index']} {r['layer']}", r["kind"] or r["op"], r["shape"], _n(r["macs"])]
        cells += [_n(r[c]) for c in cols] + ([_n(r["cmsis_nn"])] if anchors else [])
        kernel = r.get("tuned_kernel", "")
        cells += [kernel + (" (default: " + r["default_kernel"] + ")" if kernel != r.get("default_kernel", "") else ""),
                  _ratio(r.get("reference"), r.get("tuned"))]
        cells += [_ratio(r["cmsis_nn"], r.get("tuned"))] if anchors else []
        lines.append("| " + " | ".join(cells) + " |")
    t = result["totals"]
    for label, suffix, macs, cmsis in (("**all conv layers**", "conv", t["conv_macs"], t["cmsis_nn_conv"]),
                                       ("**whole model**", "model", t["model_macs"], None)):
        cells = [label, "", "", _n(macs)] + [f"**{_n(t[f'{c}_{suffix}'])}**" for c in cols]
        cells += [_n(cmsis)] if anchors else []
        cells += ["", _ratio(t.get(f"reference_{suffix}"), t.get(f"tuned_{suffix}"))]
        cells += [_ratio(cmsis, t.get(f"tuned_{suffix}"))] if anchors else []
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def section(result: dict) -> str:
    feats = ", ".join(result["features"]) or "none"
    lines = [f"### {result['model']} on {result['target']} (features: {feats})", "", table(result)]
    runs = result["runs"]
    fp = [f"{LABELS[c]} {r['footprint']['flash']:,} / {r['footprint']['ram']:,}" for c, r in runs.items() if r["ok"]]
    lines.append("Flash / RAM (bytes): " + "; ".join(fp) + ".")
    tune_t = result["tuning"]["templates"]
    moved = [f"{r['layer']} ({r['default_kernel']} -> {r['tuned_kernel']})" for r in result["layers"]
             if r["kind"] and r["tuned_kernel"] != r["default_kernel"]]
    lines.append(f"Tuning ({tune_t['db']}): {tune_t['measured']} candidate(s) measured, {tune_t['reused']} reused, "
                 f"{len(tune_t['rejected'])} rejected; kernels the tuner changed from the default: "
                 + (", ".join(moved) or "none (the default kernel is the fastest measured on every layer)") + ".")
    if "tvm" in result["tuning"]:
        tv = result["tuning"]["tvm"]
        lines.append(f"TVM tuning ({tv['db']}): {tv['measured']} measured, {tv['reused']} reused, "
                     f"{len(tv['rejected'])} rejected, {len(tv['schedules'])} layer(s) off the default schedule.")
    for column, r in runs.items():
        if not r["ok"]:
            lines.append(f"**{LABELS[column]}: no figures** ({r['error']}).")
    if result["kws"]:
        behind = [r for r in result["layers"] if r["cmsis_nn"] and r.get("tuned") and r["tuned"] >= r["cmsis_nn"]]
        t = result["totals"]
        if behind:
            lines.append("Not below CMSIS-NN (tuned): " + ", ".join(
                f"{r['layer']} ({r['tuned'] / r['cmsis_nn']:.2f}x its count)" for r in behind) + ".")
        if t.get("tuned_conv"):
            lines.append(f"All conv layers: CMSIS-NN / tuned = {t['cmsis_nn_conv'] / t['tuned_conv']:.2f}x.")
    if not {"dsp", "mve"} & set(result["features"]):
        lines.append("No SIMD variants on this target (neither `dsp` nor `mve`): "
                     "default and tuned are the portable kernels.")
    return "\n".join(lines) + "\n"


def summary(results: list[dict]) -> str:
    cols = [c for c, _ in CONFIGS if any(c in r["runs"] for r in results)]
    head = ["model", "target"] + [LABELS[c] for c in cols] + ["ref C / tuned", "best"]
    lines = ["| " + " | ".join(head) + " |", "|---|---|" + "---:|" * (len(cols) + 1) + "---|"]
    for r in results:
        t = r["totals"]
        present = {c: t.get(f"{c}_model") for c in cols}
        best = min((v, c) for c, v in present.items() if v) if any(present.values()) else None
        lines.append("| " + " | ".join([r["model"], r["target"]] + [_n(present[c]) for c in cols] +
                                        [_ratio(present.get("reference"), present.get("tuned")),
                                         LABELS[best[1]] if best else "-"]) + " |")
    return "\n".join(lines) + "\n"


def goal_check(results: list[dict]) -> tuple[str, list[dict]]:
    """Issue 6's goal, on the tuned templates figures of KWS (and, for comparison, the default ones)."""
    checks = []
    for r in results:
        if not r["kws"] or r["target"] not in GOAL_TARGETS:
            continue
        t, target = r["totals"], r["target"]
        limit = GOAL_LIMITS.get(target, int(t["cmsis_nn_conv"] / GOAL))
        for column in ("tuned", "default"):
            conv = t.get(f"{column}_conv")
            layers = [(x["layer"], x[column], x["cmsis_nn"]) for x in r["layers"] if x["cmsis_nn"]]
            behind = [f"{name} {_n(v)} >= {c:,}" if v is not None else f"{name} not measured"
                      for name, v, c in layers if v is None or v >= c]
            checks.append(dict(target=target, column=column, conv_total=conv, limit=limit,
                               total_ok=conv is not None and conv <= limit,
                               ratio=round(t["cmsis_nn_conv"] / conv, 3) if conv else None,
                               layers_ok=not behind, behind=behind))
    lines = ["| target | column | all conv layers | limit | CMSIS-NN / ours | <= limit | every layer below CMSIS-NN |",
             "|---|---|---:|---:|---:|---|---|"]
    for c in checks:
        lines.append(f"| {c['target']} | {LABELS[c['column']]} | {_n(c['conv_total'])} | {c['limit']:,} | "
                     f"{c['ratio'] or '-'}x | {'yes' if c['total_ok'] else '**NO**'} | "
                     f"{'yes' if c['layers_ok'] else '**NO**: ' + ', '.join(c['behind'])} |")
    met = bool(checks) and all(c["total_ok"] and c["layers_ok"] for c in checks if c["column"] == "tuned")
    checked = sorted({c["target"] for c in checks}, key=GOAL_TARGETS.index)
    missing = [t for t in GOAL_TARGETS if t not in checked]
    lines.append("")
    lines.append(f"Goal (tuned): {'MET' if met else 'NOT met'} on {', '.join(checked) or 'no target'}"
                 + (f" ({', '.join(missing)} not measured in this run)" if missing else "") +
                 f". Limits: M4 6.0 M and M55 1.36 M from issue 6; M7 = CMSIS-NN's 7,701,190 / {GOAL}.")
    return "\n".join(lines) + "\n", checks


def _tool(cmd: list[str]) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=30).stdout.strip().split("\n")[0]
    except (OSError, subprocess.SubprocessError):
        return "unavailable"


def _git() -> str:
    commit = _tool(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])
    dirty = _tool(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"])
    return commit + (" (with uncommitted changes)" if dirty and dirty != "unavailable" else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="KWS only, on cortex-m4 and cortex-m55 (writes out/)")
    parser.add_argument("--targets", nargs="+", default=None, help=f"default: {' '.join(TARGETS)}")
    parser.add_argument("--models", nargs="+", type=Path, default=None,
                        help="default: the KWS .tflite (when present), examples/*_s8.json, examples/mbv2_small_qdq.onnx")
    parser.add_argument("--runs", type=int, default=2, help="seeded inputs verified per build (default 2)")
    parser.add_argument("--trials", type=int, default=8, help="templates tuning: candidates per distinct layer (default 8)")
    parser.add_argument("--tvm-trials", type=int, default=0, metavar="N",
                        help="also tune the TVM backend with N candidates per distinct layer (default 0 = skip)")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes for tuning and verifying (default 2)")
    parser.add_argument("--resume", action="store_true",
                        help="keep the tuning databases' earlier records (default: start them afresh)")
    parser.add_argument("--skip", default="", help="comma-separated: tvm")
    parser.add_argument("--out", type=Path, default=None,
                        help="output path without suffix (default: benchmarks/results/cortexm_layers for the full "
                             "run, out/cortexm_layers_partial for --quick, --targets or --models)")
    args = parser.parse_args()
    args.skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    partial = args.quick or args.targets or args.models
    targets = args.targets or (QUICK_TARGETS if args.quick else TARGETS)
    if args.models:
        models = [m.resolve() for m in args.models]
    elif args.quick:
        models = [KWS] if KWS.is_file() else []
    else:
        models = default_models()
    notes = []
    if not KWS.is_file() and not args.models:
        notes.append(f"KWS model not found at {KWS}: skipped (CMSIS-NN comparison and goal check need it).")
        print(notes[-1], file=sys.stderr)
    if not models:
        print("nothing to measure", file=sys.stderr)
        return
    out = args.out or (ROOT / "out" / "cortexm_layers_partial" if partial else RESULTS / "cortexm_layers")
    out = out if out.is_absolute() else (Path.cwd() / out)
    tuning_dir = out.parent / "tuning"
    if not shutil.which("arm-none-eabi-gcc") or not shutil.which("qemu-system-arm"):
        raise SystemExit("needs arm-none-eabi-gcc and qemu-system-arm: "
                         "apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm")

    start = time.time()
    plans = {}
    for model in models:           # tuning first: every job of one database in one pool of --jobs workers
        for target in targets:
            t0 = time.time()
            plans[model, target] = plan(model, target, args, tuning_dir)
            tuned = plans[model, target][1]
            print(f"tuned {model.name} on {target}: " + ", ".join(
                f"{b} {x['measured']} measured, {len(x['rejected'])} rejected" for b, x in tuned.items()) +
                f" ({time.time() - t0:.0f} s)", file=sys.stderr, flush=True)
    tune_seconds = time.time() - start
    runs: dict = {}
    with ProcessPoolExecutor(max(args.jobs, 1)) as pool:
        futures = {(model, target, column): pool.submit(run_config, str(model), target, backend, schedules, args.runs)
                   for (model, target), (tasks, _) in plans.items() for column, (backend, schedules) in tasks.items()}
        for (model, target, column), future in futures.items():
            result = future.result()
            runs.setdefault((model, target), {})[column] = result
            status = f"{result['total']:,} instructions" if result["ok"] else f"FAILED: {result['error']}"
            print(f"verified {model.name} on {target}, {LABELS[column]}: {status} ({result['seconds']} s)",
                  file=sys.stderr, flush=True)
    results = [assemble(model, target, plans[model, target][0], plans[model, target][1], runs[model, target])
               for model in models for target in targets]
    failures = [f"{r['model']} on {r['target']}, {LABELS[c]}: {x['error']}"
                for r in results for c, x in r["runs"].items() if not x["ok"]]
    failures += [f"{r['model']} on {r['target']}, tuning {b}: rejected {line}"
                 for r in results for b, x in r["tuning"].items() for line in x["rejected"]]
    elapsed = time.time() - start

    toolchain = f"{_tool(['arm-none-eabi-gcc', '--version'])}; {_tool(['qemu-system-arm', '--version'])}"
    oracles = sorted({r["oracle"] for r in results if r["oracle"]})
    goal_text, checks = goal_check(results)
    text = ["# Cortex-M per layer: reference C loop, default, tuned, TVM, CMSIS-NN", "",
            f"Executed instructions under QEMU (not cycles) of each layer's kernel call. Every figure comes from a "
            f"full-model run verified bit-exact against the model's oracle ({', '.join(oracles)}) on {args.runs} "
            f"seeded inputs. Reference C loop = portable kernels; default = the target's SIMD variants; tuned = "
            f"best schedule per layer from `tune --backend templates --trials {args.trials}` (databases in "
            f"`{tuning_dir.relative_to(ROOT) if tuning_dir.is_relative_to(ROOT) else tuning_dir}/`); TVM = tvm "
            "backend, default schedules" + (f"; TVM tuned = `tune --backend tvm --trials {args.tvm_trials}`"
                                            if args.tvm_trials else "") +
            ". CMSIS-NN: issue 6 anchors (99f736a, gcc 12.2 -O3, DSP path on M4/M7, MVE on M55, kernel call only). "
            "The tuner measures each distinct layer alone (one-layer graph, seeded random input); the tuned figures "
            "here are the whole model run with the chosen schedules, so a layer can differ a little from its tuning "
            "measurement (real activations, arena placement and alignment).",
            "", f"{toolchain}; host {platform.machine()}; commit {_git()}; {time.strftime('%Y-%m-%d')}; "
            f"{elapsed:.0f} s (tuning {tune_seconds:.0f} s) with --jobs {args.jobs}.", ""]
    text += [f"Note: {n}" for n in notes] + ([""] if notes else [])
    if any(r["kws"] for r in results):
        text += ["## Issue 6 goal (KWS conv layers vs CMSIS-NN)", "", goal_text]
    text += ["## Whole model, all layers", "", summary(results)]
    if failures:
        text += ["## Did not work", ""] + [f"- {f}" for f in failures] + [""]
    for model in models:
        text.append(f"## {model.name}\n")
        text += [section(r) for r in results if r["model"] == model.name]
    markdown = "\n".join(text)
    print(markdown)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".md").write_text(markdown)
    out.with_suffix(".json").write_text(json.dumps(dict(
        date=time.strftime("%Y-%m-%dT%H:%M:%S"), commit=_git(), toolchain=toolchain, host=platform.machine(),
        args=dict(targets=targets, models=[m.name for m in models], runs=args.runs, trials=args.trials,
                  tvm_trials=args.tvm_trials, jobs=args.jobs, resume=args.resume),
        seconds=round(elapsed, 1), tuning_seconds=round(tune_seconds, 1), cmsis_nn=CMSIS_NN, goal=checks,
        failures=failures, notes=notes, results=results), indent=1) + "\n")
    print(f"wrote {out.with_suffix('.md')} and .json ({elapsed:.0f} s)", file=sys.stderr)
    sys.exit(1 if any(not x["ok"] for r in results for x in r["runs"].values()) else 0)


if __name__ == "__main__":
    main()
