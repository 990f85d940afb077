"""Which XNNPACK micro-kernels the TFLite interpreter runs on this host, and how long each takes (not a test).

    .venv/bin/python benchmarks/xnnpack_kernels.py [--models PATH ...] [--seconds 4]

benchmarks/x86_models.py compares our libraries for each x86 ISA level with TFLite + XNNPACK, but XNNPACK picks
its kernels at run time from the host's CPUID: a ratio in the x86_64-v3 column compares our AVX2 code with
whatever XNNPACK chose here. This names that choice. For each model, the interpreter (num_threads=1, default
delegate) runs invoke() in a loop for --seconds under `perf record` (software cpu-clock sampling, which works
in a VM without hardware counters); the samples per symbol become microseconds per invoke. The kernel's name
states its ISA (XNNPACK names every micro-kernel after its parameters, e.g.
xnn_qs8_qc8w_gemm_minmax_fp32_ukernel_7x16c8__avx512vnni_prfm). Needs `perf` on PATH; writes
results/xnnpack_kernels.md.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "models"
DEFAULT_MODELS = [SHARED / "kws_ref_model.tflite", SHARED / "kws_ref_model_float32.tflite",
                  *sorted((SHARED / "zoo").glob("mbv*_s8.tflite")), *sorted((SHARED / "zoo").glob("mbv*_f32.tflite"))]
TOP = 6                   # symbols listed per model
MIN_SHARE = 0.5           # percent of the samples below which a symbol is not listed


def child(model: str, seconds: float) -> None:
    """In the perf-recorded process: invoke in a loop, print the number of invokes as JSON."""
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=model, num_threads=1)
    interpreter.allocate_tensors()
    rng = np.random.default_rng(0)
    for d in interpreter.get_input_details():
        info = np.iinfo(d["dtype"]) if np.issubdtype(d["dtype"], np.integer) else None
        x = (rng.integers(info.min, info.max, d["shape"]) if info else rng.standard_normal(d["shape"]))
        interpreter.set_tensor(d["index"], x.astype(d["dtype"]))
    invokes, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        interpreter.invoke()
        invokes += 1
    print(json.dumps({"invokes": invokes}))


def profile(model: Path, seconds: float, work: Path) -> tuple[int, list[tuple[str, float, float]]]:
    """(invokes, [(symbol, percent of samples, us per invoke)]) for one model."""
    data = work / f"{model.stem}.perf"
    run = subprocess.run(["perf", "record", "-q", "-e", "cpu-clock", "-o", str(data), sys.executable, __file__,
                          "--child", str(model), "--seconds", str(seconds)],
                         capture_output=True, text=True, check=True)
    invokes = json.loads(run.stdout.strip().splitlines()[-1])["invokes"]
    report = subprocess.run(["perf", "report", "-i", str(data), "--stdio", "--sort", "sym", "-F", "overhead,period,sym"],
                            capture_output=True, text=True, check=True).stdout
    rows = []
    for line in report.splitlines():
        parts = line.split(None, 3)
        if line.startswith("#") or len(parts) < 4 or not parts[0].endswith("%"):
            continue
        share, period, symbol = float(parts[0][:-1]), int(parts[1]), parts[3].strip()
        if share >= MIN_SHARE:
            rows.append((symbol, share, period / invokes / 1000.0))   # cpu-clock periods are nanoseconds
    rows.sort(key=lambda r: -r[1])
    return invokes, rows[:TOP]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", type=Path, default=DEFAULT_MODELS)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "xnnpack_kernels.md")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.seconds)
        return
    if not shutil.which("perf"):
        sys.exit("xnnpack_kernels.py needs `perf` (Debian: linux-perf)")
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), "unknown CPU")
    lines = [f"# XNNPACK's kernels on this host ({cpu})", "",
             f"Made by `benchmarks/xnnpack_kernels.py` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: the "
             "TFLite interpreter (ai-edge-litert, num_threads=1, XNNPACK delegate) invoking each model in a loop "
             f"for {args.seconds:g} s under `perf record -e cpu-clock`; per symbol, its share of the samples and "
             "its time per invoke (symbols under 0.5 % left out). The suffix of each XNNPACK kernel names the ISA "
             "it was written for.", ""]
    with tempfile.TemporaryDirectory(prefix="dws-xnnpack-") as tmp:
        for model in args.models:
            if not model.exists():
                lines += [f"## {model.name}: not found", ""]
                continue
            print(f"{model.name} ...", flush=True)
            invokes, rows = profile(model, args.seconds, Path(tmp))
            lines += [f"## {model.name} ({invokes:,} invokes)", "", "| symbol | samples | us per invoke |",
                      "|---|---:|---:|"]
            lines += [f"| `{symbol}` | {share:.1f} % | {us:.2f} |" for symbol, share, us in rows]
            lines.append("")
    args.out.write_text("\n".join(lines))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
