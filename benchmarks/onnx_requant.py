"""ONNX QDQ models (requant "onnx": onnxruntime's float32 requantization): Cortex-M instructions per MAC by layer
kind before and after the SIMD variants for that requantization, and x86 time against onnxruntime.

    .venv/bin/python benchmarks/onnx_requant.py                     # both models, M3/M4/M55, x86: ~5 min
    .venv/bin/python benchmarks/onnx_requant.py --targets cortex-m4 --no-x86

Models: examples/mbv2_small_qdq.onnx (a small MobileNetV2-style classifier, onnxruntime's static quantizer) and,
when ../shared/models/zoo is present, tv_mnasnet0_5_96 (torchvision MNASNet 0.5 at 96x96, MobileNetV2-class
inverted residuals) QDQ-quantized here by tests/support/onnx_cases.quantize_qdq (seeded calibration, per-channel).

Cortex-M (QEMU executed instructions of the conv layers' kernel calls, summed per layer kind, over their MACs):
  before   the ONNX-requantized convolutions on the portable kernels (schedule {"kernel": "portable"}: what they
           got before this change), everything else as now
  after    the default: the target's SIMD variant with onnxruntime's epilogue (templates/kernels/_onnx_requant.j2)
  tflite   the same graph with its convolutions' requant switched to "tflite" (TFLite's fixed-point epilogue on the
           same MACs): what the network costs through TFLite's arithmetic
before and after are verified against onnxruntime (within 1 LSB, verify.qdq_tolerance) and the NumPy reference
(bit-exact); tflite against the NumPy reference. x86: thread CPU time per inference (ctypes call included) of ours
before / after on x86_64-v3 and x86_64-v4 and onnxruntime (1 thread, ORT_ENABLE_ALL), interleaved rounds, medians.

Writes benchmarks/results/onnx_requant.md and .json.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from dwscodegen.backends.templates import kernel_used  # noqa: E402
from dwscodegen.importers import load_model  # noqa: E402
from dwscodegen.ops import OPS, layer_kind, op_macs  # noqa: E402
from dwscodegen.runner.native import missing_cpu_flags  # noqa: E402
from dwscodegen.targets import load_target  # noqa: E402
from dwscodegen.tuning import REFERENCE_SCHEDULE  # noqa: E402
from dwscodegen.verify import random_inputs, verify_graph  # noqa: E402
from x86bench.common import NotAvailable  # noqa: E402
from x86bench.models import OnnxRuntime, Ours  # noqa: E402
from x86bench.report import machine_info, versions  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
ZOO_MNASNET = ROOT.parent / "shared" / "models" / "zoo" / "tv_mnasnet0_5_96.onnx"
ARM_TARGETS = ("cortex-m3", "cortex-m4", "cortex-m55")
X86_TARGETS = ("x86_64-v3", "x86_64-v4")
KINDS = ("conv", "depthwise", "pointwise")
CONFIGS = ("before", "after", "tflite")


def models(workdir: Path) -> list[Path]:
    found = [ROOT / "examples" / "mbv2_small_qdq.onnx"]
    if ZOO_MNASNET.is_file():
        from tests.support.onnx_cases import quantize_qdq
        found.append(quantize_qdq(ZOO_MNASNET, workdir / "tv_mnasnet0_5_96_qdq.onnx"))
    return found


def onnx_convs(graph) -> list:
    return [op for op in graph.ops if OPS[op.type].kind == "conv" and getattr(op.attrs, "requant", "") == "onnx"]


def portable_schedules(graph) -> dict[int, dict]:
    return {op.index: dict(REFERENCE_SCHEDULE) for op in onnx_convs(graph)}


def as_tflite(path: Path):
    """The model with every ONNX-requantized convolution switched to TFLite's requantization."""
    graph = load_model(path)
    for op in onnx_convs(graph):
        op.attrs.requant = "tflite"
    return graph


