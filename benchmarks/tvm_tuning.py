"""What `tune --backend tvm` gains over the tvm road's own default schedules, from the tuning databases that
benchmarks/cortexm_layers.py --tvm-trials N wrote (not a test; no measurement of its own).

    .venv/bin/python benchmarks/tvm_tuning.py

For each int8 model and Cortex-M target with a database benchmarks/results/tuning/<model>.<target>.tvm.jsonl:
per distinct layer, the default schedule's and the best candidate's executed instructions
(QEMU, each layer measured alone and checked bit-exactly, as the tuner measures) and the best schedule (the
whole models with these schedules: the TVM and TVM tuned columns of cortexm_layers.md). Writes
benchmarks/results/tvm_tuning.md and KWS's tuning curves benchmarks/results/tuning/kws_ref_model.<target>.tvm.png.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dwscodegen.importers import load_model  # noqa: E402
from dwscodegen.tuning import layer_key  # noqa: E402
from dwscodegen.tuning_db import TuningDB  # noqa: E402
from dwscodegen.tuning_report import layer_rows, plot_curves  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
MODELS = {"kws_ref_model": ROOT.parent / "shared" / "models" / "kws_ref_model.tflite",
          **{p.stem: p for p in sorted((ROOT / "examples").glob("*_s8.json"))}}
TARGETS = ["cortex-m3", "cortex-m4", "cortex-m7", "cortex-m55"]


def main() -> None:
    lines = ["# `tune --backend tvm`: measured gains over the tvm road's default schedules", "",
             "Executed instructions under QEMU (not cycles). Per distinct layer: the default schedule "
             "and the best of the candidates `tune --backend tvm --trials 8` measured (each layer alone, every "
             "candidate bit-exact), from the databases in `benchmarks/results/tuning/*.tvm.jsonl` that "
             "`benchmarks/cortexm_layers.py --tvm-trials 8` wrote; KWS's curves beside them (`kws_ref_model.*.tvm.png`). The knobs "
             "(`dwscodegen/backends/tvm/knobs.py`): tile shape (pixels x channels), loop order, unrolled channel "
             "tile pairs, unrolled depthwise region columns, unrolled window gathering. The whole models with the "
             "tuned schedules: the TVM tuned column of `cortexm_layers.md`.", "",
             "The defaults already hold what earlier tuning found (knobs.py: 2-pixel tiles in unrolled pairs on DSP "
             "for convs and shallow pointwise layers, e.g. mbv1_ds_block_s8 pw1 on cortex-m4 25,913 -> 19,186 and "
             "KWS conv_2d_0 422,433 -> 416,385; no pairs on MVE and Thumb-2; unrolled region columns on DSP), so "
             "on the tensorized conv layers the search now gains at most a few percent; the glue ops' portable "
             "schedules gain more.", "",
             "| model | target | layer(s) | default | tuned | default / tuned | best schedule |",
             "|---|---|---|---:|---:|---:|---|"]
    for stem, path in MODELS.items():
        if not path.is_file():
            continue
        graph = load_model(path)
        kinds = {layer_key(graph, op): op.type for op in graph.ops}
        for target in TARGETS:
            db_path = RESULTS / "tuning" / f"{stem}.{target}.tvm.jsonl"
            if not db_path.is_file():
                continue
            db = TuningDB.open(db_path)
            for row in layer_rows(graph, db, target, "tvm"):
                if not row.default or not row.tuned:
                    continue
                best = db.best(row.key, target, "tvm")
                first = row.layers.split(", ")
                name = first[0] + (f" (+{len(first) - 1})" if len(first) > 1 else "")
                lines.append(f"| {stem} | {target} | {name} ({kinds[row.key]}) | {row.default:,.0f} | {row.tuned:,.0f} | "
                             f"{row.default / row.tuned:.2f}x | `{json.dumps(best['schedule'], sort_keys=True)}` |")
            if stem == "kws_ref_model":
                plot_curves(graph, db, target, "tvm", db_path.with_suffix(".png"))
    (RESULTS / "tvm_tuning.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"wrote {RESULTS / 'tvm_tuning.md'}")


if __name__ == "__main__":
    main()
