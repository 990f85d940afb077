"""Depthwise layers on Cortex-M: the portable kernel vs the SIMD variant, executed instructions under QEMU.

    .venv/bin/python benchmarks/depthwise_matrix.py                   # the whole matrix on M4 and M55 (~6 min)
    .venv/bin/python benchmarks/depthwise_matrix.py --targets cortex-m7 --out out/depthwise_m7
    .venv/bin/python benchmarks/depthwise_matrix.py --limit 12        # the first 12 layers only, writes out/

Issue 16's goal: every depthwise layer of the matrix (multiplier 1, 2, 4; kernels 3x3, 5x5, 7x7, 9x9, 1x9, 9x1;
stride 1, 2; dilation 1, 2; SAME and VALID; 8-96 output channels, cycling over the layers) runs a SIMD variant on
cortex-m4 and cortex-m55 and takes at least GOAL times fewer instructions than the portable kernel. Each layer is
a one-op int8 graph (tests/support/layers.py: seeded weights, per-channel scales chosen as a calibrating
quantizer would) on a 20x20 input (1xK: 12x48, Kx1: 48x12, a long axis along the kernel as in audio
models); each build is verified bit-exact against the NumPy reference (TFLite
semantics) on 2 seeded inputs, and a build that does not match gives no figure. "portable" is the same layer
with DWSCODEGEN_PORTABLE_KERNELS semantics (schedule {"kernel": "portable"}); "SIMD" is the default choice
(`kernel_used` names the variant). Costs are QEMU executed instructions of the layer's kernel call
(verify_graph's report.layer_instructions), not cycles.

Output: markdown on stdout and in <out>.md (default benchmarks/results/depthwise_matrix), everything in
<out>.json. Exits 1 when a build fails to match or the goal is not met.
"""
from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dwscodegen.backends.templates import kernel_used  # noqa: E402
from dwscodegen.errors import DwsError  # noqa: E402
from dwscodegen.ops import op_macs  # noqa: E402
from dwscodegen.targets import load_target  # noqa: E402
from dwscodegen.verify import verify_graph  # noqa: E402
from tests.support.layers import ConvCase, conv_graph  # noqa: E402

TARGETS = ["cortex-m4", "cortex-m55"]
GOAL = 3.0
SIZE = 20
LONG = (12, 48)                        # 1xK / Kx1 layers: the kernel's axis long, as in audio models
MULTIPLIERS = (1, 2, 4)
KERNELS = ((3, 3), (5, 5), (7, 7), (9, 9), (1, 9), (9, 1))
CHANNELS = (8, 16, 24, 40, 64, 96)     # output channels, cycling over the layers


