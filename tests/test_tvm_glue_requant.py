"""The tvm road's requantization of the int8 glue ops with constant parameters (arith.BoundedRequant, used by Mul
and Add): the one-product form where the input's bound allows it, the generic form elsewhere.

1. BoundedRequant against quant.multiply_by_quantized_multiplier (the reference's TFLite arithmetic), compiled
   natively: every x of the bound (or edges, ties and a seeded sample), right shifts from 0 to 30, left shifts,
   zero points at both ends; which parameter sets take the one-product form is asserted.
2. Mul and Add (same-shape and broadcast) with extreme quantization against the TFLite interpreter, under QEMU on
   Cortex-M4 and Cortex-M55 (and x86), bit-exact.
"""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("tvm")

from dwscodegen.backends.tvm.arith import BoundedRequant, add_bounds, int8_offset_bound  # noqa: E402
from dwscodegen.importers import load_model  # noqa: E402
from dwscodegen.qparams import add_qparams, mul_qparams  # noqa: E402
from dwscodegen.quant import multiply_by_quantized_multiplier  # noqa: E402
from dwscodegen.verify import verify_graph  # noqa: E402
from .support.c_kernels import garbage_like, run_kernel  # noqa: E402
from .support.layers import assert_verified  # noqa: E402
from .support.targets import target_or_skip  # noqa: E402
from .support.tflite_builder import TensorSpec, build_single_op_model  # noqa: E402

# (multiplier, shift, zero point, bound of |x|, one-product form expected)
PARAMS = [
    (1 << 30, -1, 0, 300, True),                    # ties at every odd x
    (2085684992, -7, -31, 65536, True),             # an EfficientNet Mul
    (1073741824, 0, 0, 255 << 20, True),            # an Add input side without right shift
    (2147244925, -1, 0, 255 << 20, True),
    (1073861199, -18, -128, 1 << 28, True),         # an Add output
    (1518500250, -30, 127, 65536, True),
    (1518500250, 2, 5, 65536, True),                # a left shift
    (1518500250, -31, -128, 65536, True),           # e = 31
    (1518500250, 3, 0, 1 << 28, False),             # x << 3 would leave int32: the generic form (which wraps)
    (1073741824, 0, 0, 1 << 30, False),             # 2x leaves int32
]


def _xs(bound: int, rng) -> np.ndarray:
    if bound <= 70000:
        return np.arange(-bound, bound + 1)
    ties = [k * (1 << e) + (1 << (e - 1)) for e in (1, 5, 17) for k in (-3, -1, 0, 2)]
    edges = [-bound, -bound + 1, -1, 0, 1, bound - 1, bound]
    return np.concatenate([edges, ties, -np.asarray(ties), rng.integers(-bound, bound, 4000, endpoint=True)])


@pytest.mark.parametrize("multiplier,shift,zp,bound,exact", PARAMS, ids=[f"m{p[0]}-s{p[1]}-zp{p[2]}" for p in PARAMS])
def test_bounded_requant_matches_tflite_arithmetic(tmp_path, multiplier, shift, zp, bound, exact):
    from tvm import s_tir, te

    from dwscodegen.backends.tvm.lower import prim_func_to_c
    rq = BoundedRequant.make(multiplier, shift, bound, zp)
    assert rq.exact == exact
    x = _xs(bound, np.random.default_rng(multiplier % 1000)).astype(np.int32)
    tx = te.placeholder((x.size,), "int32", "x")
    pre = te.compute(tx.shape, lambda i: rq.prescale(tx[i]), name="pre")
    y = te.compute(tx.shape, lambda i: rq.apply(pre[i]), name="y")
    sch = s_tir.Schedule(te.create_prim_func([tx, y]))
    sch.compute_at(sch.get_sblock("pre"), sch.get_loops(sch.get_sblock("y"))[0])
    src = prim_func_to_c(sch.mod["main"], "requant")
    got = run_kernel(tmp_path, src, "requant", [x, garbage_like(x.shape, np.int32)], 1)
    expected = multiply_by_quantized_multiplier(x.astype(np.int64), multiplier, shift) + zp
    np.testing.assert_array_equal(got, expected.astype(np.int32))


def _spec(name, shape, scale, zp):
    return TensorSpec(name, shape, "int8", scale=scale, zero_point=zp)


# (op, a shape, a scale, a zp, b shape, b scale, b zp, output scale, output zp, activation)
CASES = {
    "mul-silu": ("MUL", (1, 6, 7, 8), 0.08, -18, (1, 6, 7, 8), 1 / 256, -128, 0.04, -31, "NONE"),
    "mul-broadcast-se": ("MUL", (1, 5, 4, 12), 0.03, 7, (1, 1, 1, 12), 0.004, -128, 0.002, -5, "RELU6"),
    "mul-left-shift": ("MUL", (1, 3, 5, 4), 0.5, 100, (1, 3, 5, 4), 0.9, -100, 0.001, 127, "NONE"),
    "mul-left-shift-wraps": ("MUL", (1, 3, 5, 4), 0.5, 100, (1, 3, 5, 4), 0.9, -100, 1e-6, 0, "NONE"),   # generic
    "mul-tiny-output-range": ("MUL", (1, 4, 4, 3), 1e-4, -128, (1, 4, 4, 3), 2e-4, 127, 30.0, 120, "NONE"),
    "add-residual": ("ADD", (1, 6, 5, 8), 0.07, 3, (1, 6, 5, 8), 0.05, -9, 0.1, 1, "NONE"),
    "add-scales-far-apart": ("ADD", (1, 4, 5, 6), 1e-3, -128, (1, 4, 5, 6), 2.0, 127, 0.5, -128, "RELU"),
    "add-broadcast": ("ADD", (1, 4, 5, 6), 0.02, 0, (1, 1, 5, 6), 0.04, 60, 0.03, -60, "NONE"),
}


def _graph(tmp_path, case: str):
    op, sa, xa, za, sb, xb, zb, so, zo, activation = CASES[case]
    out_shape = tuple(max(p, q) for p, q in zip(sa, sb))
    path = tmp_path / f"{case}.tflite"
    path.write_bytes(build_single_op_model(op, [_spec("a", sa, xa, za), _spec("b", sb, xb, zb)],
                                           [_spec("y", out_shape, so, zo)], dict(fused_activation=activation)))
    return load_model(path)


def _one_product(graph) -> bool:
    """Whether the op's (output) requantization takes the one-product form."""
    op = graph.ops[0]
    if op.type == "Mul":
        q = mul_qparams(graph, op)
        return BoundedRequant.make(q.multiplier, q.shift,
                                   int8_offset_bound(q.input1_offset) * int8_offset_bound(q.input2_offset)).exact
    q = add_qparams(graph, op)
    return BoundedRequant.make(q.output_multiplier, q.output_shift, add_bounds(q)[2]).exact


@pytest.mark.qemu
@pytest.mark.parametrize("target_name", ["cortex-m4", "cortex-m55", "x86_64"])
@pytest.mark.parametrize("case", list(CASES))
def test_mul_add_extreme_quantization_match_tflite(tmp_path, case, target_name):
    pytest.importorskip("ai_edge_litert")
    target = target_or_skip(target_name)
    graph = _graph(tmp_path, case)
    assert _one_product(graph) == (case != "mul-left-shift-wraps")
    assert_verified(verify_graph(graph, target, backend="tvm", runs=3, seed=2, oracle="tflite"))
