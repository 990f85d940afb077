"""Cortex-M glue-op variants (simd/arm_glue.py): per op type, QEMU executed instructions of whole zoo models
before (every op other than Conv2D / DepthwiseConv2D on its portable kernel, as before the variants existed:
the schedule {"kernel": "portable"} for those ops) and after (the default variants).

    .venv/bin/python benchmarks/arm_glue.py                 # writes benchmarks/results/arm_glue.md and .json
    .venv/bin/python benchmarks/arm_glue.py --keep-before   # reuse the "before" figures of the last .json
    .venv/bin/python benchmarks/arm_glue.py --keep-before --targets cortex-m55   # remeasure M55's "after" only

Every figure comes from a `verify_graph` run (one input, seed 0) whose outputs matched the NumPy reference bit
for bit; a run that fails leaves no figure. Models: /work/shared/models/zoo/{effb0_96_s8, mbv2_a035_96_s8,
mbv3s_96_s8}.tflite (skipped with a message when absent).
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dwscodegen.importers import load_model  # noqa: E402
from dwscodegen.targets import load_target  # noqa: E402
from dwscodegen.verify import verify_graph  # noqa: E402

ZOO = ROOT.parent / "shared" / "models" / "zoo"
MODELS = ("effb0_96_s8", "mbv2_a035_96_s8", "mbv3s_96_s8")
TARGETS = ("cortex-m4", "cortex-m55")
CONVS = ("Conv2D", "DepthwiseConv2D")
RESULTS = ROOT / "benchmarks" / "results"


def measure(model: str, target: str, portable_glue: bool) -> dict | None:
    graph = load_model(ZOO / f"{model}.tflite")
    schedules = {op.index: {"kernel": "portable"} for op in graph.ops if op.type not in CONVS} if portable_glue else None
    report = verify_graph(graph, load_target(target), runs=1, seed=0, oracle="numpy", footprint=False,
                          schedules=schedules)
    if not report.ok or report.layer_instructions is None:
        print(f"{model} on {target}: no figure ({report.first_bad_layer})", file=sys.stderr)
        return None
    per_type: dict[str, int] = defaultdict(int)
    for op, count in zip(graph.ops, report.layer_instructions):
        per_type[op.type] += count
    return dict(per_type)


def table(results: dict) -> str:
    lines = ["# Cortex-M glue-op variants: QEMU executed instructions per op type", "",
             "Whole model, one input, bit-exact against the NumPy reference. before: glue ops on their portable "
             "kernels; after: the default variants (convolutions on their SIMD variants in both).", ""]
    for model in MODELS:
        for target in TARGETS:
            key = f"{model}/{target}"
            before, after = results.get(key, {}).get("before"), results.get(key, {}).get("after")
            if not before or not after:
                lines += [f"## {model}, {target}: not measured", ""]
                continue
            lines += [f"## {model}, {target}", "", "| op type | before | after | ratio |", "|---|---:|---:|---:|"]
            for op in sorted(before, key=lambda t: -before[t]):
                b, a = before[op], after.get(op, 0)
                lines.append(f"| {op} | {b:,} | {a:,} | {b / a:.2f}x |" if a else f"| {op} | {b:,} | {a:,} | |")
            tb, ta = sum(before.values()), sum(after.values())
            lines += [f"| **total** | **{tb:,}** | **{ta:,}** | **{tb / ta:.2f}x** |", ""]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep-before", action="store_true", help="reuse the before figures of the last json")
    parser.add_argument("--targets", nargs="+", default=list(TARGETS), choices=TARGETS,
                        help="measure these; keep the last json's figures of the others")
    args = parser.parse_args()
    out = RESULTS / "arm_glue.json"
    last = json.loads(out.read_text()) if out.exists() else {}
    previous = last if args.keep_before else {}
    results = {}
    for model in MODELS:
        if not (ZOO / f"{model}.tflite").exists():
            print(f"{model}: not in {ZOO}, skipped", file=sys.stderr)
            continue
        for target in TARGETS:
            key = f"{model}/{target}"
            if target not in args.targets:
                if key in last:
                    results[key] = last[key]
                continue
            before = previous.get(key, {}).get("before") or measure(model, target, portable_glue=True)
            results[key] = dict(before=before, after=measure(model, target, portable_glue=False))
            print(key, {k: sum(v.values()) if v else None for k, v in results[key].items()}, flush=True)
            RESULTS.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(results, indent=1) + "\n")      # after each, so a stopped run keeps its figures
    (RESULTS / "arm_glue.md").write_text(table(results))
    print(table(results))


if __name__ == "__main__":
    main()
