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
import gc
import glob
import json
import math
import os
import platform
import re
import shlex
import statistics
import subprocess
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
from dwscodegen.ops import op_macs  # noqa: E402
from dwscodegen.importers import load_model  # noqa: E402
from dwscodegen.ir import Graph, Op  # noqa: E402
from dwscodegen.reference.graph import run_graph  # noqa: E402
from dwscodegen.reference.ops import is_hybrid  # noqa: E402
from dwscodegen.runner.native import run_native  # noqa: E402
from dwscodegen.targets import load_target  # noqa: E402
from dwscodegen.toolchain import compile_program  # noqa: E402
from dwscodegen.tuning import layer_graph, layer_key, toolchain_versions  # noqa: E402
from dwscodegen.verify import HOOK, random_inputs, verify_graph  # noqa: E402

DEFAULT_MODEL = "../shared/models/kws_ref_model_float32.tflite"
BATCHES = 7                     # the harness's fixed number of batches (templates/harness/main.c.j2)
METHODS = ("templates", "tvm", "onnxruntime", "tvm-llvm")
LABELS = {"templates": "dwscodegen C, templates", "tvm": "dwscodegen C, tvm backend",
          "onnxruntime": "onnxruntime", "tvm-llvm": "TVM LLVM"}
MIN_RUNS, MAX_RUNS = 10, 20_000_000


class NotAvailable(Exception):
    """This method cannot run this layer; the message says why (shown as n/a in the table)."""


# ----------------------------------------------------------------------------- helpers

def runs_for(estimate_ns: float, batch_ms: float, fixed: int | None) -> int:
    if fixed:
        return fixed
    return int(min(max(math.ceil(batch_ms * 1e6 / max(estimate_ns, 1.0)), MIN_RUNS), MAX_RUNS))


def timed_batches(call, runs: int, batches: int = BATCHES) -> float:
    """Median ns per call over `batches` batches of `runs` calls (garbage collector off)."""
    per_run = []
    gc_was = gc.isenabled()
    gc.disable()
    try:
        for _ in range(batches):
            start = time.perf_counter_ns()
            for _ in range(runs):
                call()
            per_run.append((time.perf_counter_ns() - start) / runs)
    finally:
        if gc_was:
            gc.enable()
    return statistics.median(per_run)


def estimate_ns(call, warmup: int = 10, min_ms: float = 5.0) -> float:
    """Warm up, then a rough ns per call from a loop of at least min_ms."""
    for _ in range(warmup):
        call()
    runs, start = 0, time.perf_counter_ns()
    while True:
        call()
        runs += 1
        elapsed = time.perf_counter_ns() - start
        if elapsed >= min_ms * 1e6:
            return elapsed / runs


def check_close(got: np.ndarray, want: np.ndarray, rel: float) -> tuple[bool, float]:
    """(ok, max abs error) with a tolerance of rel * max|want| (at least rel)."""
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    if got.shape != want.shape:
        return False, float("inf")
    err = float(np.max(np.abs(got - want))) if got.size else 0.0
    return err <= rel * max(float(np.max(np.abs(want))), 1.0), err


def dequantized_filter(graph: Graph, op: Op) -> np.ndarray:
    """Float filter of a conv: the int8 filter of a hybrid conv dequantized, scale * (q - zero_point)."""
    w = graph.tensor(op.inputs[1])
    if w.dtype == "float32":
        return np.asarray(w.data, np.float32)
    q = w.quant
    shape = [1] * len(w.shape)
    if q.axis is not None:
        shape[q.axis] = -1
    scale = np.asarray(q.scale, np.float64).reshape(shape)
    zero = np.asarray(q.zero_point, np.float64).reshape(shape)
    return (scale * (w.data.astype(np.float64) - zero)).astype(np.float32)


def bias_of(graph: Graph, op: Op, channels: int) -> np.ndarray:
    if len(op.inputs) > 2:
        return np.asarray(graph.tensor(op.inputs[2]).data, np.float32)
    return np.zeros(channels, np.float32)


