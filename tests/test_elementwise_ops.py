"""The elementwise ops of MobileNetV3 / EfficientNet / MnasNet / BlazeFace-class models: MUL, ADD with
broadcasting, MAXIMUM, MINIMUM, HARD_SWISH, LOGISTIC, TANH, LEAKY_RELU and PRELU.

1. The int8 recipes pinned against ai-edge-litert 2.3's BUILTIN_REF kernels before any C exists: each
   activation table (int8_elementwise.py) for all 256 int8 inputs over scales from 1e-7 to 20 and zero
   points at both ends (this measures that int8 LOGISTIC and TANH are TFLite's LUTPopulate table, not
   gemmlowp fixed point); MUL, ADD and PRELU over all 65536 pairs of int8 operands, which contains every
   rounding tie their multipliers produce, with left-shifting and tiny multipliers.
2. Every op end to end: a single-op .tflite file imported, generated (both backends), compiled, run on
   x86 and compared with the interpreter on the same file (int8 bit-exact, float32 within tolerance):
   squeeze-excite [1,1,1,C] x [1,H,W,C] and back, [1,H,W,1] x [1,H,W,C], scalar x tensor, both sides
   broadcast, constants, batch 2, extreme quantization.
3. A few on Cortex-M4 and Cortex-M55 under QEMU (the full matrix there is marked slow).
4. Graphs TFLite would refuse are clear errors; the JSON format carries the new ops.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pytest

from dwscodegen.errors import DwsError
from dwscodegen.importers import load_model
from dwscodegen.importers.json_graph import load_json_graph
from dwscodegen.oracles import tflite_interpreter
from dwscodegen.reference.graph import run_graph
from dwscodegen.targets import load_target
from dwscodegen.verify import verify_graph

pytestmark = pytest.mark.skipif(not tflite_interpreter.available(), reason="ai-edge-litert not installed")
from .support.layers import assert_verified  # noqa: E402
from .support.backends import BACKENDS
from .support.targets import target_or_skip  # noqa: E402
from .support.tflite_builder import TensorSpec, build_single_op_model, run_reference  # noqa: E402

ALL_INT8 = np.arange(-128, 128, dtype=np.int8)


def spec(name, shape, dtype, scale=0.05, zp=-3, data=None):
    q = dict(scale=scale, zero_point=zp) if dtype == "int8" else {}
    return TensorSpec(name, tuple(shape), dtype, data=data, **q)


def _model(tmp_path, op, inputs, outputs, options=None, file="op"):
    path = tmp_path / f"{file}.tflite"
    path.write_bytes(build_single_op_model(op, inputs, outputs, options or {}))
    return path


def _reference_matches(path, values):
    """NumPy reference of the imported graph == the interpreter on the file, bit for bit (int8)."""
    graph = load_model(path)
    (expected,) = run_reference(path.read_bytes(), values)
    got = run_graph(graph, dict(zip(graph.inputs, values)))[graph.outputs[0]]
    bad = np.nonzero(got.reshape(-1) != expected.reshape(-1))[0]
    assert bad.size == 0, (f"{bad.size} of {expected.size} differ, first at {bad[:5]}: got "
                           f"{got.reshape(-1)[bad[:5]]}, TFLite {expected.reshape(-1)[bad[:5]]}")


# ============================================================================================ 1. recipes

# (input scale, zero point, output scale, zero point); the output quantization of LOGISTIC is TFLite's
# fixed 1/256 (its zero point is free in the reference kernel).
ACTIVATION_QUANT = {
    "HARD_SWISH": [(0.05, -3, 0.03, -20), (0.02, -128, 0.01, -128), (8.0, 127, 0.5, 127), (20.0, 0, 6.0, -100),
                   (1e-3, 5, 2e-4, 3), (1e-7, 5, 1e-8, -3), (1e-5, -128, 1e-6, 127), (0.1, 0, 0.0008, 0)],
    "LOGISTIC": [(0.05, -3, 1 / 256, -128), (0.2, 127, 1 / 256, -128), (1e-5, -128, 1 / 256, -128),
                 (20.0, 0, 1 / 256, -128), (0.08, 10, 1 / 256, 0)],
    "TANH": [(0.05, -3, 1 / 128, 0), (0.3, -128, 1 / 128, 0), (1e-5, 127, 1e-6, -128), (15.0, 0, 0.01, 127),
             (0.01, 0, 1e-4, 0)],
    "LEAKY_RELU": [(0.05, -3, 0.03, -20), (0.5, -128, 0.01, 127), (1e-5, 127, 0.2, -128), (12.0, 0, 0.5, 3)],
}
LEAKY_ALPHAS = [0.2, 0.01, 1.7, -0.3]


def _activation_cases():
    rng = np.random.default_rng(11)
    for op, fixed in ACTIVATION_QUANT.items():
        cases = list(fixed)
        for _ in range(12):      # seeded random scales over four decades, any zero points
            si, zi = float(np.float32(10 ** rng.uniform(-3.5, 0.5))), int(rng.integers(-128, 128))
            so = {"LOGISTIC": 1 / 256, "HARD_SWISH": si * 10 ** rng.uniform(-1.5, 1)}.get(op, 10 ** rng.uniform(-3, 0))
            cases.append((si, zi, float(np.float32(so)), -128 if op == "LOGISTIC" else int(rng.integers(-128, 128))))
        yield from ((op, c) for c in cases)


@pytest.mark.parametrize("op,quant", list(_activation_cases()),
                         ids=lambda v: v if isinstance(v, str) else "q{:.3g}/{}/{:.3g}/{}".format(*v))
def test_activation_table_matches_tflite(tmp_path, op, quant):
    si, zi, so, zo = quant
    for alpha in (LEAKY_ALPHAS if op == "LEAKY_RELU" else [None]):
        path = _model(tmp_path, op, [spec("x", (1, 256), "int8", si, zi)], [spec("y", (1, 256), "int8", so, zo)],
                      {"alpha": alpha} if alpha is not None else {})
        _reference_matches(path, [ALL_INT8.reshape(1, 256)])


# (scale, zero point) of a, b and the output; MUL's multiplier s_a * s_b / s_y from 4e-7 to 400.
PAIR_QUANT = [((0.05, -3), (0.02, 7), (0.01, 2)), ((0.5, -128), (0.7, 127), (0.001, 0)),
              ((0.01, 127), (0.003, -128), (0.4, -128)), ((1e-4, 0), (2e-3, 0), (5e-1, 0)),
              ((2.0, 5), (3.0, -9), (0.05, 100)), ((0.02, -128), (0.02, -128), (0.02, -128))]


@pytest.mark.parametrize("op,activation", [("MUL", "NONE"), ("MUL", "RELU6"), ("ADD", "NONE"), ("ADD", "RELU_N1_TO_1")])
@pytest.mark.parametrize("quant", PAIR_QUANT, ids=lambda q: "x".join(f"{s:g}/{z}" for s, z in q))
def test_binary_all_pairs_match_tflite(tmp_path, op, activation, quant):
    """a [1, 256, 1] x b [1, 1, 256]: every pair of int8 operands in one broadcast invocation."""
    (sa, za), (sb, zb), (sy, zy) = quant
    path = _model(tmp_path, op, [spec("a", (1, 256, 1), "int8", sa, za), spec("b", (1, 1, 256), "int8", sb, zb)],
                  [spec("y", (1, 256, 256), "int8", sy, zy)], {"fused_activation": activation})
    _reference_matches(path, [ALL_INT8.reshape(1, 256, 1), ALL_INT8.reshape(1, 1, 256)])


@pytest.mark.parametrize("quant", PAIR_QUANT[:4], ids=lambda q: "x".join(f"{s:g}/{z}" for s, z in q))
def test_prelu_all_pairs_match_tflite(tmp_path, quant):
    """Every input value against every int8 alpha (a constant over the channels)."""
    (sx, zx), (sa, za), (sy, zy) = quant
    alpha = spec("alpha", (256,), "int8", sa, za, data=ALL_INT8)
    path = _model(tmp_path, "PRELU", [spec("x", (1, 256, 256), "int8", sx, zx), alpha],
                  [spec("y", (1, 256, 256), "int8", sy, zy)])
    _reference_matches(path, [np.ascontiguousarray(np.broadcast_to(ALL_INT8.reshape(1, 256, 1), (1, 256, 256)))])


# ============================================================================================ 2. end to end

def _e2e(path, target, backend):
    report = verify_graph(load_model(path), target, backend=backend, runs=2, seed=3, oracle="tflite")
    assert report.oracle == "tflite"
    assert_verified(report)


@pytest.fixture(scope="module")
def x86():
    return load_target("x86_64")


def _const(rng, name, shape, dtype, scale=0.02, zp=4):
    data = rng.normal(0, 1, shape).astype(np.float32) if dtype == "float32" else rng.integers(-128, 128, shape)
    return spec(name, shape, dtype, scale, zp, data=data)


@dataclass(frozen=True)
class Const:
    """A constant operand of this shape."""
    shape: tuple

    def __str__(self) -> str:
        return f"const{list(self.shape)}"


# (op, a, b, fused activation): a and b are activation shapes or Const
BINARY_CASES = [
    ("MUL", (1, 1, 1, 8), (1, 4, 4, 8), "NONE"),          # squeeze-excite
    ("MUL", (2, 4, 4, 8), (2, 1, 1, 8), "RELU"),          # ... the other way round, batch 2
    ("MUL", (1, 4, 4, 1), (1, 4, 4, 8), "NONE"),          # a spatial mask times every channel
    ("MUL", (1, 3, 5, 4), Const((1,)), "NONE"),           # Rescaling: a constant scalar
    ("MUL", (1, 3, 5, 4), (1, 3, 5, 4), "RELU6"),         # swish's x * sigmoid(x): equal shapes
    ("ADD", (1, 4, 5, 6), (1, 4, 5, 1), "RELU6"),
    ("ADD", (1,), (2, 3, 4, 5), "NONE"),                  # scalar activation + tensor
    ("ADD", (2, 1, 4, 1), (1, 3, 1, 5), "NONE"),          # both broadcast
    ("ADD", Const((6,)), (1, 4, 5, 6), "RELU"),           # per-channel constant first
    ("ADD", (2, 3, 4, 5), Const((1,)), "RELU6"),          # Rescaling's offset: a constant scalar second
    ("MAXIMUM", (1, 4, 5, 6), (1, 1, 5, 6), "NONE"),
    ("MAXIMUM", (2, 3, 4, 5), Const((1,)), "NONE"),
    ("MINIMUM", (1, 1, 1, 6), (2, 4, 5, 6), "NONE"),
    ("MINIMUM", (1, 4, 5, 6), Const((1, 5, 6)), "NONE"),
    ("MUL", (2, 1, 3, 1, 4), (1, 3, 1, 5, 4), "NONE"),     # 5-D, both broadcast in two places each
]


def _shape(s):
    return s.shape if isinstance(s, Const) else s


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", ["int8", "float32"])
@pytest.mark.parametrize("case", BINARY_CASES, ids=lambda c: "-".join(map(str, c)).replace(" ", ""))
def test_binary_op_end_to_end(tmp_path, x86, case, dtype, backend):
    op, sa, sb, activation = case
    rng = np.random.default_rng(BINARY_CASES.index(case))
    out = np.broadcast_shapes(_shape(sa), _shape(sb))
    minmax = op in ("MAXIMUM", "MINIMUM")        # one quantization for inputs and output (validate.py)
    qa, qb, qy = ((0.05, -3),) * 3 if minmax else ((0.05, -3), (0.02, 9), (0.03 if op == "ADD" else 0.004, 6))
    a = _const(rng, "a", sa.shape, dtype, *qa) if isinstance(sa, Const) else spec("a", sa, dtype, *qa)
    b = _const(rng, "b", sb.shape, dtype, *qb) if isinstance(sb, Const) else spec("b", sb, dtype, *qb)
    options = {} if minmax else {"fused_activation": activation}
    _e2e(_model(tmp_path, op, [a, b], [spec("y", out, dtype, *qy)], options), x86, backend)


# extreme quantization through the generated C: MUL's multiplier above 1 (left shift) and tiny, zero
# points at both ends, HARD_SWISH with a reluish left shift and with a right shift beyond 15 bits
EXTREME_CASES = [
    ("MUL", [(0.5, -128), (0.7, 127)], (0.001, 0)),
    ("MUL", [(1e-4, 127), (2e-3, -128)], (0.5, -128)),
    ("ADD", [(0.5, -128), (1e-4, 127)], (1e-3, 127)),
    ("HARD_SWISH", [(8.0, 127)], (0.5, 127)),
    ("HARD_SWISH", [(1e-7, 5)], (1e-8, -128)),
    ("TANH", [(1e-5, 127)], (1e-6, -128)),
    ("LEAKY_RELU", [(0.5, -128)], (0.01, 127)),
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", EXTREME_CASES, ids=lambda c: f"{c[0]}-{c[1]}-{c[2]}")
def test_extreme_quantization_end_to_end(tmp_path, x86, case, backend):
    op, ins, (so, zo) = case
    shapes = [(1, 1, 1, 8), (2, 3, 3, 8)] if len(ins) == 2 else [(2, 3, 3, 8)]
    inputs = [spec(n, s, "int8", *q) for n, s, q in zip("ab", shapes, ins)]
    options = {"alpha": -0.4} if op == "LEAKY_RELU" else {}
    _e2e(_model(tmp_path, op, inputs, [spec("y", (2, 3, 3, 8), "int8", so, zo)], options), x86, backend)


ACTIVATIONS = [("HARD_SWISH", {}), ("LOGISTIC", {}), ("TANH", {}), ("LEAKY_RELU", {"alpha": 0.2}),
               ("LEAKY_RELU", {"alpha": -0.5})]
ACTIVATION_OUT = {"LOGISTIC": (1 / 256, -128), "TANH": (1 / 128, 0)}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", ["int8", "float32"])
@pytest.mark.parametrize("op,options", ACTIVATIONS, ids=lambda v: v if isinstance(v, str) else str(v.get("alpha", "")))
def test_activation_end_to_end(tmp_path, x86, op, options, dtype, backend):
    # float inputs are N(0, 1) (verify's inputs); a scale of 0.08 spreads int8 ones over [-10, 10]
    x = spec("x", (2, 5, 3, 7), dtype, 0.08, -7)
    y = spec("y", (2, 5, 3, 7), dtype, *ACTIVATION_OUT.get(op, (0.05, -30)))
    _e2e(_model(tmp_path, op, [x], [y], options), x86, backend)


PRELU_ALPHAS = [(7,), (1, 1, 7), (5, 3, 7), (1,)]      # per channel, as Keras writes it, per element, one


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", ["int8", "float32"])
@pytest.mark.parametrize("alpha_shape", PRELU_ALPHAS, ids=str)
def test_prelu_end_to_end(tmp_path, x86, alpha_shape, dtype, backend):
    rng = np.random.default_rng(len(alpha_shape))
    alpha = _const(rng, "alpha", alpha_shape, dtype, 0.004, -2)
    if dtype == "float32":
        alpha.data = rng.uniform(-0.5, 0.5, alpha_shape).astype(np.float32)
    out = spec("y", (2, 5, 3, 7), dtype, 0.03, 10)
    _e2e(_model(tmp_path, "PRELU", [spec("x", (2, 5, 3, 7), dtype), alpha], [out]), x86, backend)


# ============================================================================================ 3. Cortex-M

QEMU_CASES = {
    "mul_se_int8": ("MUL", [spec("a", (1, 1, 1, 16), "int8", 0.004, -128), spec("b", (1, 6, 6, 16), "int8", 0.03, 7)],
                    spec("y", (1, 6, 6, 16), "int8", 0.002, -5), {}),
    "hard_swish_int8": ("HARD_SWISH", [spec("x", (1, 6, 6, 16), "int8", 0.06, -7)],
                        spec("y", (1, 6, 6, 16), "int8", 0.04, -20), {}),
    "logistic_f32": ("LOGISTIC", [spec("x", (1, 6, 6, 16), "float32")], spec("y", (1, 6, 6, 16), "float32"), {}),
    "add_scalar_f32": ("ADD", [spec("a", (1, 6, 6, 16), "float32"), _const(np.random.default_rng(0), "b", (1,),
                                                                           "float32")],
                       spec("y", (1, 6, 6, 16), "float32"), {}),
}


@pytest.mark.qemu
@pytest.mark.parametrize("target_name", ["cortex-m4", "cortex-m55"])
@pytest.mark.parametrize("name", ["mul_se_int8", "hard_swish_int8"])
def test_cortex_m(tmp_path, target_name, name):
    op, inputs, out, options = QEMU_CASES[name]
    _e2e(_model(tmp_path, op, inputs, [out], options), target_or_skip(target_name), "templates")


@pytest.mark.slow
@pytest.mark.qemu
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("target_name", ["cortex-m4", "cortex-m55"])
@pytest.mark.parametrize("name", list(QEMU_CASES))
def test_cortex_m_matrix(tmp_path, target_name, name, backend):
    op, inputs, out, options = QEMU_CASES[name]
    _e2e(_model(tmp_path, op, inputs, [out], options), target_or_skip(target_name), backend)


# ============================================================================================ 4. errors, JSON

REFUSED = [
    ("MUL", [spec("a", (1, 4, 4, 3), "int8"), spec("b", (1, 4, 4, 2), "int8")], spec("y", (1, 4, 4, 3), "int8"),
     "do not broadcast"),
    ("ADD", [spec("a", (1, 4, 4, 3), "int8"), spec("b", (1, 1, 1, 3), "int8")], spec("y", (1, 1, 1, 3), "int8"),
     "broadcast to [1, 4, 4, 3]"),
    ("MAXIMUM", [spec("a", (1, 4, 3), "int8", 0.1), spec("b", (1, 4, 3), "int8")], spec("y", (1, 4, 3), "int8"),
     "share one quantization"),
    ("LOGISTIC", [spec("x", (1, 8), "int8")], spec("y", (1, 8), "int8", 0.01, -128), "scale 1/256"),
    ("HARD_SWISH", [spec("x", (1, 8), "int8", 1.0)], spec("y", (1, 8), "int8", 0.001), "input scale / 128"),
]


@pytest.mark.parametrize("case", REFUSED, ids=lambda c: c[0])
def test_refused_graphs_are_clear_errors(tmp_path, case):
    op, inputs, out, message = case
    path = tmp_path / "bad.tflite"
    # written without the interpreter: some of these it would refuse to prepare
    path.write_bytes(build_single_op_model(op, inputs, [out], {}))
    with pytest.raises(DwsError) as err:
        load_model(path)
    assert message in str(err.value) and str(path) in str(err.value) and "op 0 " in str(err.value)


def test_json_graph_with_elementwise_ops(tmp_path, x86):
    """Mul (squeeze-excite, constant-free), LeakyRelu and HardSwish in the JSON format, int8."""
    q = lambda s, z: {"scale": s, "zero_point": z}   # noqa: E731
    doc = {"name": "se_block", "inputs": ["x", "gate"], "outputs": ["y"],
           "tensors": [{"name": "x", "shape": [1, 4, 4, 8], "dtype": "int8", "quant": q(0.05, -3)},
                       {"name": "gate", "shape": [1, 1, 1, 8], "dtype": "int8", "quant": q(1 / 256, -128)},
                       {"name": "scaled", "shape": [1, 4, 4, 8], "dtype": "int8", "quant": q(0.04, 0)},
                       {"name": "leaky", "shape": [1, 4, 4, 8], "dtype": "int8", "quant": q(0.04, -10)},
                       {"name": "y", "shape": [1, 4, 4, 8], "dtype": "int8", "quant": q(0.03, -40)}],
           "ops": [{"name": "se", "type": "Mul", "inputs": ["x", "gate"], "outputs": ["scaled"], "activation": "relu6"},
                   {"name": "leaky", "type": "LeakyRelu", "inputs": ["scaled"], "outputs": ["leaky"], "alpha": 0.1},
                   {"name": "hswish", "type": "HardSwish", "inputs": ["leaky"], "outputs": ["y"]}]}
    path = tmp_path / "se_block.json"
    path.write_text(json.dumps(doc))
    as_written = load_json_graph(path)
    assert [op.type for op in as_written.ops] == ["Mul", "LeakyRelu", "HardSwish"]
    assert as_written.ops[1].attrs.alpha == pytest.approx(0.1)
    graph = load_model(path)        # the int8 chain of one tensor runs as one table (passes/fuse_tables.py)
    assert [op.type for op in graph.ops] == ["Mul", "Table"]
    assert graph.ops[1].attrs.what == "hardswish(leakyrelu(x))"
    report = verify_graph(graph, x86, runs=2, seed=1)
    assert report.oracle == "numpy" and report.ok, [c.summary() for c in report.comparisons]
