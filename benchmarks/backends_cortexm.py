"""Templates vs TVM backend, side by side: executed instructions per layer under QEMU (not a test).

    .venv/bin/python benchmarks/backends_cortexm.py [--targets cortex-m4 cortex-m55] [--models ...]

Each model is verified with both backends on each target (so every figure comes from a run whose
outputs were checked against the reference); prints a markdown table per model and target and writes
benchmarks/results/backends_cortexm.{md,json}.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dwscodegen.importers import load_model  # noqa: E402
from dwscodegen.targets import load_target  # noqa: E402
from dwscodegen.verify import verify_graph  # noqa: E402

KWS = ROOT.parent / "shared" / "models" / "kws_ref_model.tflite"


def default_models() -> list[Path]:
    models = sorted((ROOT / "examples").glob("*.json"))
    return models + ([KWS] if KWS.is_file() else [])


def measure(model: Path, target: str) -> dict:
    graph = load_model(model)
    rows = {op.index: dict(layer=op.name, op=op.type) for op in graph.ops}
    totals = {}
    for backend in ("templates", "tvm"):
        report = verify_graph(graph, load_target(target), backend=backend, runs=1, seed=0)
        if not report.ok:
            raise SystemExit(f"{model.name} on {target} ({backend}): outputs do not match the reference")
        for op, count in zip(graph.ops, report.layer_instructions):
            rows[op.index][backend] = count
        totals[backend] = sum(report.layer_instructions)
    return dict(model=model.name, target=target, layers=list(rows.values()), totals=totals)


def markdown(result: dict) -> str:
    lines = [f"### {result['model']} on {result['target']}", "",
             "| layer | op | templates | tvm | tvm / templates |", "|---|---|---:|---:|---:|"]
    for row in result["layers"] + [dict(layer="**total**", op="", **result["totals"])]:
        ratio = row["tvm"] / row["templates"] if row.get("templates") else float("nan")
        lines.append(f"| {row['layer']} | {row['op']} | {row['templates']:,} | {row['tvm']:,} | {ratio:.2f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", nargs="+", default=["cortex-m4", "cortex-m55"])
    parser.add_argument("--models", nargs="+", type=Path, default=None)
    args = parser.parse_args()
    results, text = [], ["# Templates vs TVM backend: executed instructions (QEMU 7.2, not cycles)\n",
                         f"{time.strftime('%Y-%m-%d')}, every run verified bit-exact (int8) / within tolerance "
                         "(float32) against the reference.\n"]
    for model in args.models or default_models():
        for target in args.targets:
            result = measure(model, target)
            results.append(result)
            text.append(markdown(result))
            print(markdown(result), flush=True)
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "backends_cortexm.md").write_text("\n".join(text))
    (out / "backends_cortexm.json").write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {out / 'backends_cortexm.md'}")


if __name__ == "__main__":
    main()