def describe(graph: Graph, op: Op) -> str:
    """Short shape text: input -> output, and kernel / stride / padding of convs and pools."""
    x = "x".join(map(str, graph.tensor(op.inputs[0]).shape))
    y = "x".join(map(str, graph.tensor(op.outputs[0]).shape))
    text = f"{x} → {y}"
    a = op.attrs
    if op.type in ("Conv2D", "DepthwiseConv2D"):
        w = graph.tensor(op.inputs[1])
        text += f", k{w.shape[1]}x{w.shape[2]} s{a.stride[0]}"
        if any(a.pad):
            text += " pad" + ",".join(map(str, a.pad))
    elif op.type in ("AveragePool2D", "MaxPool2D"):
        text += f", k{a.filter[0]}x{a.filter[1]} s{a.stride[0]}"
    return text


def activation_bounds(op: Op) -> tuple[float | None, float | None]:
    act = getattr(op.attrs, "activation", None)
    return act.bounds() if act is not None else (None, None)


# ----------------------------------------------------------------------------- generated C

class GeneratedC:
    """verify_graph builds and checks the one-layer library (and gives a first timing); the timed
    harness is then rebuilt from the same sources with DWS_TIMING=N and re-run once per round."""

    def __init__(self, lg: Graph, target, backend: str, args, workdir: Path):
        self.work = workdir / backend
        pilot = args.repeats or 20
        try:
            report = verify_graph(lg, target, backend, runs=1, seed=args.seed, oracle="numpy",
                                  build_dir=self.work, timing_repeats=pilot)
        except DwsError as exc:
            raise NotAvailable(one_line(str(exc))) from None
        if not report.ok:
            raise NotAvailable("wrong result: " + one_line(report.comparisons[0].summary()))
        if report.ns_per_run is None:
            raise NotAvailable("the harness printed no timing")
        self.runs = runs_for(report.ns_per_run, args.batch_ms, args.repeats)
        self.target = target
        sources = [self.work / f"{lg.name}.c", self.work / "harness_main.c"]
        self.exe = compile_program(target, sources, [self.work], self.work / "harness_timed",
                                   defines={"DWS_LAYER_HOOK": HOOK, "DWS_TIMING": str(self.runs)})
        self.info = dict(runs_per_batch=self.runs, check="ok (verify_graph against the NumPy reference)")

    def sample(self) -> float:
        result = run_native(self.exe, ["1"], self.work, timeout=600)
        found = re.search(r"^dws_timing_ns (\d+)$", result.stdout, re.M)
        if result.returncode != 0 or not found:
            raise NotAvailable(f"timed harness failed (exit {result.returncode}): "
                               + one_line(result.stderr + result.stdout))
        return float(found.group(1))


# ----------------------------------------------------------------------------- onnxruntime

def _onnx_activation(nodes, inits, name: str, op: Op, helper, numpy_helper) -> str:
    low, high = activation_bounds(op)
    if low is None and high is None:
        return name
    out = name + "_act"
    if low == 0.0 and high is None:
        nodes.append(helper.make_node("Relu", [name], [out]))
        return out
    args = [name]
    for label, v in (("lo", low), ("hi", high)):
        if v is None:
            args.append("")
        else:
            inits.append(numpy_helper.from_array(np.array(v, np.float32), f"clip_{label}"))
            args.append(f"clip_{label}")
    nodes.append(helper.make_node("Clip", args, [out]))
    return out


