"""The tvm road against the templates road on whole int8 models, Cortex-M4 and Cortex-M55 (not a test).

    .venv/bin/python benchmarks/tvm_zoo.py                          # KWS + the int8 zoo, M4 and M55; writes results/
    .venv/bin/python benchmarks/tvm_zoo.py --phase before           # record the figures as the "before" column
    .venv/bin/python benchmarks/tvm_zoo.py --models PATH --targets cortex-m4 --out /tmp/tvm_zoo

Per model and core: QEMU executed instructions of the whole model (the sum of every layer's kernel call) with
`--backend templates` and `--backend tvm`, both with default schedules, and tvm / templates against issue 12's
goal (<= 1.1). Each figure comes from a full-model `verify_graph` run (1 seeded input) whose outputs matched the
TFLite interpreter's reference kernels bit-exactly; a build that fails or differs gives no figure. Where the ratio
is above 1.0, the layers where the tvm road spends more are listed (per operator type, and the worst layers), so
the reason for a missed goal can be read off. `--phase before` stores the run as the "before" figures, which a
later default run keeps and shows beside its own. Writes <out>.md and <out>.json (default results/tvm_zoo).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dwscodegen.errors import DwsError  # noqa: E402
from dwscodegen.importers import load_model  # noqa: E402
from dwscodegen.ops import OPS, layer_kind  # noqa: E402
from dwscodegen.targets import load_target  # noqa: E402
from dwscodegen.verify import verify_graph  # noqa: E402

SHARED = ROOT.parent / "shared" / "models"
MODELS = ["kws_ref_model.tflite", "zoo/mbv1_a025_96_c2_s8.tflite", "zoo/mbv2_a035_96_s8.tflite",
          "zoo/mbv3s_96_s8.tflite", "zoo/effb0_96_s8.tflite"]
TARGETS = ["cortex-m4", "cortex-m55"]
BACKENDS = ["templates", "tvm"]
GOAL = 1.1          # issue 12: tvm within 1.1x of the templates road's whole-model instructions
WORST = 6           # layers listed per gap
# "<model> <core>" -> why the goal is missed there, for the rows that miss it (read off the gap tables)
REASONS: dict[str, str] = {}
# what the "before" figures of results/tvm_zoo.json measured (a `--phase before` run)
BEFORE = ("tvm (before): the tvm road at commit 818602a, before its glue ops (FullyConnected, Mul, table lookups) "
          "were tensorized with DSP / MVE micro-kernels")


def _one_line(exc: Exception, limit: int = 300) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _group(graph, op) -> str:
    """Operator type, and for convolutions the layer kind (pointwise / depthwise / conv)."""
    return f"{op.type} ({layer_kind(graph, op)})" if OPS[op.type].kind == "conv" else op.type


def run(graph, target: str, backend: str) -> dict:
    started = time.time()
    try:
        report = verify_graph(graph, load_target(target), backend=backend, runs=1, seed=0, timeout=1800,
                              footprint=False)
    except DwsError as exc:
        return dict(ok=False, error=_one_line(exc), seconds=round(time.time() - started, 1))
    if not report.ok:
        return dict(ok=False, error=report.first_bad_layer or "outputs differ from the oracle",
                    seconds=round(time.time() - started, 1))
    return dict(ok=True, oracle=report.oracle, layers=report.layer_instructions, fused=report.row_fused,
                total=sum(report.layer_instructions), seconds=round(time.time() - started, 1))


def gaps(graph, runs: dict) -> dict:
    """Where tvm spends more than templates: per operator group, and the worst layers. The templates road runs
    row-fused pairs (row_fusion.py) as one call counted on the consumer; the tvm road's pair is summed onto the
    consumer too, so both compare the same work (the pair is named "producer+consumer")."""
    fused = {int(p): int(c) for p, c in runs["templates"].get("fused", {}).items()}
    tvm = list(runs["tvm"]["layers"])
    for producer, consumer in fused.items():
        tvm[consumer] += tvm[producer]
        tvm[producer] = 0
    into = {c: p for p, c in fused.items()}
    per_group: dict = defaultdict(lambda: [0, 0, 0])
    layers = []
    for op in graph.ops:
        t, v = runs["templates"]["layers"][op.index], tvm[op.index]
        group = per_group[_group(graph, op)]
        group[0] += 1
        group[1] += t
        group[2] += v
        index = f"{into[op.index]}+{op.index}" if op.index in into else op.index
        name = f"{graph.ops[into[op.index]].name}+{op.name}" if op.index in into else op.name
        layers.append(dict(index=index, name=name, group=_group(graph, op), templates=t, tvm=v))
    layers.sort(key=lambda r: r["templates"] - r["tvm"])
    return dict(groups={k: dict(count=c, templates=t, tvm=v) for k, (c, t, v) in sorted(per_group.items())},
                worst=[r for r in layers[:WORST] if r["tvm"] > r["templates"]])


def measure(path: Path, targets: list[str]) -> dict:
    row: dict = dict(model=path.name, results={})
    try:
        graph = load_model(path)
    except DwsError as exc:
        return dict(row, error=f"import: {_one_line(exc)}")
    for target in targets:
        runs = {}
        for backend in BACKENDS:
            print(f"  {path.name} {target} {backend} ...", flush=True)
            runs[backend] = run(graph, target, backend)
            print(f"    {json.dumps({k: v for k, v in runs[backend].items() if k != 'layers'})}", flush=True)
        cell = {b: {k: v for k, v in r.items() if k != "layers"} for b, r in runs.items()}
        if all(r["ok"] for r in runs.values()):
            cell["ratio"] = round(runs["tvm"]["total"] / runs["templates"]["total"], 3)
            cell["gaps"] = gaps(graph, runs)
        row["results"][target] = cell
    return row


def _n(value) -> str:
    return f"{value:,}" if isinstance(value, int) else "-"


def _ratio(cell: dict | None) -> str:
    return f"{cell['ratio']:.3f}" if cell and "ratio" in cell else "-"


def markdown(rows: list[dict], before: dict, reasons: dict) -> str:
    lines = ["| model | core | templates | tvm (before) | ratio (before) | tvm | ratio | goal <= 1.1 |",
             "|---|---|---:|---:|---:|---:|---:|---|"]
    notes, details = [], []
    for row in rows:
        if "error" in row:
            notes.append(f"- {row['model']}: {row['error']}")
            continue
        for target, cell in row["results"].items():
            old = before.get(row["model"], {}).get(target)
            failed = [f"{b}: {cell[b]['error']}" for b in BACKENDS if not cell[b]["ok"]]
            notes += [f"- {row['model']} on {target}, {f}" for f in failed]
            if "ratio" in cell:
                met = "met" if cell["ratio"] <= GOAL else "missed: " + reasons.get(f"{row['model']} {target}",
                                                                                   "see the gaps below")
            else:
                met = "no figure"
            lines.append(f"| {row['model']} | {target} | {_n(cell['templates'].get('total'))} | "
                         f"{_n(old['tvm'].get('total')) if old else '-'} | {_ratio(old)} | "
                         f"{_n(cell['tvm'].get('total'))} | {_ratio(cell)} | {met} |")
            if cell.get("ratio", 0) > 1.0:
                details.append(_detail(row["model"], target, cell["gaps"]))
    text = "\n".join(lines) + "\n"
    if notes:
        text += "\nNo figure:\n\n" + "\n".join(notes) + "\n"
    changes = [_changes(row["model"], target, before.get(row["model"], {}).get(target), cell)
               for row in rows if "results" in row for target, cell in row["results"].items()]
    if any(changes):
        text += ("\n## What changed on the tvm road, per operator type\n\nOperator types whose tvm instructions moved "
                 "by more than 1% from the before figures.\n\n"
                 "| model | core | operator | layers | templates | tvm (before) | tvm |\n|---|---|---|---:|---:|---:|---:|\n"
                 + "".join(changes))
    if details:
        text += "\n## Where the tvm road spends more\n\n" + "\n".join(details)
    return text


def _changes(model: str, target: str, old: dict | None, cell: dict) -> str:
    if not old or "gaps" not in old or "gaps" not in cell:
        return ""
    lines = []
    for group, g in cell["gaps"]["groups"].items():
        was = old["gaps"]["groups"].get(group)
        if was and abs(g["tvm"] - was["tvm"]) > 0.01 * was["tvm"]:
            lines.append(f"| {model} | {target} | {group} | {g['count']} | {g['templates']:,} | {was['tvm']:,} | "
                         f"{g['tvm']:,} |\n")
    return "".join(lines)


def _detail(model: str, target: str, gap: dict) -> str:
    lines = [f"### {model} on {target}", "", "| operator | layers | templates | tvm | tvm - templates |",
             "|---|---:|---:|---:|---:|"]
    for group, g in sorted(gap["groups"].items(), key=lambda kv: kv[1]["templates"] - kv[1]["tvm"]):
        lines.append(f"| {group} | {g['count']} | {g['templates']:,} | {g['tvm']:,} | {g['tvm'] - g['templates']:+,} |")
    if gap["worst"]:
        lines += ["", "Layers with the largest gap: " + "; ".join(
            f"{r['index']} {r['name']} ({r['group']}): {r['templates']:,} -> {r['tvm']:,}" for r in gap["worst"])]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", type=Path, default=None)
    parser.add_argument("--targets", nargs="+", default=TARGETS)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "tvm_zoo")
    parser.add_argument("--phase", choices=["before", "after"], default="after",
                        help="before: store this run as the before figures; after (default): the current figures")
    parser.add_argument("--update", action="store_true",
                        help="merge --models/--targets into the existing --out .json instead of starting afresh")
    parser.add_argument("--render", action="store_true", help="only rewrite <out>.md from <out>.json")
    args = parser.parse_args(argv)
    models = args.models or [SHARED / m for m in MODELS if (SHARED / m).is_file()]
    if not models:
        print(f"no models: {SHARED} is absent (it sits beside a checkout as ../shared)")
        return 0
    out_json = args.out.with_suffix(".json")
    saved = json.loads(out_json.read_text()) if out_json.is_file() else {}
    key = "before" if args.phase == "before" else "rows"
    rows = saved.get(key, []) if args.update or args.render else []
    for path in [] if args.render else models:
        print(f"{path.name} ...", flush=True)
        row = measure(path, args.targets)
        old = next((r for r in rows if r["model"] == row["model"]), None)
        if old is not None and "results" in old and "results" in row:
            old["results"].update(row["results"])
        elif old is not None:
            rows[rows.index(old)] = row
        else:
            rows.append(row)
    saved[key] = rows
    before = {r["model"]: r.get("results", {}) for r in saved.get("before", [])}
    shown = saved.get("rows") or saved.get("before", [])
    text = (f"# The tvm road against the templates road, whole int8 models ({time.strftime('%Y-%m-%d')})\n\n"
            "QEMU 7.2 executed instructions (not cycles) of the whole model, default schedules on both roads, each "
            "from a run whose outputs matched the model's oracle (the TFLite interpreter's reference kernels, bit-exact; "
            "onnxruntime for .onnx, int8 within its 1 LSB of float rounding). ratio = "
            f"tvm / templates; issue 12's goal is <= 1.1. {BEFORE}. Made by `benchmarks/tvm_zoo.py`.\n\n"
            + markdown(shown, before, REASONS))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    out_json.write_text(json.dumps(saved, indent=1) + "\n")
    args.out.with_suffix(".md").write_text(text)
    print(text)
    print(f"wrote {args.out.with_suffix('.md')} and .json")
    ok = all("error" not in r and all("ratio" in c for c in r["results"].values()) for r in shown)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
