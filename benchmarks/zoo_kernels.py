"""Which kernel every int8 conv / depthwise layer of real models gets on each Cortex-M core, and what it costs per
MAC against CMSIS-NN's ranges (issue 10's zoo goal; not a test).

    .venv/bin/python benchmarks/zoo_kernels.py [--targets cortex-m4 cortex-m55] [--models PATH ...] [--count]

Generation only by default: per model and core, the layers on the portable kernel or on the generic 64-bit
requantization, each with its shape, so the reason can be read off (e.g. a depthwise multiplier above 1 on
x86, a window of more than 25 taps). With --count, one verified QEMU run per model and core (`verify_graph`
against the NumPy reference: bit-exact) gives the executed instructions per MAC of each layer kind
(3x3 depthwise, other depthwise, pointwise, the first conv, other convs) beside CMSIS-NN's ranges from the issue.
Writes benchmarks/results/zoo_kernels.{md,json}.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dwscodegen.backends.templates import kernel_requant_mode, kernel_used, simd  # noqa: E402
from dwscodegen.importers import load_model  # noqa: E402
from dwscodegen.ops import conv_kind, describe_layer, op_macs  # noqa: E402
from dwscodegen.targets import load_target  # noqa: E402
from dwscodegen.verify import verify_graph  # noqa: E402

SHARED = ROOT.parent / "shared" / "models"
# CMSIS-NN instructions/MAC by layer kind over KWS and a trained MobileNetV1-0.25 (issue 10)
CMSIS_NN = {"depthwise 3x3": {"cortex-m3": (8.0, 10.8), "cortex-m4": (7.4, 10.0), "cortex-m55": (2.3, 5.2)},
            "pointwise": {"cortex-m3": (2.9, 7.1), "cortex-m4": (1.8, 6.6), "cortex-m55": (0.25, 2.2)},
            "first conv": {"cortex-m3": (6.9, 6.9), "cortex-m4": (6.2, 6.2), "cortex-m55": (2.0, 2.0)}}


def default_models() -> list[Path]:
    zoo = sorted(p for p in (SHARED / "zoo").glob("*_s8.tflite"))
    return [SHARED / "kws_ref_model.tflite", *zoo] if zoo else []


def layer_kind(graph, op, first: bool) -> str:
    kind = conv_kind(graph, op)
    if kind == "depthwise":
        kh, kw = graph.tensor(op.inputs[1]).shape[1:3]
        return "depthwise 3x3" if (kh, kw) == (3, 3) else "depthwise other"
    if kind == "pointwise":
        return "pointwise"
    return "first conv" if first else "conv other"


def audit(graph, target) -> list[dict]:
    """Per int8 conv / depthwise layer: its kind, kernel, requantization mode."""
    rows, first = [], True
    for op in graph.ops:
        if op.type not in ("Conv2D", "DepthwiseConv2D") or graph.tensor(op.inputs[0]).dtype != "int8":
            continue
        rows.append(dict(index=op.index, name=op.name, kind=layer_kind(graph, op, first),
                         layer=describe_layer(graph, op), macs=op_macs(graph, op),
                         kernel=kernel_used(graph, op, target), mode=kernel_requant_mode(graph, op, target) or ""))
        first = False
    return rows


def per_mac(rows: list[dict], counts: list[int]) -> dict[str, float]:
    macs, instr = defaultdict(int), defaultdict(int)
    for row in rows:
        macs[row["kind"]] += row["macs"]
        instr[row["kind"]] += counts[row["index"]]
    return {kind: instr[kind] / macs[kind] for kind in macs if macs[kind]}


def report(results: list[dict]) -> str:
    lines = ["# Kernels of real models' int8 conv layers on Cortex-M", "",
             "Per model and core: the int8 Conv2D / DepthwiseConv2D layers, how many run a SIMD variant, and every "
             "layer on the portable kernel or the generic 64-bit requantization. With `--count`: QEMU executed "
             "instructions (not cycles) per MAC by layer kind, from one run bit-exact against the NumPy reference, "
             "beside CMSIS-NN's range (issue 10).", "",
             "| model | target | conv layers | SIMD | generic requant | portable | instructions/MAC by kind (CMSIS-NN range) |",
             "|---|---|---:|---:|---:|---:|---|"]
    exceptions = []
    for r in results:
        rows = r["layers"]
        portable = [x for x in rows if x["kernel"] == simd.PORTABLE]
        generic = [x for x in rows if x["mode"] == "generic"]
        costs = "; ".join(
            f"{kind} {value:.2f}" + (f" ({CMSIS_NN[kind][r['target']][0]}-{CMSIS_NN[kind][r['target']][1]})"
                                     if r["target"] in CMSIS_NN.get(kind, {}) else "")
            for kind, value in sorted(r.get("per_mac", {}).items()))
        lines.append(f"| {r['model']} | {r['target']} | {len(rows)} | {len(rows) - len(portable)} | {len(generic)} "
                     f"| {len(portable)} | {costs or '-'} |")
        exceptions += [f"- {r['model']} on {r['target']}: {x['name']} ({x['layer']}): {x['kernel']} {x['mode']}".rstrip()
                       for x in portable + generic]
    lines += ["", "Layers on the portable kernel or the generic requantization:", ""] + (exceptions or ["- none"])
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--targets", nargs="+", default=["cortex-m3", "cortex-m4", "cortex-m7", "cortex-m33", "cortex-m55"])
    ap.add_argument("--models", nargs="+", type=Path, default=None)
    ap.add_argument("--count", action="store_true", help="also run each model once under QEMU (instructions/MAC)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "zoo_kernels")
    args = ap.parse_args()
    models = args.models or default_models()
    if not models:
        sys.exit("no models: give --models, or put ../shared/models beside the project")
    results = []
    for model in models:
        graph = load_model(model)
        for name in args.targets:
            target = load_target(name)
            row = dict(model=model.name, target=name, layers=audit(graph, target))
            if args.count:
                rep = verify_graph(graph, target, runs=1, seed=0, oracle="numpy", timeout=1800, footprint=False)
                if not rep.ok:
                    sys.exit(f"{model.name} on {name}: outputs differ from the NumPy reference")
                row["per_mac"] = per_mac(row["layers"], rep.layer_instructions)
            print(f"{model.name} {name}: {sum(x['kernel'] != simd.PORTABLE for x in row['layers'])}/"
                  f"{len(row['layers'])} SIMD", {k: round(v, 2) for k, v in row.get("per_mac", {}).items()}, flush=True)
            results.append(row)
    text = report(results)
    print(text)
    args.out.with_suffix(".md").write_text(text)
    args.out.with_suffix(".json").write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