def arm_run(path: Path, target, config: str, runs: int) -> dict:
    graph = as_tflite(path) if config == "tflite" else load_model(path)
    schedules = portable_schedules(graph) if config == "before" else None
    checks = []
    for oracle in (("numpy",) if config == "tflite" else ("auto", "numpy")):
        report = verify_graph(graph, target, runs=runs, seed=3, oracle=oracle, schedules=schedules,
                              footprint=False)
        checks.append(f"{'ok' if report.ok else 'MISMATCH'} vs {report.oracle}")
        if not report.ok:
            return dict(error=", ".join(checks))
    counts = report.layer_instructions
    by_kind = {k: [0, 0] for k in KINDS}
    layers = []
    for op in graph.ops:
        if OPS[op.type].kind != "conv":
            continue
        kind = layer_kind(graph, op)
        by_kind[kind][0] += counts[op.index]
        by_kind[kind][1] += op_macs(graph, op)
        layers.append(dict(op=op.name, kind=kind, macs=op_macs(graph, op), instructions=counts[op.index],
                           kernel=kernel_used(graph, op, target, (schedules or {}).get(op.index, {}).get("kernel"))))
    convs = sum(v[0] for v in by_kind.values())
    return dict(check=", ".join(checks), by_kind=by_kind, layers=layers, conv_instructions=convs,
                total_instructions=sum(counts), conv_macs=sum(v[1] for v in by_kind.values()))


def x86_runs(path: Path, args, workdir: Path) -> dict:
    graph = load_model(path)
    inputs = random_inputs(graph, args.seed, 1)[0]
    runners, results = {}, {}
    for name in X86_TARGETS:
        target = load_target(name)
        missing = missing_cpu_flags(target)
        for config, schedules in (("before", portable_schedules(graph)), ("after", None)):
            method = f"{config}/{name}"
            if missing:
                results[method] = dict(error=f"host lacks {', '.join(missing)}")
                continue
            try:
                runners[method] = Ours(graph, target, inputs, workdir / graph.name / method.replace("/", "_"),
                                       schedules=schedules)
                results[method] = dict(check=runners[method].check, rounds=[])
            except NotAvailable as exc:
                results[method] = dict(error=str(exc))
    runners["onnxruntime"] = OnnxRuntime(path, graph, inputs)
    results["onnxruntime"] = dict(rounds=[])
    for method, runner in runners.items():
        runner.sample(3)
        pilot = min(runner.sample(5)[1] for _ in range(3))
        results[method]["runs_per_batch"] = max(5, int(args.batch_ms * 1e6 / max(pilot, 1.0)))
    for _ in range(args.rounds):
        for method, runner in runners.items():
            results[method]["rounds"].append(runner.sample(results[method]["runs_per_batch"]))
    for r in results.values():
        if r.get("rounds"):
            r["cpu_ns"] = statistics.median(c for _, c in r["rounds"])
            r["wall_ns"] = statistics.median(w for w, _ in r["rounds"])
    return results


def _ratio(r: dict | None, kind: str) -> str:
    if not r or "by_kind" not in r or not r["by_kind"][kind][1]:
        return "—"
    ins, macs = r["by_kind"][kind]
    return f"{ins / macs:.2f}"