def onnx_layer(lg: Graph, op: Op) -> tuple[bytes, dict, callable, str]:
    """(serialized one-node model, feeds, output -> NHWC layout, note)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    x_t = lg.tensor(op.inputs[0])
    y_t = lg.tensor(op.outputs[0])
    nodes, inits, note = [], [], ""
    to_nhwc = lambda y: y  # noqa: E731
    a = op.attrs
    inputs_nchw = False
    if op.type in ("Conv2D", "DepthwiseConv2D"):
        w = dequantized_filter(lg, op)
        if is_hybrid(lg, op):
            note = ("hybrid conv (int8 filter): onnxruntime runs a float Conv on the dequantized filter, "
                    "not TFLite's dynamic-range int8 computation")
        oc = y_t.shape[3]
        if op.type == "Conv2D":
            wk = w.transpose(0, 3, 1, 2)                                 # [OC][C][KH][KW]
            group = 1
        else:
            kh, kw = w.shape[1], w.shape[2]
            wk = w.reshape(kh, kw, oc).transpose(2, 0, 1)[:, None]       # [OC][1][KH][KW]
            group = x_t.shape[3]
        top, bottom, left, right = a.pad
        inits += [numpy_helper.from_array(np.ascontiguousarray(wk), "W"),
                  numpy_helper.from_array(bias_of(lg, op, oc), "B")]
        nodes.append(helper.make_node("Conv", ["x", "W", "B"], ["conv"], group=group,
                                      kernel_shape=list(wk.shape[2:]), strides=list(a.stride),
                                      dilations=list(a.dilation), pads=[top, left, bottom, right]))
        last = _onnx_activation(nodes, inits, "conv", op, helper, numpy_helper)
        inputs_nchw = True
    elif op.type in ("AveragePool2D", "MaxPool2D"):
        top, bottom, left, right = a.pad
        kwargs = dict(kernel_shape=list(a.filter), strides=list(a.stride), pads=[top, left, bottom, right])
        if op.type == "AveragePool2D":
            kwargs["count_include_pad"] = 0           # TFLite averages over the valid taps only
        nodes.append(helper.make_node("AveragePool" if op.type == "AveragePool2D" else "MaxPool",
                                      ["x"], ["pool"], **kwargs))
        last = _onnx_activation(nodes, inits, "pool", op, helper, numpy_helper)
        inputs_nchw = True
    elif op.type == "FullyConnected":
        w = lg.tensor(op.inputs[1])
        if w.dtype != "float32":
            raise NotAvailable("int8-weight FullyConnected is not built by this benchmark")
        inits += [numpy_helper.from_array(np.asarray(w.data, np.float32), "W"),
                  numpy_helper.from_array(bias_of(lg, op, w.shape[0]), "B")]
        nodes.append(helper.make_node("Gemm", ["x", "W", "B"], ["fc"], transB=1))
        last = _onnx_activation(nodes, inits, "fc", op, helper, numpy_helper)
    elif op.type == "Softmax":
        src = "x"
        if a.beta != 1.0:
            inits.append(numpy_helper.from_array(np.array(a.beta, np.float32), "beta"))
            nodes.append(helper.make_node("Mul", ["x", "beta"], ["scaled"]))
            src = "scaled"
        nodes.append(helper.make_node("Softmax", [src], ["softmax"], axis=-1))
        last = "softmax"
    elif op.type == "Reshape":
        inits.append(numpy_helper.from_array(np.array(y_t.shape, np.int64), "shape"))
        nodes.append(helper.make_node("Reshape", ["x", "shape"], ["reshaped"]))
        last = "reshaped"
    elif op.type == "Add":
        nodes.append(helper.make_node("Add", ["x", "x2"], ["sum"]))
        last = _onnx_activation(nodes, inits, "sum", op, helper, numpy_helper)
    elif op.type == "Mean":
        nodes.append(helper.make_node("ReduceMean", ["x"], ["mean"], axes=[1, 2], keepdims=int(a.keep_dims)))
        last = "mean"
    else:
        raise NotAvailable(f"{op.type} is not built as an ONNX model by this benchmark")
    assert nodes[-1].output[0] == last
    nodes[-1].output[0] = "y"            # the last node (the op or its activation) is the graph output

    feeds_nhwc = {}
    graph_inputs = []
    x_shape = list(x_t.shape)
    if op.type == "FullyConnected":
        k = lg.tensor(op.inputs[1]).shape[1]
        x_shape = [x_t.size // k, k]
    if inputs_nchw:
        n, h, w_, c = x_t.shape
        x_shape = [n, c, h, w_]
        out_shape = [y_t.shape[0], y_t.shape[3], y_t.shape[1], y_t.shape[2]]
        to_nhwc = lambda y: y.transpose(0, 2, 3, 1)  # noqa: E731
    else:
        out_shape = list(y_t.shape) if op.type != "FullyConnected" else [x_shape[0], y_t.size // x_shape[0]]
    graph_inputs.append(helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape))
    feeds_nhwc["x"] = (lg.inputs[0], x_shape)
    if op.type == "Add":
        graph_inputs.append(helper.make_tensor_value_info("x2", TensorProto.FLOAT, list(lg.tensor(op.inputs[1]).shape)))
        feeds_nhwc["x2"] = (lg.inputs[1] if len(lg.inputs) > 1 else lg.inputs[0], list(lg.tensor(op.inputs[1]).shape))
    graph = helper.make_graph(nodes, f"layer_{op.type}", graph_inputs,
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="x86_layers")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString(), dict(feeds_nhwc=feeds_nhwc, nchw=inputs_nchw), to_nhwc, note


class OnnxRuntime:
    def __init__(self, lg: Graph, op: Op, inputs: dict, reference: np.ndarray, args):
        import onnxruntime as ort
        model, layout, to_nhwc, note = onnx_layer(lg, op)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
        feeds = {}
        for onnx_name, (name, shape) in layout["feeds_nhwc"].items():
            value = inputs[name]
            if layout["nchw"]:
                value = value.transpose(0, 3, 1, 2)
            feeds[onnx_name] = np.ascontiguousarray(value.reshape(shape), np.float32)
        self.feeds = feeds
        got = to_nhwc(self.session.run(["y"], feeds)[0]).reshape(reference.shape)
        ok, err = check_close(got, reference, 5e-2 if note else 1e-4)
        if not ok:
            raise NotAvailable(f"output differs from the NumPy reference (max abs error {err:.3g})")
        run, feeds_ = self.session.run, self.feeds
        self.call = lambda: run(["y"], feeds_)
        self.runs = runs_for(estimate_ns(self.call), args.batch_ms, args.repeats)
        self.info = dict(runs_per_batch=self.runs, max_abs_error=err, note=note,
                         check=f"ok (max abs error {err:.3g} vs the NumPy reference"
                               + (", which quantizes the input as TFLite's hybrid kernel does)" if note else ")"))

    def sample(self) -> float:
        return timed_batches(self.call, self.runs)


# ----------------------------------------------------------------------------- TVM LLVM

def host_mcpu() -> str:
    from tvm.target import codegen
    return str(codegen.llvm_get_system_cpu())


def tvm_layer(lg: Graph, op: Op):
    """(placeholders and constants in argument order, output tensor, simple-schedule family, note);
    the family is "reduction" (NHWC output, one reduction stage: conv, depthwise, pool), "elementwise"
    or None (no simple schedule)."""
    from tvm import te, topi

    from dwscodegen.backends.tvm.arith import clamp_float

    x_t, y_t = lg.tensor(op.inputs[0]), lg.tensor(op.outputs[0])
    a = op.attrs
    note = ""
    low, high = activation_bounds(op)

    def finish(t):
        if low is None and high is None:
            return te.compute(t.shape, lambda *i: t(*i), name="output")
        return te.compute(t.shape, lambda *i: clamp_float(t(*i), low, high), name="output")

    x = te.placeholder(x_t.shape, "float32", "x")
    params = [(x, ("input", lg.inputs[0]))]
    if op.type in ("Conv2D", "DepthwiseConv2D"):
        w = dequantized_filter(lg, op)
        if is_hybrid(lg, op):
            note = "hybrid conv (int8 filter): built as a float conv on the dequantized filter"
        top, bottom, left, right = a.pad
        pad = (top, left, bottom, right)
        oc = y_t.shape[3]
        if op.type == "Conv2D":
            wk = np.ascontiguousarray(w.transpose(1, 2, 3, 0))                     # HWIO
            filt = te.placeholder(wk.shape, "float32", "w")
            conv = topi.nn.conv2d_nhwc(x, filt, a.stride, pad, a.dilation, out_dtype="float32")
        else:
            kh, kw = w.shape[1], w.shape[2]
            wk = np.ascontiguousarray(w.reshape(kh, kw, x_t.shape[3], a.depth_multiplier))  # H W C M
            filt = te.placeholder(wk.shape, "float32", "w")
            conv = topi.nn.depthwise_conv2d_nhwc(x, filt, a.stride, pad, a.dilation)
        bias = te.placeholder((oc,), "float32", "b")
        biased = te.compute(conv.shape, lambda n, i, j, c: conv[n, i, j, c] + bias[c], name="biased")
        out = finish(biased)
        params += [(filt, ("const", wk)), (bias, ("const", bias_of(lg, op, oc)))]
        return params, out, "reduction", note
    if op.type in ("AveragePool2D", "MaxPool2D"):
        top, bottom, left, right = a.pad
        pool = topi.nn.pool2d(x, list(a.filter), list(a.stride), [1, 1], [top, left, bottom, right],
                              "avg" if op.type == "AveragePool2D" else "max", layout="NHWC",
                              count_include_pad=False)
        return params, finish(pool), "reduction", note
    if op.type == "FullyConnected":
        w = lg.tensor(op.inputs[1])
        if w.dtype != "float32":
            raise NotAvailable("int8-weight FullyConnected is not built by this benchmark")
        k = w.shape[1]
        x2 = te.placeholder((x_t.size // k, k), "float32", "x")
        filt = te.placeholder(w.shape, "float32", "w")
        bias = te.placeholder((w.shape[0],), "float32", "b")
        dense = topi.nn.dense(x2, filt, bias)
        return ([(x2, ("input", lg.inputs[0])), (filt, ("const", np.asarray(w.data, np.float32))),
                 (bias, ("const", bias_of(lg, op, w.shape[0])))], finish(dense), None, note)
    if op.type == "Softmax":
        src = x if a.beta == 1.0 else te.compute(x.shape, lambda *i: x(*i) * float(a.beta), name="scaled")
        return params, topi.nn.softmax(src, axis=-1), None, note
    if op.type == "Reshape":
        # a reshape is a copy of the data in the same order: one flat loop
        flat = te.placeholder((x_t.size,), "float32", "x")
        return [(flat, ("input", lg.inputs[0]))], topi.reshape(flat, [y_t.size]), "elementwise", note
    if op.type == "Add":
        b_t = lg.tensor(op.inputs[1])
        if tuple(b_t.shape) != tuple(x_t.shape):
            raise NotAvailable("broadcasting Add is not built by this benchmark")
        # same shapes: elementwise over the flat data (as the tvm backend's add_func)
        x1 = te.placeholder((x_t.size,), "float32", "x")
        x2 = te.placeholder((x_t.size,), "float32", "x2")
        return ([(x1, ("input", lg.inputs[0])), (x2, ("input", lg.inputs[1] if len(lg.inputs) > 1 else lg.inputs[0]))],
                finish(topi.add(x1, x2)), "elementwise", note)
    if op.type == "Mean":
        total = topi.sum(x, axis=(1, 2), keepdims=a.keep_dims)
        count = float(x_t.shape[1] * x_t.shape[2])
        return params, te.compute(total.shape, lambda *i: total(*i) / count, name="output"), None, note
    raise NotAvailable(f"{op.type} is not built with TVM LLVM by this benchmark")


def _vector_lanes(extent: int) -> int:
    return next((f for f in (64, 32, 16, 8, 4, 2) if extent % f == 0), 1)


def simple_schedule(func, family: str):
    """reduction (conv, depthwise, pool): padding inlined, the accumulator computed per output pixel
    with its reduction loops outside the channel loop, the channel loops vectorized (64-wide at most).
    elementwise (add, reshape): one fused loop, its inner part vectorized."""
    from tvm import s_tir
    sch = s_tir.Schedule(func)
    blocks = sch.get_child_blocks(sch.get_sblock("root"))
    if family == "elementwise":
        for b in blocks[:-1]:
            sch.compute_inline(b)
        fused = sch.fuse(*sch.get_loops(blocks[-1]))
        lanes = _vector_lanes(int(sch.get(fused).extent))
        if lanes > 1:
            sch.vectorize(sch.split(fused, [None, lanes])[1])
        return sch.mod["main"]
    reductions = [b for b in blocks if any(int(iv.iter_type) == 2 for iv in sch.get(b).iter_vars)]
    if len(reductions) != 1:
        raise NotAvailable("simple schedule: expected one reduction block")
    red, out = reductions[0], blocks[-1]
    for b in blocks[:-1]:
        if not sch.get(b).same_as(sch.get(red)):
            sch.compute_inline(b)
    n, h, w, c = sch.get_loops(out)
    channels = int(sch.get(c).extent)
    if channels < 2:
        raise NotAvailable("simple schedule: one output channel, nothing to vectorize")
    lanes = _vector_lanes(channels)
    if lanes < channels:
        anchor, c_in = sch.split(c, [None, lanes])
    else:
        anchor, c_in = w, c
    sch.compute_at(red, anchor)
    loops = sch.get_loops(red)[len(sch.get_loops(out)) - 1:]
    channel, reduce_loops = loops[0], loops[1:]
    if int(sch.get(channel).extent) != lanes:
        raise NotAvailable("simple schedule: unexpected loop nest")
    if reduce_loops:
        sch.reorder(*reduce_loops, channel)
    sch.vectorize(channel)
    if reduce_loops:
        sch.decompose_reduction(red, reduce_loops[0])
    sch.vectorize(c_in)
    return sch.mod["main"]


class TvmLLVM:
    """One schedule ("default" or "simple") of the layer built for LLVM and timed with time_evaluator."""

    def __init__(self, lg: Graph, op: Op, inputs: dict, reference: np.ndarray, args, schedule: str):
        import tvm
        from tvm import te
        params, out, family, note = tvm_layer(lg, op)
        func = te.create_prim_func([p for p, _ in params] + [out])
        if schedule == "simple":
            if family is None:
                raise NotAvailable("no simple schedule for this op (default only)")
            try:
                func = simple_schedule(func, family)
            except NotAvailable:
                raise
            except Exception as exc:
                raise NotAvailable("simple schedule failed: " + one_line(str(exc))) from None
        target = tvm.target.Target({"kind": "llvm", "mcpu": args.mcpu, "num-cores": 1})
        try:
            self.module = tvm.compile(tvm.IRModule({"main": func}), target=target).jit()
        except Exception as exc:
            raise NotAvailable("tvm.compile failed: " + one_line(str(exc))) from None
        dev = tvm.cpu(0)
        arrays = []
        for placeholder, (kind, value) in params:
            data = inputs[value] if kind == "input" else value
            arrays.append(tvm.runtime.tensor(np.ascontiguousarray(
                np.asarray(data, np.float32).reshape([int(s) for s in placeholder.shape])), dev))
        arrays.append(tvm.runtime.tensor(np.zeros([int(s) for s in out.shape], np.float32), dev))
        self.module["main"](*arrays)
        got = arrays[-1].numpy().reshape(reference.shape)
        ok, err = check_close(got, reference, 5e-2 if note else 1e-4)
        if not ok:
            raise NotAvailable(f"output differs from the NumPy reference (max abs error {err:.3g})")
        self.arrays, self.dev = arrays, dev
        rough = self.module.time_evaluator("main", dev, number=1, repeat=1, min_repeat_ms=5)(*arrays)
        self.runs = runs_for(rough.mean * 1e9, args.batch_ms, args.repeats)
        self.evaluator = self.module.time_evaluator("main", dev, number=self.runs, repeat=BATCHES)
        self.info = dict(runs_per_batch=self.runs, schedule=schedule, max_abs_error=err, note=note,
                         check=f"ok (max abs error {err:.3g} vs the NumPy reference)")

    def sample(self) -> float:
        return statistics.median(self.evaluator(*self.arrays).results) * 1e9


# ----------------------------------------------------------------------------- driver

def one_line(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


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


def machine_info() -> dict:
    cpu = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            k, _, v = line.partition(":")
            k, v = k.strip(), v.strip()
            if k in ("model name", "cpu family", "model", "stepping", "cpu MHz") and k not in cpu:
                cpu[k] = v
            if k == "flags" and "flags" not in cpu:
                cpu["flags"] = " ".join(f for f in v.split() if re.match(r"(sse4_2|avx2?$|avx512f|avx512_vnni|fma)", f))
    except OSError:
        pass
    info = dict(cpu_model=cpu.get("model name", platform.processor() or "?"), cpu=cpu,
                logical_cpus=os.cpu_count(), kernel=platform.release(), python=platform.python_version())
    try:
        info["llvm_host_cpu"] = host_mcpu()
    except Exception:   # tvm missing
        pass
    return info


def versions(target) -> dict:
    import importlib.metadata as md
    out = {}
    for dist in ("numpy", "onnx", "onnxruntime", "apache-tvm", "apache-tvm-ffi"):
        try:
            out[dist] = md.version(dist)
        except md.PackageNotFoundError:
            out[dist] = "not installed"
    try:
        from tvm.target import codegen
        out["llvm (tvm)"] = str(codegen.llvm_version_major())
    except Exception:
        pass
    out.update(toolchain_versions(target))
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True, timeout=30).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, timeout=30).stdout.strip()
        out["dwscodegen (git)"] = head + (" + uncommitted changes" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        pass
    return out


def fmt_ns(ns: float | None) -> str:
    return "n/a" if ns is None else f"{ns:,.0f}"


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
                key=entry["key"], occurrences=entry["occurrences"], shape=describe(graph, op),
                hybrid=is_hybrid(graph, op), macs=macs, results=results, best=best,
                best_gmacs=(macs / ok[best]) if best and macs else None)


NOTE_TEXT = {
    "hybrid": "hybrid conv (float32 activations, int8 filter). The generated C runs TFLite's dynamic-range "
              "computation (quantizes the input, int8 x int8 MACs, rescales); onnxruntime and TVM LLVM run a "
              "float conv on the dequantized filter (scale * (q - zero_point)), so they do different work.",
}


def markdown(data: dict) -> str:
    rows, notes = [], []

    def note(text: str) -> str:
        if text not in notes:
            notes.append(text)
        return f"[{notes.index(text) + 1}]"

    for layer in data["layers"]:
        cells = []
        for m in METHODS:
            r = layer["results"][m]
            if r.get("ns") is None:
                cells.append(f"n/a {note(LABELS[m] + ': ' + r['error'])}")
                continue
            text = fmt_ns(r["ns"])
            if m == "tvm-llvm":
                text += " " + r["schedule"][0]
            if r.get("spread") and r["spread"] > 1.25:
                text += "~"
            cells.append(text)
        name = f"{layer['model']}/{layer['name']}"
        if len(layer["occurrences"]) > 1:
            name += f" (×{len(layer['occurrences'])})"
        op = layer["type"] + (" " + note(NOTE_TEXT["hybrid"]) if layer["hybrid"] else "")
        best = f"{layer['best_gmacs']:.2f} ({layer['best']})" if layer["best_gmacs"] else (
            f"— ({layer['best']})" if layer["best"] else "—")
        rows.append(f"| {name} | {op} | {layer['shape']} | {layer['macs']:,} | " + " | ".join(cells) + f" | {best} |")

    s = data["settings"]
    m = data["machine"]
    lines = [
        "# x86 single-thread time per layer",
        "",
        f"Generated by `{s['command']}` on {data['date']} ({s['elapsed_s']:g} s).",
        "",
        f"Machine: {m['cpu_model']} (LLVM host cpu `{m.get('llvm_host_cpu', '?')}`, "
        f"{m['logical_cpus']} logical CPUs, Linux {m['kernel']}; relevant flags: {m['cpu'].get('flags', '?')}). "
        "Times are wall-clock nanoseconds per run of one layer, single-threaded, on a shared 2-core machine.",
        "",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in data["versions"].items()) + ".",
        "",
        f"Load average (1 min) before and after each round: {', '.join(f'{v:.2f}' for v in s['load_average_1min'])}.",
        "",
        f"Each number: the lowest of {s['rounds']} round medians; a round median is the median of "
        f"{BATCHES} batches of N runs (N per layer and method so that a batch lasts ~{s['batch_ms']:g} ms"
        + (f"; fixed N = {s['repeats']}" if s["repeats"] else "") + "), after warm-up. "
        "`~` marks a layer/method whose round medians spread by more than 25 %.",
        "",
        "| layer | op | shape (NHWC) | MACs | templates C (ns) | tvm-backend C (ns) | onnxruntime (ns) "
        "| TVM LLVM (ns) | GMAC/s of best |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
        *rows,
        "",
    ]
    totals = data.get("model_totals", {})
    if totals:
        lines += ["Per model, the sum over its layers (each distinct layer times its occurrences; n/a if a layer "
                  "is n/a for that method):", "",
                  "| model | MACs | templates C (ns) | tvm-backend C (ns) | onnxruntime (ns) | TVM LLVM (ns) |",
                  "|---|---:|---:|---:|---:|---:|"]
        for model, t in totals.items():
            lines.append(f"| {model} | {t['macs']:,} | " + " | ".join(fmt_ns(t[m]) for m in METHODS) + " |")
        lines.append("")
    lines += [
        "What is measured:",
        "",
        f"- **templates C / tvm-backend C**: the library dwscodegen generates for the one-layer graph "
        f"(`tuning.layer_graph`), target `x86_64` (`{data['settings']['cc']} {' '.join(data['settings']['cflags'])}`), "
        "timed inside the verification harness (`verify_graph(timing_repeats=N)`: `<name>_run` called N times per "
        "batch, `clock_gettime` around each batch). Outputs verified against the NumPy reference first.",
        "- **onnxruntime**: the layer as a one-node ONNX model (opset 17; Conv with `group` = channels for depthwise, "
        "NCHW with the filter transposed, the fused activation as a Relu/Clip node that ORT_ENABLE_ALL fuses into the "
        "Conv), CPU provider, intra/inter-op threads 1, `session.run` from Python: the time includes onnxruntime's "
        f"per-call overhead (an Identity model on one float takes {fmt_ns(data['floors'].get('onnxruntime'))} ns per "
        "run here).",
        f"- **TVM LLVM**: the layer as TOPI computes (`topi.nn.conv2d_nhwc`, `depthwise_conv2d_nhwc`, `pool2d`, "
        f"`dense`, `softmax`, `reshape`, `add`), bias and activation as one more stage, built with `tvm.compile` for "
        f"`{{\"kind\": \"llvm\", \"mcpu\": \"{s['mcpu']}\", \"num-cores\": 1}}`, weights passed as tensors, timed with "
        "the module's `time_evaluator` (C++ loop; an empty call costs "
        f"{fmt_ns(data['floors'].get('tvm-llvm'))} ns). Two schedules: `d` = default (TE's loop nest as TOPI writes "
        "it, no schedule primitives; LLVM -O3 may still auto-vectorize), `s` = simple (padding inlined, accumulator "
        "per output pixel with the reduction loops outside the channel loop, channel loops vectorized, for convs "
        "and pools; one fused vectorized loop for Add and Reshape; none for FullyConnected and Softmax). The faster "
        "is shown.",
        f"- ISA: the generated C is compiled with `{' '.join(s['cflags'])}`"
        + (" (SSE4.2, no AVX/FMA)" if "-march=x86-64-v2" in s["cflags"] else "")
        + "; onnxruntime picks its kernels at run time (AVX-512/AVX2 where present) and TVM LLVM compiles for the "
        "host CPU, so the comparison includes the instruction-set difference.",
        "- Layers with few MACs (Reshape, Softmax, FullyConnected) mostly measure call overhead in onnxruntime.",
        "",
    ]
    if data["skipped"]:
        lines += ["Skipped:", ""] + [f"- {s}" for s in data["skipped"]] + [""]
    if notes:
        lines += ["Notes:", ""] + [f"{i + 1}. {n}" for i, n in enumerate(notes)] + [""]
    return "\n".join(lines)


def model_totals(layers: list[dict]) -> dict:
    totals = {}
    for layer in layers:
        for occurrence in layer["occurrences"]:
            model = occurrence.split("/")[0]
            t = totals.setdefault(model, dict(macs=0, **{m: 0.0 for m in METHODS}))
            t["macs"] += layer["macs"]
            for m in METHODS:
                ns = layer["results"][m].get("ns")
                t[m] = None if ns is None or t[m] is None else t[m] + ns
    return totals


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
