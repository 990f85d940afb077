"""RAM of the generated libraries on Cortex-M4 before and after in-place placement, and what it costs in
executed instructions (not a test).

    .venv/bin/python benchmarks/memory.py [--target cortex-m4] [--count kws_ref_model mbv1_a025_96_c2_s8 ...]

RAM = static data + arena (bss) + the stack bound (footprint.measure: gcc -fstack-usage), for each plan:
- disjoint: an op's output never overlaps its inputs (DWSCODEGEN_DISJOINT_ARENA=1; the plan before issue 13);
- in place: outputs overlap their dying input by their kernel's lag, no moves (DWSCODEGEN_ARENA_NO_MOVES=1);
- in place + moves: outputs written below their input are moved back where lags would add up
  (DWSCODEGEN_NO_ROW_FUSION=1);
- in place + moves + row pairs: besides, consecutive conv-like pairs run row by row through a window of the
  consumer's rows where that lowers the arena (DWSCODEGEN_ROW_FUSION_PAIRS=1; the default before chains);
- in place + moves + row fusion: the default; chains of 2 or more conv-like and element-wise layers run row by
  row, each middle tensor only a window of its reader's rows, where that lowers the arena (row_fusion.py).
Instructions: QEMU executed instructions of one verified run (outputs checked against the model's framework)
for the models named by --count. Writes benchmarks/results/memory.{md,json}.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dwscodegen.backends import generate_library  # noqa: E402
from dwscodegen.footprint import measure  # noqa: E402
from dwscodegen.importers import load_model  # noqa: E402
from dwscodegen.planner import DISJOINT_ENV, NO_FUSION_ENV, NO_MOVES_ENV, PAIRS_ONLY_ENV  # noqa: E402
from dwscodegen.targets import load_target  # noqa: E402
from dwscodegen.verify import verify_graph  # noqa: E402

MODELS = ROOT.parent / "shared" / "models"
DEFAULT_MODELS = ["kws_ref_model", "kws_ref_model_float32", "zoo/mbv1_a025_96_c2_s8", "zoo/mbv1_a025_96_c2_f32",
                  "zoo/mbv2_a035_96_s8", "zoo/mbv2_a035_96_f32", "zoo/mbv3s_96_s8", "zoo/mbv3s_96_f32",
                  "zoo/effb0_96_s8"]
FUSED = "in place + moves + row fusion"
PAIRS = "in place + moves + row pairs"
KWS_BEFORE = 3_561_950   # KWS int8 instructions on cortex-m4 before issue 13's plans
PLANS = {"disjoint": {DISJOINT_ENV: "1"}, "in place": {NO_MOVES_ENV: "1", NO_FUSION_ENV: "1"},
         "in place + moves": {NO_FUSION_ENV: "1"}, PAIRS: {PAIRS_ONLY_ENV: "1"}, FUSED: {}}


def _with(env: dict, fn):
    saved = {k: os.environ.get(k) for k in (DISJOINT_ENV, NO_MOVES_ENV, NO_FUSION_ENV, PAIRS_ONLY_ENV)}
    for k in saved:
        os.environ.pop(k, None)
    os.environ.update(env)
    try:
        return fn()
    finally:
        for k, v in saved.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)


def measure_model(path: Path, target: str, count: bool) -> dict:
    graph, tgt = load_model(path), load_target(target)
    row = dict(model=path.stem, plans={})
    for plan, env in PLANS.items():
        def one():
            lib = generate_library(graph, tgt)
            fp = measure(lib, tgt)
            result = dict(arena=lib.arena_bytes, data=fp.data, bss=fp.bss, stack=fp.stack, ram=fp.ram,
                          in_place=len(lib.plan.overlaps), moves=len(lib.plan.moves), flash=fp.flash,
                          fused=len(lib.plan.fusions), fused_ops=sum(len(f.ops) for f in lib.plan.fusions),
                          windows=sum(f.window_bytes for f in lib.plan.fusions))
            if count:
                report = verify_graph(graph, tgt, runs=1, seed=0, footprint=False)
                if not report.ok:
                    raise SystemExit(f"{path.name} ({plan}): outputs do not match the reference")
                result["instructions"] = sum(report.layer_instructions)
            return result
        row["plans"][plan] = _with(env, one)
        print(path.stem, plan, row["plans"][plan], flush=True)
    return row


def markdown(rows: list[dict], target: str) -> str:
    lines = [f"# RAM on {target}: in-place placement and row fusion (issue 13)", "",
             "RAM = static data + arena + stack bound (bytes); `benchmarks/memory.py` (see its docstring for the "
             "five plans). Instructions: QEMU executed instructions of one verified run (bit-exact against the "
             "model's framework, else the script stops). Before = disjoint, after = the default plan (in place + "
             "moves + row fusion of chains).", "",
             "| model | disjoint RAM | in place RAM | in place + moves RAM | + row pairs RAM | + row chains RAM | "
             "arena before -> after | RAM after / before | instructions before | after | after / before |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for row in rows:
        p = row["plans"]
        a, b = p["disjoint"], p[FUSED]
        ins = [f"{a['instructions']:,}", f"{b['instructions']:,}", f"{b['instructions'] / a['instructions']:.3f}"] \
            if "instructions" in a else ["", "", ""]
        lines.append(f"| {row['model']} | {a['ram']:,} | {p['in place']['ram']:,} | {p['in place + moves']['ram']:,} | "
                     f"{p[PAIRS]['ram']:,} | {b['ram']:,} | {a['arena']:,} -> {b['arena']:,} | {b['ram'] / a['ram']:.3f} | "
                     + " | ".join(ins) + " |")
    lines += ["", "## RAM budget vs instructions", "",
              "Each plan is a point on the trade: in place costs no instructions beyond the kernels' own "
              "(their input parameter loses `restrict`); each move costs one word-by-word copy of the moved "
              "tensor (dws_arena_move). Where moves do not lower the arena, none is kept. Without fusion "
              "MobileNetV1/V2 end at their largest single tensor plus a lag (mbv1: the 48x48x16 pointwise "
              "output, 36,864 B; mbv2: 48x48x48, 110,592 B); a row fusion never stores such a middle tensor, "
              "only a window of its reader's KH rows (the windows column: their bytes, planned in the arena); it costs the "
              "kept window rows copied once per row and one call per row, no arithmetic. A chain (expand -> dw -> "
              "project) stores none of its middle tensors; with pairs only, one of each block's stays whole.", "",
              "| model | plan | RAM | arena | in place | moves | fused chains (ops) | windows | flash | instructions |",
              "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for row in rows:
        for plan, p in row["plans"].items():
            ins = f"{p['instructions']:,}" if "instructions" in p else ""
            lines.append(f"| {row['model']} | {plan} | {p['ram']:,} | {p['arena']:,} | {p['in_place']} | "
                         f"{p['moves']} | {p['fused']} ({p.get('fused_ops', 2 * p['fused'])}) | {p['windows']:,} | {p['flash']:,} | {ins} |")
    lines += ["", "## Goals (issue 13)", ""]
    by = {row["model"]: row["plans"] for row in rows}
    for model, limit, what in (("kws_ref_model", 9 * 1024, "KWS int8 <= 9 KiB"),
                               ("mbv1_a025_96_c2_s8", 36 * 1024, "MobileNetV1-0.25 96x96 int8 <= 36 KiB")):
        if model in by:
            ram = by[model][FUSED]["ram"]
            lines.append(f"- {what}: {ram:,} B, {'met' if ram <= limit else 'NOT met'} ({limit:,} B).")
    kws = by.get("kws_ref_model", {}).get(FUSED, {})
    if "instructions" in kws:
        lines.append(f"- KWS instructions at the default plan: {kws['instructions']:,}, "
                     f"{kws['instructions'] / KWS_BEFORE - 1:+.2%} against the {KWS_BEFORE:,} of the disjoint plan "
                     "when issue 13 was filed (goal: at most +5 %).")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target", default="cortex-m4")
    ap.add_argument("--models", nargs="*", default=DEFAULT_MODELS)
    ap.add_argument("--count", nargs="*", default=["kws_ref_model", "mbv1_a025_96_c2_s8", "mbv2_a035_96_s8", "mbv3s_96_s8"],
                    help="models (stems) whose instructions are counted under QEMU")
    args = ap.parse_args()
    rows = []
    for name in args.models:
        path = MODELS / f"{name}.tflite"
        if not path.exists():
            print(f"skipping {name}: {path} is not here", file=sys.stderr)
            continue
        rows.append(measure_model(path, args.target, Path(name).name in args.count))
    out = ROOT / "benchmarks" / "results"
    (out / "memory.json").write_text(json.dumps(dict(target=args.target, rows=rows), indent=2) + "\n")
    (out / "memory.md").write_text(markdown(rows, args.target))
    print(markdown(rows, args.target))


if __name__ == "__main__":
    main()
