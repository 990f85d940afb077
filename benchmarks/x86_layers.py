"""Single-threaded x86 time per layer: dwscodegen's generated C (templates and tvm backends) against
onnxruntime and TVM's own LLVM build of the same layer (issue 6).

    .venv/bin/python benchmarks/x86_layers.py [--model PATH] [--repeats N] [--rounds R]

For every distinct layer (same op, shapes and attributes = one layer) of the MLPerf Tiny KWS float32
model and of examples/*_f32.json it measures, on the host:

  templates    the library generated with --backend templates for target x86_64, one layer per graph
               (tuning.layer_graph), timed by the verification harness (verify_graph(timing_repeats=N))
  tvm          the same with --backend tvm (n/a with the reason where that backend fails)
  onnxruntime  the layer as a one-node ONNX model (NCHW, weights transposed; the fused activation as a
               Relu/Clip node, which ORT_ENABLE_ALL fuses into the Conv), 1 intra-op and 1 inter-op
               thread, timed with session.run from Python
  tvm-llvm     the layer as a TOPI compute (topi.nn.conv2d_nhwc / depthwise_conv2d_nhwc / pool2d / dense
               / softmax ...) built by tvm.compile for {"kind": "llvm", "mcpu": <host>, "num-cores": 1},
               with TE's default loop nest and with a simple schedule (convs and pools: padding inlined,
               channels innermost and vectorized; Add/Reshape: one fused vectorized loop); the faster of
               the two is reported, tagged d / s

Every measurement is a median over 7 batches of N runs (N chosen per layer and method so that a batch
lasts about --batch-ms, or fixed by --repeats), after warm-up; every layer and method is built first,
then --rounds rounds each sample every layer and method in turn (so a burst of load from elsewhere
cannot spoil all rounds of one layer), and the lowest of the round medians is kept (all are in the JSON).
Outputs of every method are checked against the NumPy reference before they are timed.

Writes benchmarks/results/x86_layers.md and .json (machine, compiler and library versions, date).
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime
import glob
import json
import os
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

# Single-threaded everything, before numpy / onnxruntime / tvm are imported.
for _var in ("TVM_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dwscodegen.errors import DwsError  # noqa: E402
from dwscodegen.ops import describe_layer, op_macs  # noqa: E402
from dwscodegen.importers import load_model  # noqa: E402
from dwscodegen.reference.graph import run_graph  # noqa: E402
from dwscodegen.qparams import is_hybrid  # noqa: E402
from dwscodegen.targets import load_target  # noqa: E402
from dwscodegen.tuning import layer_graph, layer_key  # noqa: E402
from dwscodegen.verify import random_inputs  # noqa: E402
from x86bench.common import BATCHES, DEFAULT_MODEL, METHODS, NotAvailable, estimate_ns, one_line, runs_for, timed_batches  # noqa: E402
from x86bench.generated import GeneratedC  # noqa: E402
from x86bench.onnx_layer import OnnxRuntime  # noqa: E402
from x86bench.report import machine_info, markdown, model_totals, versions  # noqa: E402
from x86bench.tvm_llvm import TvmLLVM, host_mcpu  # noqa: E402


# ----------------------------------------------------------------------------- helpers


# ----------------------------------------------------------------------------- generated C


# ----------------------------------------------------------------------------- onnxruntime


# ----------------------------------------------------------------------------- TVM LLVM


# ----------------------------------------------------------------------------- driver


def collect_layers(paths: list[Path]) -> tuple[list[dict], list[str]]:
    """Distinct layers over all models (the first model a layer appears in names it)."""
    layers, seen, skipped = [], {}, []
    for path in paths:
        try:
            graph = load_model(path)
        except DwsError as exc:
            skipped.append(f"{path}: {one_line(str(exc))}")
            continue
        if graph.activation_dtypes() != {"float32"}:
            skipped.append(f"{path}: not a float32 model")
            continue
        for op in graph.ops:
            key = layer_key(graph, op)
            if key in seen:
                seen[key]["occurrences"].append(f"{graph.name}/{op.name}")
                continue
            entry = dict(model=graph.name, source=str(path), graph=graph, op=op, key=key,
                         occurrences=[f"{graph.name}/{op.name}"])
            seen[key] = entry
            layers.append(entry)
    return layers, skipped


def prepare_layer(entry: dict, target, args, workdir: Path) -> tuple[dict, dict]:
    """Build and check every method for one layer: (samplers, results) by method."""
    graph, op = entry["graph"], entry["op"]
    lg = layer_graph(graph, op)
    inputs = random_inputs(lg, args.seed, 1)[0]
    reference = run_graph(lg, inputs)[lg.outputs[0]]
    samplers, results = {}, {}

    def prepare(method: str, make):
        try:
            samplers[method] = make()
            results[method] = dict(samplers[method].info, rounds=[])
        except NotAvailable as exc:
            results[method] = dict(ns=None, error=str(exc))
        except Exception as exc:   # a benchmark keeps going; the reason lands in the table
            results[method] = dict(ns=None, error=f"{type(exc).__name__}: {one_line(str(exc))}")

    layer_dir = workdir / f"op{op.index}_{entry['model']}"
    for backend in ("templates", "tvm"):
        if backend in args.skip:
            results[backend] = dict(ns=None, error="skipped (--skip)")
            continue
        prepare(backend, lambda b=backend: GeneratedC(lg, target, b, args, layer_dir))
    if "onnxruntime" in args.skip:
        results["onnxruntime"] = dict(ns=None, error="skipped (--skip)")
    else:
        prepare("onnxruntime", lambda: OnnxRuntime(lg, op, inputs, reference, args))
    for schedule in ("default", "simple"):
        name = f"tvm-llvm/{schedule}"
        if "tvm-llvm" in args.skip:
            results[name] = dict(ns=None, error="skipped (--skip)")
            continue
        prepare(name, lambda s=schedule: TvmLLVM(lg, op, inputs, reference, args, s))
    return samplers, results


def sample_round(samplers: dict, results: dict) -> None:
    for method, sampler in list(samplers.items()):
        try:
            results[method]["rounds"].append(sampler.sample())
        except NotAvailable as exc:
            results[method] = dict(ns=None, error=str(exc))
            del samplers[method]


def finish_layer(entry: dict, samplers: dict, results: dict) -> dict:
    graph, op = entry["graph"], entry["op"]
    for method in samplers:
        rounds = results[method]["rounds"]
        results[method]["ns"] = min(rounds)
        results[method]["spread"] = max(rounds) / min(rounds) if min(rounds) > 0 else None

    llvm = {s: results.pop(f"tvm-llvm/{s}") for s in ("default", "simple")}
    timed = {s: r for s, r in llvm.items() if r.get("ns") is not None}
    if timed:
        best = min(timed, key=lambda s: timed[s]["ns"])
        results["tvm-llvm"] = dict(timed[best], schedule=best, schedules=llvm)
    else:
        errors = "; ".join(f"{s}: {r['error']}" for s, r in llvm.items())
        results["tvm-llvm"] = dict(ns=None, error=errors, schedules=llvm)

    macs = op_macs(graph, op)
    ok = {m: r["ns"] for m, r in results.items() if r.get("ns")}
    best = min(ok, key=ok.get) if ok else None
    return dict(model=entry["model"], source=entry["source"], op_index=op.index, name=op.name, type=op.type,
                key=entry["key"], occurrences=entry["occurrences"], shape=describe_layer(graph, op),
                hybrid=is_hybrid(graph, op), macs=macs, results=results, best=best,
                best_gmacs=(macs / ok[best]) if best and macs else None)


def floors(args) -> dict:
    """Per-call overhead of the two Python-driven methods: an identity on one float."""
    out = {}
    try:
        import onnxruntime as ort
        from onnx import TensorProto, helper
        g = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "identity",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
        model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 8
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = opts.inter_op_num_threads = 1
        sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
        feeds = {"x": np.zeros(1, np.float32)}
        call = lambda: sess.run(["y"], feeds)  # noqa: E731
        runs = runs_for(estimate_ns(call), args.batch_ms, args.repeats)
        out["onnxruntime"] = min(timed_batches(call, runs) for _ in range(args.rounds))
    except Exception as exc:
        print(f"onnxruntime floor: {exc}", file=sys.stderr)
    try:
        import tvm
        from tvm import te
        x = te.placeholder((1,), "float32", "x")
        y = te.compute((1,), lambda i: x[i], name="y")
        mod = tvm.compile(tvm.IRModule({"main": te.create_prim_func([x, y])}),
                          target=tvm.target.Target({"kind": "llvm", "mcpu": args.mcpu, "num-cores": 1})).jit()
        dev = tvm.cpu(0)
        arrays = [tvm.runtime.tensor(np.zeros(1, np.float32), dev) for _ in range(2)]
        ev = mod.time_evaluator("main", dev, number=runs_for(100, args.batch_ms, args.repeats), repeat=BATCHES)
        out["tvm-llvm"] = min(statistics.median(ev(*arrays).results) * 1e9 for _ in range(args.rounds))
    except Exception as exc:
        print(f"tvm floor: {exc}", file=sys.stderr)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=DEFAULT_MODEL,
                   help=f"KWS float32 model, relative to the project root (default {DEFAULT_MODEL})")
    p.add_argument("--examples", default="examples/*_f32.json",
                   help="glob of more float32 models, relative to the project root ('' for none)")
    p.add_argument("--repeats", type=int, default=0,
                   help="runs per timed batch for every method (default: chosen per layer so a batch lasts --batch-ms)")
    p.add_argument("--batch-ms", type=float, default=20.0, help="target duration of one batch (default 20)")
    p.add_argument("--rounds", type=int, default=3, help="measurement rounds, each over every layer and method (default 3)")
    p.add_argument("--mcpu", default=None, help="LLVM cpu for TVM LLVM (default: the host's, from LLVM)")
    p.add_argument("--c-flags", default=None,
                   help="replace the x86_64 target's cflags for the generated C (e.g. '-O3 -march=native')")
    p.add_argument("--skip", default="", help="comma-separated methods to skip: " + ", ".join(METHODS))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--pin", type=int, default=None, help="pin this process (and the harness) to one CPU")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "x86_layers"),
                   help="output path without suffix (default benchmarks/results/x86_layers)")
    args = p.parse_args(argv)
    args.skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    if args.skip - set(METHODS):
        p.error(f"--skip: unknown methods {sorted(args.skip - set(METHODS))}")
    if args.repeats < 0 or args.rounds < 1:
        p.error("--repeats must be >= 0 and --rounds >= 1")
    if args.pin is not None:
        os.sched_setaffinity(0, {args.pin})
    if args.mcpu is None:
        try:
            args.mcpu = host_mcpu()
        except Exception:
            args.mcpu = "generic"

    target = load_target("x86_64")
    if args.c_flags is not None:
        target = dataclasses.replace(target, cflags=tuple(shlex.split(args.c_flags)))

    skipped = []
    paths = []
    model = (Path(args.model) if Path(args.model).is_absolute() else ROOT / args.model).resolve()
    if model.is_file():
        paths.append(model)
    else:
        msg = f"KWS model {args.model} not found ({model}); skipping it (pass --model PATH)"
        print(msg, file=sys.stderr)
        skipped.append(msg)
    if args.examples:
        paths += [Path(f) for f in sorted(glob.glob(str(ROOT / args.examples)))]
    layers, bad = collect_layers(paths)
    skipped += bad
    if not layers:
        print("no layers to measure", file=sys.stderr)
        return 1

    started = time.time()
    load = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory(prefix="dws-x86-layers-") as tmp:
        prepared = []
        for i, entry in enumerate(layers):
            print(f"[{i + 1}/{len(layers)}] building {entry['model']}/{entry['op'].name} ({entry['op'].type})",
                  file=sys.stderr, flush=True)
            prepared.append(prepare_layer(entry, target, args, Path(tmp)))
        # Rounds go over every layer and method in turn, so each layer's rounds are spread over the whole
        # run and a burst of load from elsewhere cannot spoil all of them.
        for r in range(args.rounds):
            print(f"round {r + 1}/{args.rounds}", file=sys.stderr, flush=True)
            for samplers, layer_results in prepared:
                sample_round(samplers, layer_results)
            load.append(os.getloadavg()[0])
        results = [finish_layer(entry, *state) for entry, state in zip(layers, prepared)]
        overhead = floors(args)

    data = dict(
        date=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        machine=machine_info(), versions=versions(target),
        settings=dict(rounds=args.rounds, batches=BATCHES, batch_ms=args.batch_ms, repeats=args.repeats or None,
                      mcpu=args.mcpu, cc=target.cc, cflags=list(target.cflags), seed=args.seed, pin=args.pin,
                      elapsed_s=round(time.time() - started, 1), load_average_1min=load, command=shlex.join(["benchmarks/x86_layers.py"] + (sys.argv[1:] if argv is None else argv))),
        floors=overhead, layers=results, model_totals=model_totals(results), skipped=skipped)
    text = markdown(data)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".md").write_text(text)
    out.with_suffix(".json").write_text(json.dumps(data, indent=1, default=str) + "\n")
    print(text)
    print(f"wrote {out.with_suffix('.md')} and {out.with_suffix('.json')}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
