"""Batch 1, 2 and 3 for every kernel kind: every image of the output is computed, bit for bit.

Each case is a single-op .tflite model built with the tflite flatbuffer builder, with batch N on the
activations (and the per-image shapes of an ordinary layer), imported like any user model.
1. The NumPy reference against TFLite's BUILTIN_REF kernels on those models (no C involved).
2. Generated C (templates backend; tvm backend at batch 2) on x86_64 against the TFLite interpreter
   (the NumPy reference without ai-edge-litert), on cortex-m4 and cortex-m55 (QEMU) against the NumPy
   reference. On the Cortex-M targets the int8
   conv / pointwise / depthwise cases run the DSP and MVE variants (asserted), which like the portable
   conv-family kernels compute one image per call; the library loops over the batch.
The default run keeps the QEMU part small (the SIMD kinds at batch 2); the whole matrix is marked slow.
Some kinds mix images on purpose: reshape and fully connected across the batch axis, padding,
concatenation and slicing along the batch axis.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tflite")
from dwscodegen.compare import compare  # noqa: E402
from dwscodegen.importers import load_model  # noqa: E402
from dwscodegen.ir import OP_TYPES  # noqa: E402
from dwscodegen.oracles import tflite_interpreter  # noqa: E402
from dwscodegen.reference.graph import run_graph  # noqa: E402
from dwscodegen.targets import load_target  # noqa: E402
from dwscodegen.verify import random_inputs, verify_graph  # noqa: E402
from .support.tflite_builder import TensorSpec, build_single_op_model  # noqa: E402
from .support.targets import target_or_skip  # noqa: E402
from .support.tflite_cases import act, bias, conv_weights  # noqa: E402
from .support.layers import assert_verified  # noqa: E402

BATCHES = (1, 2, 3)
SIMD_KINDS = ("conv", "pointwise", "depthwise")     # int8: DSP / MVE variants on cortex-m4 / cortex-m55
needs_interpreter = pytest.mark.skipif(not tflite_interpreter.available(), reason="ai-edge-litert not installed")


def _case(kind: str, dtype: str, n: int, rng) -> tuple:
    """(TFLite op, inputs, outputs, options) of `kind` with batch n."""
    if kind in ("conv", "hybrid", "hybrid_per_tensor"):
        wdtype = "int8" if kind != "conv" else dtype
        w = conv_weights(rng, (5, 3, 3, 3), wdtype, 0)
        if kind == "hybrid_per_tensor":
            w = TensorSpec("w", w.shape, "int8", data=w.data, scale=0.01, zero_point=0)
        return ("CONV_2D", [act("x", (n, 9, 7, 3), dtype), w, bias(rng, 5, dtype)],
                [act("y", (n, 5, 4, 5), dtype, 0.08, 4)],
                dict(padding="SAME", stride_h=2, stride_w=2, fused_activation="RELU6" if kind == "conv" else "RELU"))
    if kind == "pointwise":
        return ("CONV_2D", [act("x", (n, 5, 7, 16), dtype), conv_weights(rng, (24, 1, 1, 16), dtype, 0),
                            bias(rng, 24, dtype)],
                [act("y", (n, 5, 7, 24), dtype, 0.1, -6)], dict(padding="VALID", fused_activation="RELU"))
    if kind in ("depthwise", "depthwise_m2"):
        m = 2 if kind == "depthwise_m2" else 1
        c = 16 if m == 1 else 3
        return ("DEPTHWISE_CONV_2D", [act("x", (n, 7, 5, c), dtype), conv_weights(rng, (1, 3, 3, c * m), dtype, 3),
                                      bias(rng, c * m, dtype)],
                [act("y", (n, 7, 5, c * m), dtype, 0.02, 2)], dict(padding="SAME", depth_multiplier=m))
    if kind in ("avg_pool", "max_pool"):
        return ("AVERAGE_POOL_2D" if kind == "avg_pool" else "MAX_POOL_2D", [act("x", (n, 7, 6, 5), dtype)],
                [act("y", (n, 4, 3, 5), dtype)], dict(padding="SAME", stride_h=2, stride_w=2, filter_h=3, filter_w=3))
    if kind == "add":
        return ("ADD", [act("a", (n, 4, 5, 6), dtype), act("c", (n, 4, 5, 6), dtype, 0.03, 7)],
                [act("y", (n, 4, 5, 6), dtype, 0.07, -1)], dict(fused_activation="RELU"))
    if kind in ("fully_connected", "fully_connected_across_batch"):
        # across_batch: the weights take 6 * n inputs, so TFLite flattens the whole batch into one row.
        x_shape, depth, y_rows = ((n, 3, 2, 4), 24, n) if kind == "fully_connected" else ((n, 6), 6 * n, 1)
        s8 = dtype == "int8"
        w = (rng.integers(-127, 128, (7, depth), dtype=np.int8) if s8
             else rng.normal(0, 0.2, (7, depth)).astype(np.float32))
        return ("FULLY_CONNECTED", [act("x", x_shape, dtype), TensorSpec("w", (7, depth), dtype, data=w,
                                                                         scale=0.01 if s8 else None,
                                                                         zero_point=0 if s8 else None),
                                    bias(rng, 7, dtype)], [act("y", (y_rows, 7), dtype, 0.1, 3)], {})
    if kind == "softmax":
        return ("SOFTMAX", [act("x", (n, 12), dtype, 0.15, 5)], [act("y", (n, 12), dtype, 1 / 256, -128)], {})
    if kind in ("mean", "mean_flat"):
        keep = kind == "mean"
        return ("MEAN", [act("x", (n, 5, 3, 6), dtype)], [act("y", (n, 1, 1, 6) if keep else (n, 6), dtype, 0.02, 1)],
                dict(axis=[1, 2], keep_dims=keep))
    if kind in ("pad", "pad_batch"):
        pads = [[0, 0], [1, 1], [2, 1], [0, 1]] if kind == "pad" else [[1, 0], [0, 1], [0, 0], [1, 0]]
        shape = (n, 3, 4, 2)
        return ("PAD", [act("x", shape, dtype)], [act("y", tuple(d + a + b for d, (a, b) in zip(shape, pads)), dtype)],
                dict(paddings=pads))
    if kind == "concatenation":
        return ("CONCATENATION", [act("a", (n, 3, 3, 2), dtype), act("c", (n, 3, 3, 5), dtype)],
                [act("y", (n, 3, 3, 7), dtype)], dict(axis=3))
    if kind == "concatenation_batch":
        return ("CONCATENATION", [act("a", (n, 3, 3, 2), dtype), act("c", (1, 3, 3, 2), dtype)],
                [act("y", (n + 1, 3, 3, 2), dtype)], dict(axis=0))
    if kind in ("relu", "relu6"):
        return (kind.upper(), [act("x", (n, 4, 4, 3), dtype, 0.05, -3)], [act("y", (n, 4, 4, 3), dtype, 0.03, -128)], {})
    if kind == "reshape":
        return ("RESHAPE", [act("x", (n, 2, 3, 4), dtype)], [act("y", (n, 24), dtype)], dict(new_shape=[n, 24]))
    if kind == "reshape_batch":
        return ("RESHAPE", [act("x", (n, 2, 3, 4), dtype)], [act("y", (1, 24 * n), dtype)], dict(new_shape=[1, 24 * n]))
    if kind in ("slice", "slice_batch"):   # slice: rows 1.. and every other channel of each image; _batch: the last image
        begin, end, strides, out = (([0, 1, 0, 0], [n, 4, 3, 6], [1, 1, 1, 2], (n, 3, 3, 3)) if kind == "slice" else
                                    ([n - 1, 0, 0, 0], [n, 4, 3, 6], [1, 1, 1, 1], (1, 4, 3, 6)))
        bounds = [TensorSpec(name, (4,), "int32", data=np.array(v, np.int32))
                  for name, v in (("begin", begin), ("end", end), ("strides", strides))]
        return ("STRIDED_SLICE", [act("x", (n, 4, 3, 6), dtype), *bounds], [act("y", out, dtype)], {})
    if kind == "quantize":
        return ("QUANTIZE", [act("x", (n, 30), "float32")], [act("y", (n, 30), "int8", 0.02, 3)], {})
    if kind == "dequantize":
        return ("DEQUANTIZE", [act("x", (n, 30), "int8", 0.02, 3)], [act("y", (n, 30), "float32")], {})
    if kind in ("resize_bilinear", "resize_nearest"):
        op = "RESIZE_BILINEAR" if kind == "resize_bilinear" else "RESIZE_NEAREST_NEIGHBOR"
        return (op, [act("x", (n, 3, 5, 2), dtype)], [act("y", (n, 7, 4, 2), dtype)],
                dict(size=[7, 4], half_pixel_centers=True))
    if kind == "transpose_conv":
        return ("TRANSPOSE_CONV", [act("x", (n, 3, 4, 3), dtype), conv_weights(rng, (4, 3, 3, 3), dtype, 0),
                                   bias(rng, 4, dtype)], [act("y", (n, 6, 8, 4), dtype, 0.08, 4)],
                dict(padding="SAME", stride_h=2, stride_w=2))
    if kind in ("mul_se", "maximum", "minimum"):
        # squeeze-excite: a per-image [n,1,1,C] gate times [n,H,W,C]; MAXIMUM/MINIMUM share one quantization
        op = {"mul_se": "MUL", "maximum": "MAXIMUM", "minimum": "MINIMUM"}[kind]
        q = (0.05, -3) if kind != "mul_se" else (0.03, 7)
        return (op, [act("a", (n, 4, 5, 6), dtype), act("c", (n, 1, 1, 6), dtype, *q)],
                [act("y", (n, 4, 5, 6), dtype, *((0.05, -3) if kind != "mul_se" else (0.07, -1)))], {})
    if kind == "square":
        # MUL of a tensor by itself: int8, a function of one value, so it runs as a Table (passes/fuse_tables.py)
        x = act("x", (n, 4, 5, 6), dtype)
        return "MUL", [x, x], [act("y", (n, 4, 5, 6), dtype, 0.02, -100)], {}
    if kind == "prelu":
        alpha = (TensorSpec("alpha", (1, 1, 6), "int8", data=rng.integers(-60, 60, (1, 1, 6), dtype=np.int8),
                            scale=0.01, zero_point=0) if dtype == "int8"
                 else TensorSpec("alpha", (1, 1, 6), "float32", data=rng.uniform(-0.5, 0.5, (1, 1, 6)).astype(np.float32)))
        return ("PRELU", [act("x", (n, 4, 5, 6), dtype), alpha], [act("y", (n, 4, 5, 6), dtype, 0.04, 2)], {})
    if kind in ("hard_swish", "logistic", "tanh", "leaky_relu"):
        out_q = {"logistic": (1 / 256, -128), "tanh": (1 / 128, 0)}.get(kind, (0.03, -100))
        return (kind.upper(), [act("x", (n, 4, 4, 3), dtype, 0.05, -3)], [act("y", (n, 4, 4, 3), dtype, *out_q)],
                dict(alpha=0.2) if kind == "leaky_relu" else {})
    if kind == "hybrid_depthwise":
        return ("DEPTHWISE_CONV_2D", [act("x", (n, 7, 5, 4), dtype), conv_weights(rng, (1, 3, 3, 4), "int8", 3),
                                      bias(rng, 4, dtype)], [act("y", (n, 4, 3, 4), dtype)],
                dict(padding="SAME", stride_h=2, stride_w=2, fused_activation="RELU"))
    raise AssertionError(kind)


BOTH = ("int8", "float32")
KINDS = ([(k, d) for k in ("conv", "pointwise", "depthwise", "depthwise_m2", "avg_pool", "max_pool", "add",
                           "fully_connected", "fully_connected_across_batch", "softmax", "mean", "mean_flat", "pad",
                           "pad_batch", "concatenation", "concatenation_batch", "relu", "relu6", "reshape",
                           "reshape_batch", "resize_bilinear", "resize_nearest", "transpose_conv", "mul_se", "maximum",
                           "minimum", "prelu", "hard_swish", "logistic", "tanh", "leaky_relu", "slice",
                           "slice_batch") for d in BOTH]
         + [("hybrid", "float32"), ("hybrid_per_tensor", "float32"), ("quantize", "float32"), ("dequantize", "int8"),
            ("hybrid_depthwise", "float32"), ("square", "int8")])


def _graph(tmp_path, kind: str, dtype: str, n: int):
    path = tmp_path / f"{kind}_{dtype}_n{n}.tflite"
    path.write_bytes(build_single_op_model(*_case(kind, dtype, n, np.random.default_rng(11))))
    return load_model(path)


def test_every_op_type_has_a_batch_case(tmp_path):
    """A new op type must join this matrix: the templates backend has no batch-1-only kernel left."""
    covered = {_graph(tmp_path, k, d, 2).ops[0].type for k, d in KINDS}
    assert covered == set(OP_TYPES)


@needs_interpreter
@pytest.mark.parametrize("n", BATCHES)
@pytest.mark.parametrize("kind,dtype", KINDS, ids=[f"{k}-{d}" for k, d in KINDS])
def test_reference_matches_tflite(tmp_path, kind, dtype, n):
    from dwscodegen.oracles.tflite_interpreter import run_tflite
    graph = _graph(tmp_path, kind, dtype, n)
    for inputs in random_inputs(graph, seed=n, runs=2):
        expected = run_tflite(Path(graph.source), graph, inputs)
        got = run_graph(graph, inputs)
        for name in graph.outputs:
            result = compare(name, got[name], expected[name])
            assert result.ok, result.summary()


def _params():
    for target in ("x86_64", "cortex-m4", "cortex-m55"):
        for kind, dtype in KINDS:
            for n in BATCHES:
                for backend in ("templates", "tvm"):
                    if backend == "tvm" and (target != "x86_64" or n != 2):
                        continue
                    marks = [pytest.mark.tvm] if backend == "tvm" else []
                    if target != "x86_64":
                        marks.append(pytest.mark.qemu)
                        if not (kind in SIMD_KINDS and dtype == "int8" and n == 2):
                            marks.append(pytest.mark.slow)
                    yield pytest.param(target, kind, dtype, n, backend, marks=marks,
                                       id=f"{target}-{kind}-{dtype}-n{n}-{backend}")


@pytest.mark.parametrize("target_name,kind,dtype,n,backend", list(_params()))
def test_batch_bit_exact(tmp_path, target_name, kind, dtype, n, backend):
    if backend == "tvm":
        pytest.importorskip("tvm")
    native = target_name == "x86_64"
    target = load_target(target_name) if native else target_or_skip(target_name)
    graph = _graph(tmp_path, kind, dtype, n)
    if not native and kind in SIMD_KINDS and dtype == "int8":
        from dwscodegen.backends.templates import generate_kernels
        marker = "MVE variant" if "mve" in target.features else "DSP variant"
        assert marker in generate_kernels(graph, target)[0].source
    report = verify_graph(graph, target, backend=backend, runs=2, seed=n, oracle="tflite" if native and tflite_interpreter.available() else "numpy",
                          footprint=False)
    assert_verified(report)


def test_batch_loop_does_not_clash_with_parameter_names():
    """Graph inputs / outputs named like the library's loop variable still get their own parameters."""
    from dataclasses import replace

    from dwscodegen.ir import Graph
    from .support.layers import ConvCase, conv_graph
    graph = conv_graph(ConvCase("DepthwiseConv2D", (2, 5, 4, 6), (3, 3), multiplier=2), "int8", seed=2)
    names = {"x": "dws_image", "y": "n"}
    op = replace(graph.ops[0], inputs=[names.get(t, t) for t in graph.ops[0].inputs], outputs=["n"])
    tensors = {names.get(k, k): replace(t, name=names.get(k, k)) for k, t in graph.tensors.items()}
    graph = Graph(graph.name, tensors, [op], ["dws_image"], ["n"], source=graph.source)
    report = verify_graph(graph, load_target("x86_64"), runs=2, seed=3, oracle="numpy", footprint=False)
    assert report.ok, [c.summary() for c in report.comparisons]
