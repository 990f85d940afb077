"""The model zoo (../shared/models/zoo, plus MLPerf Tiny KWS) end to end, per model: operators, MACs, flash and
RAM of the generated library, and QEMU executed instructions on Cortex-M4 and Cortex-M55 (not a test).

    .venv/bin/python benchmarks/zoo.py [--targets cortex-m4 cortex-m55] [--models PATH ...] [--out PATH]

Every instruction count comes from a full-model `verify_graph` run whose outputs matched the model's own
framework (the TFLite interpreter's reference kernels for .tflite, onnxruntime for .onnx): int8 bit-exact,
float32 within tolerance. The part size is lifted to the QEMU board's memory (the zoo's models are larger
than a typical Cortex-M4 part; the table lists what they need). A model that does not import, build or match
gets no figure: the table says why. Writes benchmarks/results/zoo.{md,json}.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dwscodegen.errors import DwsError  # noqa: E402
from dwscodegen.importers import load_model  # noqa: E402
from dwscodegen.ops import op_macs  # noqa: E402
from dwscodegen.targets import load_target  # noqa: E402
from dwscodegen.verify import verify_graph  # noqa: E402

SHARED = ROOT.parent / "shared" / "models"


def default_models() -> list[Path]:
    found = sorted((SHARED / "zoo").glob("*.tflite")) + sorted((SHARED / "zoo").glob("*.onnx"))
    return [SHARED / "kws_ref_model.tflite"] + found if found else []


def _one_line(exc: Exception, limit: int = 240) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def measure(model: Path, targets: list[str]) -> dict:
    row: dict = dict(model=model.name)
    try:
        graph = load_model(model)
    except DwsError as exc:
        return dict(row, error=f"import: {_one_line(exc)}")
    row.update(operators=dict(sorted(Counter(op.type for op in graph.ops).items())),
               macs=sum(op_macs(graph, op) for op in graph.ops),
               dtypes="/".join(sorted(graph.activation_dtypes())), results={})
    for name in targets:
        started = time.time()
        try:
            report = verify_graph(graph, load_target(name), runs=1, seed=0, timeout=1800)
        except DwsError as exc:
            row["results"][name] = dict(error=_one_line(exc))
            continue
        result = dict(ok=report.ok, oracle=report.oracle, flash=report.footprint.flash, ram=report.footprint.ram,
                      seconds=round(time.time() - started, 1))
        if report.ok and report.layer_instructions:
            result["instructions"] = sum(report.layer_instructions)
        if not report.ok:
            result["error"] = report.first_bad_layer or "outputs differ from the oracle"
        row["results"][name] = result
    return row


def markdown(rows: list[dict], targets: list[str]) -> str:
    head = "| model | activations | operators | MACs | " + " | ".join(
        f"{t} flash | {t} RAM | {t} instructions" for t in targets) + " |"
    lines = [head, "|" + "---|" * (4 + 3 * len(targets))]
    notes = []
    for row in rows:
        if "error" in row:
            lines.append(f"| {row['model']} | - | - | - |" + " - | - | - |" * len(targets))
            notes.append(f"- {row['model']}: {row['error']}")
            continue
        ops = ", ".join(f"{k} {v}" for k, v in row["operators"].items())
        cells = []
        for t in targets:
            r = row["results"][t]
            if r.get("ok"):
                cells += [f"{r['flash']:,}", f"{r['ram']:,}", f"{r['instructions']:,}" if "instructions" in r
                          else "verified (native: no count)"]
            else:
                cells += [f"{r.get('flash', 0):,}" if "flash" in r else "-", f"{r.get('ram', 0):,}" if "ram" in r else "-",
                          "fails"]
                notes.append(f"- {row['model']} on {t}: {r.get('error', '?')}")
        lines.append(f"| {row['model']} | {row['dtypes']} | {ops} | {row['macs']:,} | " + " | ".join(cells) + " |")
    text = "\n".join(lines) + "\n"
    if notes:
        text += "\nWhat did not work:\n\n" + "\n".join(notes) + "\n"
    return text


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", nargs="+", default=["cortex-m4", "cortex-m55"])
    parser.add_argument("--models", nargs="+", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "zoo")
    parser.add_argument("--update", action="store_true",
                        help="measure only --models on --targets and merge them into the existing --out .json")
    args = parser.parse_args(argv)
    models = args.models or default_models()
    if not models:
        print(f"no models: {SHARED / 'zoo'} is absent (it sits beside a checkout as ../shared)")
        return 0
    rows = json.loads(args.out.with_suffix(".json").read_text()) if args.update else []
    for model in models:
        print(f"{model.name} ...", flush=True)
        row = measure(model, args.targets)
        print(json.dumps(row.get("results", row.get("error"))), flush=True)
        old = next((r for r in rows if r["model"] == row["model"]), None)
        if old is None:
            rows.append(row)
        elif "results" in row and "results" in old:
            old["results"].update(row["results"])
        else:
            rows[rows.index(old)] = row
    targets = list(dict.fromkeys(t for r in rows for t in r.get("results", {}))) or args.targets
    text = (f"# The model zoo end to end ({time.strftime('%Y-%m-%d')})\n\n"
            "QEMU 7.2 executed instructions (not cycles) of the whole model, flash and RAM (bytes) of the generated "
            "library (templates backend, default kernels), each from a run verified against the model's own "
            "framework.\n\n" + markdown(rows, targets))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".md").write_text(text)
    args.out.with_suffix(".json").write_text(json.dumps(rows, indent=2) + "\n")
    print(text)
    print(f"wrote {args.out.with_suffix('.md')} and .json")
    return 0 if all("error" not in r and all(v.get("ok") for v in r["results"].values()) for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
