"""One layer as a TOPI compute built by TVM's LLVM target for the host, default and simple schedules."""
from __future__ import annotations

import statistics

import numpy as np
from dwscodegen.ir import Graph, Op
from dwscodegen.ops import activation_bounds
from dwscodegen.qparams import is_hybrid

from .common import BATCHES, NotAvailable, bias_of, check_close, dequantized_filter, one_line, runs_for


def host_mcpu() -> str:
    from tvm.target import codegen
    return str(codegen.llvm_get_system_cpu())


def tvm_layer(lg: Graph, op: Op):
    """(placeholders and constants in argument order, output tensor, simple-schedule family, note);
    the family is "reduction" (NHWC output, one reduction stage: conv, depthwise, pool), "elementwise"
    or None (no simple schedule)."""
    from dwscodegen.backends.tvm.arith import clamp_float
    from tvm import te, topi

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