def markdown(data: dict) -> str:
    lines = ["# ONNX QDQ models: SIMD variants with onnxruntime's requantization", "",
             f"Generated by `{data['command']}` on {data['date']} ({data['elapsed_s']:.0f} s). "
             "See the script's docstring for what each column runs.", "",
             "## Cortex-M: QEMU executed instructions per MAC of the conv layers, by layer kind", "",
             "before: portable kernels (what requant \"onnx\" layers got until now); after: the SIMD variants with "
             "onnxruntime's float32 epilogue; tflite: the same network with TFLite's fixed-point requantization "
             "(same MACs). Whole conv part: instructions of all conv layers / their MACs.", "",
             "| model | target | MMACs | " + " | ".join(f"{k} before / after / tflite" for k in KINDS)
             + " | all convs before / after / tflite | after vs before |",
             "|---|---|---:|" + "---:|" * (len(KINDS) + 2)]
    for model in data["models"]:
        for target, runs in model.get("arm", {}).items():
            cells = [" / ".join(_ratio(runs.get(c), k) for c in CONFIGS) for k in KINDS]
            whole = []
            for c in CONFIGS:
                r = runs.get(c, {})
                whole.append(f"{r['conv_instructions'] / r['conv_macs']:.2f}" if "conv_macs" in r else "—")
            a, b = runs.get("after", {}), runs.get("before", {})
            gain = f"{b['conv_instructions'] / a['conv_instructions']:.1f}x fewer" if "conv_instructions" in a and "conv_instructions" in b else "—"
            macs = next((r["conv_macs"] for r in runs.values() if "conv_macs" in r), 0)
            lines.append(f"| {model['name']} | {target} | {macs / 1e6:.2f} | " + " | ".join(cells)
                         + f" | {' / '.join(whole)} | {gain} |")
    lines += ["", "Checks (every figure above is from a run that matched these):", ""]
    for model in data["models"]:
        for target, runs in model.get("arm", {}).items():
            lines.append(f"- {model['name']} {target}: " + "; ".join(f"{c}: {runs[c].get('check') or runs[c].get('error')}"
                                                                  for c in CONFIGS if c in runs))
    if any(m.get("x86") for m in data["models"]):
        m = data["machine"]
        lines += ["", "## x86: thread CPU µs per inference (median of interleaved rounds, ctypes call included)", "",
                  f"Machine: {m['cpu_model']} ({m['logical_cpus']} logical CPUs, shared with other work). "
                  f"{data['rounds']} rounds; onnxruntime: CPU provider, 1 intra-op / 1 inter-op thread, ORT_ENABLE_ALL.", "",
                  "| model | ours x86_64-v3 before | after | ours x86_64-v4 before | after | onnxruntime | after/onnxruntime v3 | v4 |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for model in data["models"]:
            r = model.get("x86")
            if not r:
                continue

            def us(method):
                ns = r.get(method, {}).get("cpu_ns")
                return "n/a" if ns is None else f"{ns / 1000:,.1f}"

            ort = r.get("onnxruntime", {}).get("cpu_ns")
            ratios = [f"{r[f'after/{t}']['cpu_ns'] / ort:.2f}" if ort and r.get(f"after/{t}", {}).get("cpu_ns") else "—"
                      for t in X86_TARGETS]
            lines.append(f"| {model['name']} | {us('before/x86_64-v3')} | {us('after/x86_64-v3')} | "
                         f"{us('before/x86_64-v4')} | {us('after/x86_64-v4')} | {us('onnxruntime')} | "
                         + " | ".join(ratios) + " |")
        lines += ["", "Checks: " + "; ".join(f"{model['name']} {meth}: {res.get('check') or res.get('error')}"
                                               for model in data["models"] for meth, res in (model.get("x86") or {}).items()
                                               if meth != "onnxruntime") + "."]
    lines += ["", "Kernels per conv layer (after): " + "; ".join(
        f"{model['name']} {target}: " + ", ".join(sorted({lay['kernel'] for lay in runs['after']['layers']}))
        for model in data["models"] for target, runs in model.get("arm", {}).items() if "layers" in runs.get("after", {})) + ".", ""]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--targets", nargs="*", default=list(ARM_TARGETS))
    parser.add_argument("--no-x86", action="store_true")
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--batch-ms", type=float, default=20.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=RESULTS / "onnx_requant")
    args = parser.parse_args()
    start = time.time()
    data = dict(command="benchmarks/onnx_requant.py " + " ".join(sys.argv[1:]), models=[], rounds=args.rounds,
                date=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                machine=machine_info(), versions=versions(load_target("x86_64-v4")))
    with tempfile.TemporaryDirectory(prefix="onnx-requant-bench-") as tmp:
        work = Path(tmp)
        for path in models(work):
            entry = dict(name=path.stem, arm={})
            for name in args.targets:
                target = load_target(name)
                entry["arm"][name] = {c: arm_run(path, target, c, args.runs) for c in CONFIGS}
                print(f"{path.stem} {name}: " + ", ".join(
                    f"{c} {r['conv_instructions'] / r['conv_macs']:.2f}" if "conv_macs" in r else f"{c} {r.get('error')}"
                    for c, r in entry["arm"][name].items()), flush=True)
            if not args.no_x86:
                entry["x86"] = x86_runs(path, args, work)
                for r in entry["x86"].values():
                    r.pop("rounds", None)
            data["models"].append(entry)
    data["elapsed_s"] = time.time() - start
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(data, indent=1, default=str))
    text = markdown(data)
    args.out.with_suffix(".md").write_text(text)
    print(text)
    failed = [m["name"] for m in data["models"] for runs in m["arm"].values() for r in runs.values() if "error" in r]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
