"""KWS per layer: portable vs SIMD kernels vs CMSIS-NN, executed instructions under QEMU (not a test).

    .venv/bin/python benchmarks/kws_layers.py [--targets cortex-m3 cortex-m4 cortex-m7 cortex-m55] [--runs 2]

The MLPerf Tiny KWS int8 model (../shared/models/kws_ref_model.tflite) is verified on each target twice:
with the portable kernels (DWSCODEGEN_PORTABLE_KERNELS=1) and with the per-target SIMD variants (the
default); every figure comes from a run whose outputs matched the oracle (the TFLite interpreter when
ai-edge-litert is installed, else the NumPy reference). Prints a markdown table per target and writes
benchmarks/results/kws_layers.{md,json}. The CMSIS-NN figures are issue 6's anchors (CMSIS-NN 99f736a,
gcc 12.2 -O3, executed instructions of the kernel call under QEMU 7.2).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dwscodegen.backends import simd  # noqa: E402
from dwscodegen.graph_stats import op_macs  # noqa: E402
from dwscodegen.importers import load_model  # noqa: E402
from dwscodegen.targets import load_target  # noqa: E402
from dwscodegen.verify import verify_graph  # noqa: E402

KWS = ROOT.parent / "shared" / "models" / "kws_ref_model.tflite"
RESULTS = ROOT / "benchmarks" / "results"
# CMSIS-NN per layer kind (each layer, not summed) and for all conv layers, from issue 6.
CMSIS_NN = {
    "cortex-m3": dict(conv=1_362_469, depthwise=674_334, pointwise=1_591_948, total=10_427_724),
    "cortex-m4": dict(conv=1_111_180, depthwise=599_617, pointwise=1_068_929, total=7_785_364),
    "cortex-m7": dict(conv=1_120_494, depthwise=594_174, pointwise=1_051_000, total=7_701_190),
    "cortex-m55": dict(conv=289_046, depthwise=166_879, pointwise=202_880, total=1_768_082),
}
GOAL = 1.3   # whole-model conv layers at least 1.3x fewer than CMSIS-NN


def _kind(graph, op) -> str | None:
    if op.type == "DepthwiseConv2D":
        return "depthwise"
    if op.type == "Conv2D":
        return "pointwise" if graph.tensor(op.inputs[1]).shape[1:3] == (1, 1) else "conv"
    return None


def _verify(graph, target, portable: bool, runs: int):
    old = os.environ.get(simd.PORTABLE_ENV)
    if portable:
        os.environ[simd.PORTABLE_ENV] = "1"
    else:
        os.environ.pop(simd.PORTABLE_ENV, None)
    try:
        report = verify_graph(graph, target, runs=runs, seed=0)
    finally:
        if old is None:
            os.environ.pop(simd.PORTABLE_ENV, None)
        else:
            os.environ[simd.PORTABLE_ENV] = old
    if not report.ok:
        raise SystemExit(f"KWS on {target.name} ({'portable' if portable else 'SIMD'} kernels): outputs differ "
                         f"from the {report.oracle} oracle: {report.first_bad_layer}")
    return report


def measure(target_name: str, runs: int) -> dict:
    graph = load_model(KWS)
    target = load_target(target_name)
    portable = _verify(graph, target, True, runs)
    fast = _verify(graph, target, False, runs)
    anchors = CMSIS_NN.get(target_name, {})
    layers = []
    for op, p, s in zip(graph.ops, portable.layer_instructions, fast.layer_instructions):
        kind = _kind(graph, op)
        layers.append(dict(index=op.index, layer=op.name, op=op.type, kind=kind,
                           shape=f"{'x'.join(map(str, graph.tensor(op.inputs[0]).shape[1:]))} -> "
                                 f"{'x'.join(map(str, graph.tensor(op.outputs[0]).shape[1:]))}",
                           macs=op_macs(graph, op), portable=p, simd=s, cmsis_nn=anchors.get(kind)))
    conv_layers = [row for row in layers if row["kind"]]
    totals = dict(macs=sum(r["macs"] for r in conv_layers), portable=sum(r["portable"] for r in conv_layers),
                  simd=sum(r["simd"] for r in conv_layers), cmsis_nn=anchors.get("total"),
                  model_portable=sum(portable.layer_instructions), model_simd=sum(fast.layer_instructions))
    return dict(target=target_name, features=sorted(target.features), oracle=portable.oracle, runs=runs,
                layers=layers, conv_totals=totals,
                footprint=dict(portable=portable.footprint.as_dict(), simd=fast.footprint.as_dict()))


def _ratio(a, b) -> str:
    return f"{a / b:.2f}x" if a and b else "-"


def markdown(result: dict) -> str:
    t = result["conv_totals"]
    lines = [f"### {result['target']} (features: {', '.join(result['features']) or 'none'})", "",
             "| layer | op | shape | MACs | portable | SIMD | CMSIS-NN | portable / SIMD | CMSIS-NN / SIMD |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in result["layers"]:
        cmsis = f"{r['cmsis_nn']:,}" if r["cmsis_nn"] else "-"
        lines.append(f"| {r['index']} {r['layer']} | {r['kind'] or r['op']} | {r['shape']} | {r['macs']:,} | "
                     f"{r['portable']:,} | {r['simd']:,} | {cmsis} | {_ratio(r['portable'], r['simd'])} | "
                     f"{_ratio(r['cmsis_nn'], r['simd'])} |")
    cmsis = f"{t['cmsis_nn']:,}" if t["cmsis_nn"] else "-"
    lines.append(f"| **all conv layers** | | | {t['macs']:,} | {t['portable']:,} | {t['simd']:,} | {cmsis} | "
                 f"{_ratio(t['portable'], t['simd'])} | {_ratio(t['cmsis_nn'], t['simd'])} |")
    lines.append(f"| **whole model** | | | | {t['model_portable']:,} | {t['model_simd']:,} | | "
                 f"{_ratio(t['model_portable'], t['model_simd'])} | |")
    f = result["footprint"]
    lines += ["", f"Flash: portable {f['portable']['flash']:,} B, SIMD {f['simd']['flash']:,} B; "
              f"RAM: portable {f['portable']['ram']:,} B, SIMD {f['simd']['ram']:,} B."]
    if not {"dsp", "mve"} & set(result["features"]):
        lines.append("No SIMD variants for this target (neither `dsp` nor `mve`): both columns are the portable kernels.")
    behind = [r for r in result["layers"] if r["cmsis_nn"] and r["simd"] >= r["cmsis_nn"]]
    if t["cmsis_nn"]:
        if behind:
            lines.append("Not below CMSIS-NN: " + ", ".join(
                f"{r['layer']} ({r['simd'] / r['cmsis_nn']:.2f}x its count)" for r in behind) + ".")
        goal = "met" if t["simd"] * GOAL <= t["cmsis_nn"] else "NOT met"
        lines.append(f"All conv layers: CMSIS-NN / SIMD = {t['cmsis_nn'] / t['simd']:.2f}x "
                     f"(goal >= {GOAL}x: {goal}).")
    return "\n".join(lines) + "\n"


def _toolchain() -> str:
    try:
        gcc = subprocess.run(["arm-none-eabi-gcc", "-dumpversion"], capture_output=True, text=True).stdout.strip()
        qemu = subprocess.run(["qemu-system-arm", "--version"], capture_output=True, text=True).stdout.split("\n")[0]
    except OSError:
        return "unknown toolchain"
    return f"arm-none-eabi-gcc {gcc}, {qemu}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", nargs="+", default=["cortex-m3", "cortex-m4", "cortex-m7", "cortex-m55"])
    parser.add_argument("--runs", type=int, default=2, help="seeded inputs verified per build (default 2)")
    args = parser.parse_args()
    if not KWS.is_file():
        raise SystemExit(f"{KWS} not found (the benchmark needs ../shared/models)")
    start = time.time()
    results = [measure(t, args.runs) for t in args.targets]
    header = ["# KWS int8 per layer: portable vs SIMD kernels vs CMSIS-NN", "",
              "Executed instructions under QEMU (not cycles) of each layer's kernel call; every run verified "
              f"bit-exact against the {results[0]['oracle']} oracle. CMSIS-NN: issue 6 anchors (99f736a, gcc 12.2 "
              f"-O3, DSP path on M4/M7, MVE on M55). {_toolchain()}; {platform.machine()}.", ""]
    text = "\n".join(header) + "\n" + "\n".join(markdown(r) for r in results)
    print(text)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "kws_layers.md").write_text(text)
    (RESULTS / "kws_layers.json").write_text(json.dumps(dict(model=KWS.name, results=results,
                                                             toolchain=_toolchain()), indent=1) + "\n")
    print(f"wrote {RESULTS / 'kws_layers.md'} and .json ({time.time() - start:.0f} s)")


if __name__ == "__main__":
    main()