def matrix() -> list[ConvCase]:
    cases = []
    for i, (mult, kernel, stride, dilation, padding) in enumerate(itertools.product(
            MULTIPLIERS, KERNELS, (1, 2), (1, 2), ("SAME", "VALID"))):
        oc = CHANNELS[i % len(CHANNELS)]
        h, w = (SIZE, SIZE) if 1 not in kernel else LONG if kernel[0] == 1 else LONG[::-1]
        cases.append(ConvCase("DepthwiseConv2D", (1, h, w, oc // mult), kernel, multiplier=mult,
                              stride=(stride, stride), dilation=(dilation, dilation), padding=padding,
                              activation=("none", "relu", "relu6")[i % 3]))
    return cases


def measure(case: ConvCase, target_name: str, portable: bool) -> dict:
    graph = conv_graph(case, "int8", seed=1)
    target = load_target(target_name)
    schedules = {0: {"kernel": "portable"}} if portable else None
    kernel = kernel_used(graph, graph.ops[0], target, "portable" if portable else None)
    try:
        report = verify_graph(graph, target, runs=2, seed=0, oracle="numpy", schedules=schedules, footprint=False)
    except DwsError as exc:
        return dict(ok=False, kernel=kernel, error=" ".join(str(exc).split())[:300])
    if not report.ok:
        return dict(ok=False, kernel=kernel, error="outputs differ from the NumPy reference")
    return dict(ok=True, kernel=kernel, instructions=report.layer_instructions[0], macs=op_macs(graph, graph.ops[0]))


def _row(case: ConvCase, portable: dict, simd: dict) -> dict:
    row = dict(layer=case.id(), multiplier=case.multiplier, kernel="x".join(map(str, case.kernel)),
               stride=case.stride[0], dilation=case.dilation[0], padding=case.padding,
               channels=case.in_shape[3] * case.multiplier, variant=simd["kernel"],
               portable=portable.get("instructions"), simd=simd.get("instructions"),
               macs=simd.get("macs") or portable.get("macs"),
               errors=[r["error"] for r in (portable, simd) if not r["ok"]])
    if row["portable"] and row["simd"]:
        row["ratio"] = row["portable"] / row["simd"]
    row["goal"] = bool(row.get("ratio", 0) >= GOAL and row["variant"] != "portable")
    return row


def table(rows: list[dict]) -> str:
    lines = ["| layer | OC | MACs | SIMD variant | portable | SIMD | portable / SIMD | insn/MAC portable | insn/MAC SIMD |",
             "|---|---:|---:|---|---:|---:|---:|---:|---:|"]
    def per_mac(v, macs):
        return f"{v / macs:.2f}" if v and macs else "-"

    for r in rows:
        ratio = f"{r['ratio']:.2f}x" if "ratio" in r else "-"
        lines.append(f"| {r['layer']} | {r['channels']} | {r['macs'] or 0:,} | {r['variant']} | "
                     f"{r['portable'] or 0:,} | {r['simd'] or 0:,} | {ratio if r['goal'] else '**' + ratio + '**'} | "
                     f"{per_mac(r['portable'], r['macs'])} | {per_mac(r['simd'], r['macs'])} |")
    return "\n".join(lines) + "\n"


def summary(target: str, rows: list[dict]) -> str:
    ratios = [r["ratio"] for r in rows if "ratio" in r]
    missed = [r["layer"] for r in rows if not r["goal"]]
    variants = sorted({r["variant"] for r in rows})
    text = (f"**{target}**: {len(rows)} layers, portable / SIMD min {min(ratios):.2f}x, median "
            f"{statistics.median(ratios):.2f}x, max {max(ratios):.2f}x; variants {', '.join(variants)}; ")
    return text + ("goal met on every layer." if not missed else f"goal missed on {len(missed)}: {', '.join(missed)}.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", nargs="+", default=TARGETS)
    parser.add_argument("--limit", type=int, default=0, help="only the first N layers of the matrix (writes out/)")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--out", type=Path, default=None, help="output path without suffix")
    args = parser.parse_args()
    cases = matrix()[:args.limit or None]
    partial = args.limit or args.targets != TARGETS
    out = args.out or (ROOT / "out" / "depthwise_matrix_partial" if partial else ROOT / "benchmarks" / "results" / "depthwise_matrix")
    start = time.time()
    with ProcessPoolExecutor(max(args.jobs, 1)) as pool:
        futures = {(t, i, p): pool.submit(measure, c, t, p) for t in args.targets for i, c in enumerate(cases)
                   for p in (True, False)}
        results = {key: f.result() for key, f in futures.items()}
    rows = {t: [_row(c, results[t, i, True], results[t, i, False]) for i, c in enumerate(cases)] for t in args.targets}
    elapsed = time.time() - start
    text = ["# Depthwise matrix: portable kernel vs SIMD variant", "",
            f"Executed instructions under QEMU of each layer's kernel call, every build verified bit-exact against "
            f"the NumPy reference (2 seeded inputs). {SIZE}x{SIZE} inputs ({LONG[0]}x{LONG[1]} for 1xK, "
            f"{LONG[1]}x{LONG[0]} for Kx1); goal: SIMD variant and portable / SIMD "
            f">= {GOAL:g}x on every layer (bold: missed). {time.strftime('%Y-%m-%d')}, {elapsed:.0f} s with --jobs {args.jobs}.", ""]
    text += [summary(t, rows[t]) for t in args.targets] + [""]
    for t in args.targets:
        text += [f"## {t}", "", table(rows[t])]
    errors = [f"{t} {r['layer']}: {e}" for t in args.targets for r in rows[t] for e in r["errors"]]
    if errors:
        text += ["## Did not work", ""] + [f"- {e}" for e in errors] + [""]
    markdown = "\n".join(text)
    print(markdown)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".md").write_text(markdown)
    out.with_suffix(".json").write_text(json.dumps(dict(date=time.strftime("%Y-%m-%dT%H:%M:%S"), goal=GOAL, size=SIZE,
                                                        seconds=round(elapsed, 1), rows=rows), indent=1) + "\n")
    print(f"wrote {out.with_suffix('.md')} and .json ({elapsed:.0f} s)", file=sys.stderr)
    sys.exit(1 if errors or any(not r["goal"] for t in args.targets for r in rows[t]) else 0)


if __name__ == "__main__":
    main()
