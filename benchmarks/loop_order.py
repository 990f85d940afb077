"""The loop-order knob and the int8-weight DSP depthwise, per layer: QEMU executed instructions and the one-layer
library's flash for named kernel variants (templates/kernels/variants.toml).

    .venv/bin/python benchmarks/loop_order.py            # ~15 min on 2 cores; writes benchmarks/results/loop_order.md

- Pointwise: each pointwise GEMM variant with `order = "channels"` against its pixel-order twin (same tile) on the
  pointwise layers of KWS and the zoo's MobileNets (shapes below), on cortex-m4, m7 (DSP), m55 (MVE), m3 (Thumb-2).
- Depthwise: the int16-weight region variant and the int8-weight one on KWS's and MobileNetV1's 3x3 layers, on
  cortex-m4 and m7.
Each layer is a one-op int8 graph (tests/support/layers.py, seeded), verified bit-exact against the NumPy
reference before it gives a figure. Not a test.
"""
from __future__ import annotations

import os
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

os.environ["DWSCODEGEN_NO_ROW_FUSION"] = "1"          # per-layer figures: each layer its own kernel call
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dwscodegen.ops import op_macs  # noqa: E402
from dwscodegen.targets import load_target  # noqa: E402
from dwscodegen.verify import verify_graph  # noqa: E402
from tests.support.layers import ConvCase, conv_graph  # noqa: E402

POINTWISE = [(6, 6, 192, 32), (12, 12, 96, 24), (3, 3, 576, 96), (6, 6, 128, 128), (24, 24, 16, 72),
             (48, 48, 8, 16), (25, 5, 64, 64)]
DEPTHWISE = [((25, 5, 64), 1), ((48, 48, 16), 1), ((48, 48, 16), 2), ((24, 24, 32), 1), ((24, 24, 32), 2),
             ((12, 12, 64), 1), ((12, 12, 64), 2), ((6, 6, 128), 1)]
ORDER_PAIRS = {"cortex-m4": ["dsp_4x2", "dsp_2x4"], "cortex-m7": ["dsp_4x2", "dsp_2x4"],
               "cortex-m55": ["mve_2x4"], "cortex-m3": ["tiled_2x4"]}
DW_VARIANTS = ("depthwise_conv2d_s8_dsp_4c", "depthwise_conv2d_s8_dsp_w8_4c")


def pointwise_case(h, w, c, oc) -> ConvCase:
    return ConvCase("Conv2D", (1, h, w, c), (1, 1), out_channels=oc, padding="VALID", activation="relu6")


def depthwise_case(hwc, stride) -> ConvCase:
    return ConvCase("DepthwiseConv2D", (1, *hwc), (3, 3), stride=(stride, stride), activation="relu6")


def measure(job) -> tuple:
    case, target_name, kernel = job
    graph = conv_graph(case, "int8", seed=1)
    report = verify_graph(graph, load_target(target_name), runs=1, seed=0, oracle="numpy",
                          schedules={0: {"kernel": kernel}}, footprint=True)
    if not report.ok:
        raise SystemExit(f"{kernel} on {target_name}, {case.id()}: outputs differ from the NumPy reference")
    return report.layer_instructions[0], report.footprint.flash, op_macs(graph, graph.ops[0])


def main() -> None:
    jobs = [(pointwise_case(*s), t, f"pointwise_conv2d_s8_{v}{suffix}")
            for t, vs in ORDER_PAIRS.items() for v in vs for s in POINTWISE for suffix in ("", "_channels")]
    jobs += [(depthwise_case(*s), t, v) for t in ("cortex-m4", "cortex-m7") for s in DEPTHWISE for v in DW_VARIANTS]
    with ProcessPoolExecutor(2) as pool:
        got = dict(zip([(c.id(), t, k) for c, t, k in jobs], pool.map(measure, jobs)))
    lines = ["# Loop order and the int8-weight DSP depthwise, per layer", "",
             "QEMU executed instructions of the layer's kernel call (one-op int8 graphs, bit-exact against the NumPy "
             "reference), flash of the one-layer library. `benchmarks/loop_order.py`.", ""]
    for t, vs in ORDER_PAIRS.items():
        for v in vs:
            a, b = f"pointwise_conv2d_s8_{v}", f"pointwise_conv2d_s8_{v}_channels"
            lines += [f"## {t}: {a} (pixels) vs {b}", "",
                      "| layer | pixels | channels | channels / pixels | flash pixels (B) | flash channels (B) |",
                      "|---|---:|---:|---:|---:|---:|"]
            for s in POINTWISE:
                cid = pointwise_case(*s).id()
                (ia, fa, _), (ib, fb, _) = got[(cid, t, a)], got[(cid, t, b)]
                lines.append(f"| {s[0]}x{s[1]}x{s[2]}->{s[3]} | {ia:,} | {ib:,} | {ib / ia:.3f} | {fa:,} | {fb:,} |")
            lines.append("")
    for t in ("cortex-m4", "cortex-m7"):
        lines += [f"## {t}: depthwise 3x3, int16 weights vs int8 weights", "",
                  "| layer | int16 (4c) | int8 (w8_4c) | w8 / int16 | instructions per MAC | flash int16 / int8 (B) |",
                  "|---|---:|---:|---:|---|---|"]
        for s in DEPTHWISE:
            cid = depthwise_case(*s).id()
            (i16, f16, macs), (i8, f8, _) = got[(cid, t, DW_VARIANTS[0])], got[(cid, t, DW_VARIANTS[1])]
            lines.append(f"| {'x'.join(map(str, s[0]))} s{s[1]} | {i16:,} | {i8:,} | {i8 / i16:.3f} | "
                         f"{i16 / macs:.2f} / {i8 / macs:.2f} | {f16:,} / {f8:,} |")
        lines.append("")
    out = ROOT / "benchmarks" / "results" / "loop_order.md"
    out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
