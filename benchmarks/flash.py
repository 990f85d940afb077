"""Flash against instructions: `--optimize speed | balanced | size` (flash_budget.py) on Cortex-M (not a test).

    .venv/bin/python benchmarks/flash.py [--targets cortex-m4 ...] [--models PATH ...] [--out PATH]

Per model and target, for the portable kernels (every conv layer `{"kernel": "portable"}`), --optimize speed,
size, balanced under the target's part (the default of `generate`), and balanced under a budget 10 % below the
speed library's flash: the library's flash (compiled and measured, footprint.py), whether it fits the part, the
layers on int8-weight kernels, and QEMU executed instructions of the whole model and of its conv/depthwise
layers, from a full-model `verify_graph` run whose outputs matched the model's own framework bit-exactly (the
TFLite interpreter's reference kernels). No tuning database: the instruction side of the choice is estimated
(the `estimate` of each variant in templates/kernels/variants.toml). Writes benchmarks/results/flash.{md,json}.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dwscodegen.backends.templates import kernel_used  # noqa: E402
from dwscodegen.errors import DwsError  # noqa: E402
from dwscodegen.flash_budget import choose  # noqa: E402
from dwscodegen.footprint import measure as measure_footprint  # noqa: E402
from dwscodegen.backends import generate_library  # noqa: E402
from dwscodegen.importers import load_model  # noqa: E402
from dwscodegen.targets import load_target  # noqa: E402
from dwscodegen.verify import verify_graph  # noqa: E402

SHARED = ROOT.parent / "shared" / "models"
MODELS = [SHARED / "kws_ref_model.tflite"] + [SHARED / "zoo" / f"{n}.tflite" for n in
                                             ("mbv1_a025_96_c2_s8", "mbv2_a035_96_s8", "mbv3s_96_s8")]
CONV = ("Conv2D", "DepthwiseConv2D")
BOARD_FLASH = 4 * 1024 * 1024      # the QEMU boards' memory: every configuration runs, fit or not


def _configs(graph, target):
    """(label, schedules, flash) of each configuration."""
    portable = {op.index: {"kernel": "portable"} for op in graph.ops if op.type in CONV}
    lib = generate_library(graph, target, "templates", portable)
    yield "portable kernels", portable, measure_footprint(lib, target).flash
    speed = choose(graph, target, "templates", "speed")
    yield "--optimize speed", speed.schedules, speed.footprint.flash
    size = choose(graph, target, "templates", "size")
    yield "--optimize size", size.schedules, size.footprint.flash
    balanced = choose(graph, target, "templates", "balanced")
    yield f"balanced, {target.flash_bytes // 1024} KB part (default)", balanced.schedules, balanced.footprint.flash
    tight = int(speed.footprint.flash * 0.9)
    under = choose(graph, target, "templates", "balanced", tight)
    yield f"balanced, --flash {tight:,} (speed - 10 %)", under.schedules, under.footprint.flash


def measure(model: Path, target_name: str) -> list[dict]:
    graph = load_model(model)
    target = load_target(target_name)
    rows = []
    for label, schedules, flash in _configs(graph, target):
        report = verify_graph(graph, target, runs=1, seed=0, timeout=1800, schedules=schedules or None,
                              flash=BOARD_FLASH)
        counts = report.layer_instructions or []
        used = {op.index: kernel_used(graph, op, target, schedules.get(op.index, {}).get("kernel"))
                for op in graph.ops if op.type in CONV}
        w8 = [i for i, k in used.items() if "_w8_" in k]
        moved = [i for i, k in used.items() if k != kernel_used(graph, graph.ops[i], target)]
        rows.append(dict(model=model.name, target=target_name, config=label, flash=flash,
                         fits=flash <= target.flash_bytes, ok=report.ok, oracle=report.oracle,
                         instructions=sum(counts),
                         conv_instructions=sum(c for op, c in zip(graph.ops, counts) if op.type in CONV),
                         int8_weight_layers=len(w8), moved_layers=len(moved),
                         conv_layers=sum(op.type in CONV for op in graph.ops)))
        print(f"{model.name} {target_name} {label}: flash {flash:,} instructions {sum(counts):,} ok {report.ok}",
              flush=True)
    return rows


def markdown(rows: list[dict]) -> str:
    lines = ["# Flash against instructions: `--optimize` (benchmarks/flash.py)", "",
             "QEMU executed instructions (exact) of one inference, bit-exact against the TFLite interpreter's "
             "reference kernels; flash of the compiled library (code + constants). No tuning database: the "
             "instruction side of the choice is estimated. `fits`: within the target file's part.", ""]
    for (model, target) in dict.fromkeys((r["model"], r["target"]) for r in rows):
        lines += [f"## {model} on {target}", "",
                  "| configuration | flash B | fits | instructions | conv/depthwise instructions | int8-weight layers "
                  "| layers off the speed kernel | bit-exact |",
                  "|---|---:|:---:|---:|---:|---:|---:|:---:|"]
        for r in rows:
            if (r["model"], r["target"]) == (model, target):
                # balanced when no mix fits: the smallest mix, which `generate` refuses (naming --flash)
                note = " (no mix fits: generate refuses)" if "(default)" in r["config"] and not r["fits"] else ""
                lines.append(f"| {r['config']}{note} | {r['flash']:,} | {'yes' if r['fits'] else 'no'} | "
                             f"{r['instructions']:,} | {r['conv_instructions']:,} | "
                             f"{r['int8_weight_layers']} of {r['conv_layers']} | {r['moved_layers']} | "
                             f"{'yes' if r['ok'] else 'NO'} |")
        lines.append("")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", nargs="+", default=["cortex-m4"])
    parser.add_argument("--models", nargs="+", type=Path, default=MODELS)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "flash")
    args = parser.parse_args()
    rows, failed = [], []
    for model in args.models:
        if not model.exists():
            print(f"# missing {model}", file=sys.stderr)
            continue
        for target in args.targets:
            try:
                rows += measure(model, target)
            except DwsError as exc:
                failed.append(f"{model.name} {target}: {exc}")
    args.out.with_suffix(".json").write_text(json.dumps(rows, indent=2) + "\n")
    text = markdown(rows) + ("\n## Did not work\n\n" + "\n".join(f"- {f}" for f in failed) + "\n" if failed else "")
    args.out.with_suffix(".md").write_text(text)
    print(text)
    return 1 if failed or not all(r["ok"] for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
