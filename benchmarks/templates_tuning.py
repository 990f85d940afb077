"""What `tune --backend templates` finds in the variant registry's space (templates/kernels/variants.toml): every
candidate of every distinct layer, instructions and flash (the tuner's two objectives), and the kernel mix the flash
budget picks from those measurements at the part's budget and 10 % under the default library's flash.

    .venv/bin/python benchmarks/templates_tuning.py [--target cortex-m4] [--trials 12]

Runs `tune` (resumable: the database benchmarks/results/tuning/kws_ref_model.<target>.templates_space.jsonl keeps
what it measured; each candidate is built, checked bit-exactly against the reference and counted under QEMU), then
writes benchmarks/results/templates_tuning_<target>.md. Not a test.
"""
from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from click.testing import CliRunner  # noqa: E402

from dwscodegen.backends.templates import kernel_used  # noqa: E402
from dwscodegen.cli import main as cli  # noqa: E402
from dwscodegen.flash_budget import choose  # noqa: E402
from dwscodegen.importers import load_model  # noqa: E402
from dwscodegen.targets import load_target  # noqa: E402
from dwscodegen.tuning import distinct_layers, graph_hash, layer_key  # noqa: E402
from dwscodegen.tuning_db import TuningDB  # noqa: E402
from dwscodegen.tuning_select import select_schedules  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
KWS = ROOT.parent / "shared" / "models" / "kws_ref_model.tflite"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--target", default="cortex-m4")
    parser.add_argument("--trials", type=int, default=12)
    args = parser.parse_args()
    db_path = RESULTS / "tuning" / f"kws_ref_model.{args.target}.templates_space.jsonl"
    run = CliRunner().invoke(cli, ["tune", str(KWS), "-t", args.target, "--backend", "templates", "--trials",
                                   str(args.trials), "--db", str(db_path), "--plot", str(db_path.with_suffix(".png"))])
    if run.exit_code != 0:
        raise SystemExit(run.output)
    graph, target = load_model(KWS), load_target(args.target)
    db = TuningDB.open(db_path).of_model(graph_hash(graph))
    by_key = defaultdict(list)
    for r in db.records:
        if r.get("ok") and r["backend"] == "templates" and r["target"] == args.target:
            by_key[r["key"]].append(r)
    lines = [f"# `tune --backend templates` on KWS, {args.target}: the variant registry's space", "",
             "Executed instructions under QEMU (each layer alone, every candidate bit-exact against the reference) "
             "and the one-layer library's flash, per candidate: the default schedule `{}` (the preferred variant), "
             "`portable`, and each variant of templates/kernels/variants.toml that applies (register tiles pixels x "
             f"channels, int16 / int8 weights, K-loop unroll, loop order, depthwise forms), `tune --trials {args.trials}`. "
             "vs default: the candidate's instructions over the default's.", ""]
    for op in distinct_layers(graph):
        records = by_key.get(layer_key(graph, op), [])
        if len(records) < 2:
            continue
        default = next((r for r in records if r["schedule"] == {}), None)
        name = kernel_used(graph, op, target)
        lines += [f"## {op.where()}", "", "| candidate | instructions | vs default | flash (B) |", "|---|---:|---:|---:|"]
        for r in sorted(records, key=lambda r: (r["cost"], r["flash"])):
            kernel = r["schedule"].get("kernel") or f"{{}} = {name}"
            ratio = f"{r['cost'] / default['cost']:.3f}" if default else "-"
            lines.append(f"| {kernel} | {r['cost']:,.0f} | {ratio} | {r['flash']:,} |")
        lines.append("")
    selection = select_schedules(graph, db, args.target, "templates")
    speed = choose(graph, target, "templates", "speed", None, selection.schedules, db.records)
    default_flash = choose(graph, target, "templates", "speed").footprint.flash
    lines += ["## The flash budget from these measurements", "",
              "| budget | flash (B) | fits | instructions in the tuned layers | layers off their fastest kernel |",
              "|---|---:|---|---:|---|"]
    for label, budget in [(f"the part ({target.flash_bytes:,} B)", None),
                          (f"10 % under the default's flash ({int(default_flash * 0.9):,} B)", int(default_flash * 0.9))]:
        mix = choose(graph, target, "templates", "balanced", budget, selection.schedules, db.records)
        moved = [f"{op.name}: {mix.schedules[op.index]['kernel']}" for op in graph.ops
                 if mix.schedules.get(op.index) != speed.schedules.get(op.index) and op.index in mix.schedules]
        total = mix.instructions()
        lines.append(f"| {label} | {mix.footprint.flash:,} | {'yes' if mix.fits else 'no'} | "
                     f"{'-' if total is None else f'{total:,.0f}'} | {'; '.join(moved) or '-'} |")
    lines += ["", f"The default library: {default_flash:,} B of flash.", ""]
    out = RESULTS / f"templates_tuning_{args.target}.md"
    out.write_text("\n".join(lines))
    print("\n".join(lines))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
