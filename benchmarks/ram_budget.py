"""RAM budget vs instructions: the plans `--optimize speed --ram SIZE` takes between the lowest and the unfused
arena, each built, measured and run (not a test).

    .venv/bin/python benchmarks/ram_budget.py [--target cortex-m4] [--models zoo/mbv2_a035_96_s8 ...] [--points 16]

For each model: the planner's speed trade (planner.fastest_within) over `--points` arena budgets spaced
geometrically from the lowest plan's arena to the unfused one's, each library built as `generate --optimize
speed` builds it (generate_library with that arena budget); each distinct plan's RAM is measured (static + arena +
stack bound) and its instructions counted under QEMU in one run verified against the model's framework (the
script stops on a mismatch). The estimated extra instructions are the planner's ranking (row_fusion.
extra_instructions); the measured column is what the trade really buys. Writes benchmarks/results/
ram_budget.{md,json} and ram_budget.<target>.png.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dwscodegen.backends import generate_library  # noqa: E402
from dwscodegen.footprint import measure  # noqa: E402
from dwscodegen.importers import load_model  # noqa: E402
from dwscodegen.planner import NO_FUSION_ENV, plan_cost  # noqa: E402
from dwscodegen.targets import load_target  # noqa: E402
from dwscodegen.verify import verify_graph  # noqa: E402
from memory import _with as with_plan_env  # noqa: E402  (benchmarks/memory.py: the plan env switches)

MODELS = ROOT.parent / "shared" / "models"
DEFAULT_MODELS = ["zoo/mbv1_a025_96_c2_s8", "zoo/mbv2_a035_96_s8", "zoo/mbv3s_96_s8"]
OUT = ROOT / "benchmarks" / "results"


def trade_curve(graph, target, points: int) -> list[tuple[int, object]]:
    """(the smallest arena budget that gives it, its library) per distinct plan, lowest arena first: each library
    as `generate --optimize speed` builds it (generate_library with the arena budget)."""
    unfused = with_plan_env({NO_FUSION_ENV: "1"}, lambda: generate_library(graph, target)).arena_bytes
    lowest = generate_library(graph, target).arena_bytes
    budgets = sorted({round(lowest * (unfused / lowest) ** (i / (points - 1))) for i in range(points)} | {unfused})
    libs: dict[tuple, tuple[int, object]] = {}
    for budget in budgets:
        lib = generate_library(graph, target, arena_budget=budget)
        libs.setdefault(lib.plan.fusions, (budget, lib))
    return sorted(libs.values(), key=lambda bl: bl[1].arena_bytes)


def measure_model(path: Path, target: str, points: int) -> dict:
    graph, tgt = load_model(path), load_target(target)
    rows = []
    for budget, lib in trade_curve(graph, tgt, points):
        fp = measure(lib, tgt)
        report = verify_graph(graph, tgt, runs=1, seed=0, library=lib, measured=fp)
        if not report.ok:
            raise SystemExit(f"{path.name} (arena budget {budget:,}): outputs do not match the reference")
        rows.append(dict(arena_budget=budget, arena=lib.arena_bytes, ram=fp.ram, stack=fp.stack, flash=fp.flash,
                         chains=[f.where() for f in lib.plan.fusions], estimated_extra=plan_cost(graph, lib.plan),
                         instructions=sum(report.layer_instructions)))
        print(path.stem, rows[-1], flush=True)
    return dict(model=path.stem, plans=rows)


def markdown(models: list[dict], target: str) -> str:
    lines = [f"# RAM budget vs instructions on {target} (`--optimize speed --ram`)", "",
             "`benchmarks/ram_budget.py`: each distinct plan the planner's speed trade takes between the lowest "
             "arena (the default plan, `--optimize balanced`) and the unfused one, built and run under QEMU, "
             "verified against the model's framework. RAM = static data + arena + stack bound. `--optimize "
             "speed --ram` takes the row with the fewest instructions whose RAM fits the budget.", "",
             "| model | RAM (B) | arena (B) | row-fused chains | extra instructions (estimated) | instructions | "
             "vs unfused |", "|---|---:|---:|---|---:|---:|---:|"]
    for m in models:
        base = m["plans"][-1]["instructions"]
        for p in m["plans"]:
            chains = ", ".join(p["chains"]) or "none"
            lines.append(f"| {m['model']} | {p['ram']:,} | {p['arena']:,} | {chains} | {p['estimated_extra']:,} | "
                         f"{p['instructions']:,} | {p['instructions'] / base - 1:+.2%} |")
    return "\n".join(lines) + "\n"


def plot(models: list[dict], target: str, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for m in models:
        base = m["plans"][-1]["instructions"]
        ram = [p["ram"] / 1024 for p in m["plans"]]
        ax.step(ram, [p["instructions"] / base for p in m["plans"]], where="post", marker="o", label=m["model"])
    ax.set_xlabel("RAM: static + arena + stack bound (KiB)")
    ax.set_ylabel("instructions / unfused plan's")
    ax.set_title(f"RAM budget vs instructions, --optimize speed, {target}")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target", default="cortex-m4")
    ap.add_argument("--models", nargs="*", default=DEFAULT_MODELS)
    ap.add_argument("--points", type=int, default=16, help="arena budgets tried per model")
    args = ap.parse_args()
    models = []
    for name in args.models:
        path = MODELS / f"{name}.tflite"
        if not path.exists():
            print(f"skipping {name}: {path} is not here", file=sys.stderr)
            continue
        models.append(measure_model(path, args.target, args.points))
    (OUT / "ram_budget.json").write_text(json.dumps(dict(target=args.target, models=models), indent=2) + "\n")
    (OUT / "ram_budget.md").write_text(markdown(models, args.target))
    plot(models, args.target, OUT / f"ram_budget.{args.target}.png")
    print(markdown(models, args.target))


if __name__ == "__main__":
    main()
