"""The variant registry (templates/kernels/variants.toml, simd/registry.py): the one list of SIMD kernel variants.

- Its facts are consistent: every template exists, every ISA and feature is one the targets have, every write
  order is one streams.py knows, the x86 modules' names are the registry's, and what a target offers is exactly
  the registry's entries for its primary ISA.
- Every variant renders, compiles warning-free (the toolchain's -Werror flags) and is bit-exact (float32: within
  the verifier's tolerance) on a seeded random layer it applies to, on a target with its ISA: Cortex-M4, M55 and
  x86 by default; Cortex-M3, M7 and M33 with the slow tests. The generated kernel's banner names the variant.
- Every variant of the channel loop order (`order = "channels"`) is bit-exact on a strided pointwise layer and on
  a plane smaller than its pixel tile as well.
"""
from __future__ import annotations

import numpy as np
import pytest

from dwscodegen.backends.templates import generate_kernels, kernel_choices, simd
from dwscodegen.backends.templates.simd import avx, avx_elementwise, avx_f32, avx_glue, avx_hybrid, avx_s8, registry
from dwscodegen.backends.templates.streams import BUFFERED, ELEMENTS, PIXELS, WHOLE
from dwscodegen.paths import TEMPLATES_DIR
from dwscodegen.targets import load_target
from dwscodegen.verify import verify_graph
from .support.layers import ConvCase, assert_verified, conv_graph
from .support.targets import target_or_skip

DW, CV = "DepthwiseConv2D", "Conv2D"
FAST = ("cortex-m4", "cortex-m55", "x86_64-v3", "x86_64-v4")
SLOW = ("cortex-m3", "cortex-m7", "cortex-m33")
VARIANTS = registry.variants()


def test_registry_facts_are_consistent():
    isas = {feature for feature, _ in simd.ISAS}
    features = set().union(*(load_target(t).features for t in FAST + SLOW))
    for v in VARIANTS.values():
        assert (TEMPLATES_DIR / v.template).is_file(), (v.name, v.template)
        assert set(v.isa) <= isas and v.features <= features, v.name
        assert v.stream is None or v.stream.walk in (PIXELS, BUFFERED, WHOLE, ELEMENTS), v.name
        assert v.tile is None or (len(v.tile) == 2 and min(v.tile) >= 1), v.name
        assert v.weights in (None, "int8", "int16", "float32"), v.name
        assert v.estimate is None or (v.estimate[0] > 0 and v.estimate[1] > 0), v.name
    # the flash budget ranks the DSP conv candidates by their estimates when no tuning database has the layer: an
    # unestimated one would take variant_costs.UNLISTED, below the measured variants' figures
    assert all(v.estimate for v in VARIANTS.values() if "dsp" in v.isa and v.op.endswith("conv2d"))
    # no stub template that only names a tile is left: a variant's template is its family's
    stubs = [n for n in VARIANTS if (TEMPLATES_DIR / f"kernels/{n}.c.j2").is_file() and VARIANTS[n].template != f"kernels/{n}.c.j2"]
    assert not stubs


def test_x86_modules_name_the_registry_variants():
    for isa in (avx.AVX2, avx.AVX512):
        names = sum((m.variants(isa.level) for m in (avx_s8, avx_f32, avx_hybrid, avx_glue, avx_elementwise)), ())
        assert set(names) <= set(isa.VARIANTS), set(names) - set(isa.VARIANTS)
    assert set(avx.AVX2.VARIANTS) < set(avx.AVX512.VARIANTS)


@pytest.mark.parametrize("target_name", FAST + SLOW + ("x86_64",))
def test_a_target_offers_its_primary_isa_variants(target_name):
    target = load_target(target_name)
    isa = simd.primary_isa(target)
    offered = simd.offered(target)
    assert offered == tuple(n for n, v in VARIANTS.items() if isa in v.isa and v.features <= target.features)
    assert (not offered) == (target_name == "x86_64")


# --- every variant on a layer it applies to -----------------------------------------------------------

def _tflite(tmp_path, name, inputs, outputs, options):
    pytest.importorskip("tflite")
    from dwscodegen.importers import load_model
    from .support.tflite_builder import build_single_op_model
    path = tmp_path / f"{name.lower()}.tflite"
    path.write_bytes(build_single_op_model(name, inputs, outputs, options))
    return load_model(path)


def _conv_layers(op: str, dtype: str):
    """Seeded layers of one conv kind: one that fits every tile, a wide one (K loops), odd ones (channel tails)."""
    if op == "pointwise_conv2d":
        cases = [ConvCase(CV, (1, 5, 6, 40), (1, 1), out_channels=21, padding="VALID", activation="relu6"),
                 ConvCase(CV, (1, 3, 5, 130), (1, 1), out_channels=10, padding="VALID"),
                 ConvCase(CV, (1, 2, 3, 12), (1, 1), out_channels=3, padding="VALID")]
    elif op == "conv2d":
        cases = [ConvCase(CV, (1, 7, 6, 5), (3, 3), out_channels=10, stride=(2, 2), activation="relu"),
                 ConvCase(CV, (1, 9, 8, 3), (3, 3), out_channels=33, stride=(2, 2))]
    else:
        cases = [ConvCase(DW, (1, 7, 6, 24), (3, 3), activation="relu6"), ConvCase(DW, (1, 9, 4, 8), (5, 1)),
                 ConvCase(DW, (1, 6, 6, 8), (3, 3), multiplier=2),
                 ConvCase(DW, (1, 6, 5, 20), (6, 5), padding="VALID")]      # the window is the whole input
    return [lambda tmp, c=c, i=i: conv_graph(c, dtype, seed=11 + i) for i, c in enumerate(cases)]


def _glue_layers(op: str, dtype: str):
    from .support.tflite_builder import TensorSpec
    from .support.tflite_cases import act, bias, conv_weights
    rng = np.random.default_rng(5)
    if dtype == "hybrid":
        def hybrid(tmp, shape, oc, k, options, out_hw):
            w = conv_weights(rng, (oc, *k, shape[3]), "int8", 0)
            return _tflite(tmp, "CONV_2D", [act("x", shape, "float32"), w, bias(rng, oc, "float32")],
                           [act("y", (1, *out_hw, oc), "float32")], options)
        if op == "pointwise_conv2d":
            return [lambda tmp: hybrid(tmp, (1, 5, 6, 24), 40, (1, 1), dict(padding="VALID"), (5, 6))]
        return [lambda tmp: hybrid(tmp, (1, 9, 7, 3), 20, (3, 3), dict(padding="SAME", stride_h=2, stride_w=2), (5, 4))]
    if op == "fully_connected" and dtype == "int8":
        from .support.glue_cases import fully_connected
        return [lambda tmp: _tflite(tmp, *fully_connected(rng, 1, 67, 13)),
                lambda tmp: _tflite(tmp, *fully_connected(rng, 5, 64, 12, per_channel=True))]
    if op == "fully_connected":
        def fc_f32(tmp, rows, depth, units):
            w = rng.normal(0, depth ** -0.5, (units, depth)).astype(np.float32)
            return _tflite(tmp, "FULLY_CONNECTED", [act("x", (rows, depth), dtype), TensorSpec("w", w.shape, dtype, data=w),
                                                    bias(rng, units, dtype)],
                           [act("y", (rows, units), dtype)], dict(fused_activation="RELU"))
        return [lambda tmp: fc_f32(tmp, 1, 67, 13), lambda tmp: fc_f32(tmp, 5, 64, 12)]
    shape = (1, 6, 5, 24)
    if op in ("mul", "add"):
        def binary(tmp, b_shape):
            return _tflite(tmp, op.upper(), [act("a", shape, dtype, 0.05, -7), act("b", b_shape, dtype, 0.03, 20)],
                           [act("y", shape, dtype, 0.07, -3)], dict(fused_activation="RELU6"))
        return [lambda tmp: binary(tmp, shape), lambda tmp: binary(tmp, (1, 1, 1, 24))]
    if op == "mean":
        return [lambda tmp: _tflite(tmp, "MEAN", [act("x", (1, 3, 3, 40), dtype, 0.04, 5)],
                                    [act("y", (1, 40), dtype, 0.02, -9)], dict(axis=[1, 2], keep_dims=False))]
    if op == "avg_pool2d":
        return [lambda tmp: _tflite(tmp, "AVERAGE_POOL_2D", [act("x", (1, 9, 7, 21), dtype, 0.05, -7)],
                                    [act("y", (1, 5, 4, 21), dtype, 0.05, -7)],
                                    dict(filter_h=3, filter_w=3, stride_h=2, stride_w=2, padding="SAME"))]
    if op in ("lookup_table", "hard_swish"):
        return [lambda tmp: _tflite(tmp, "HARD_SWISH", [act("x", (1, 7, 5, 19), dtype, 0.05, 3)],
                                    [act("y", (1, 7, 5, 19), dtype, 0.03, -20)], {})]
    if op == "quantize":
        return [lambda tmp: _tflite(tmp, "QUANTIZE", [act("x", (1, 7, 5, 19), "float32")],
                                    [act("y", (1, 7, 5, 19), "int8", 0.04, -6)], {})]
    if op == "softmax":
        return [lambda tmp: _tflite(tmp, "SOFTMAX", [act("x", (2, 37), dtype, 0.09, 9)],
                                    [act("y", (2, 37), dtype, 1 / 256, -128)], dict(beta=1.0))]
    return []


def _layers(v: registry.Variant):
    if v.op in ("pointwise_conv2d", "conv2d", "depthwise_conv2d") and v.dtype != "hybrid":
        return _conv_layers(v.op, v.dtype)
    return _glue_layers(v.op, v.dtype)


def _cases():
    out = []
    for name in VARIANTS:
        targets = [t for t in FAST + SLOW if name in simd.offered(load_target(t))]
        x86 = [t for t in targets if t.startswith("x86")][:1]        # an x86 variant on its lowest level only
        for t in [t for t in targets if not t.startswith("x86")] + x86:
            marks = [pytest.mark.slow] if t in SLOW else []
            marks += [pytest.mark.qemu] if t.startswith("cortex") else []
            out.append(pytest.param(name, t, marks=marks, id=f"{name}-{t}"))
    return out


@pytest.mark.parametrize("name,target_name", _cases())
def test_every_variant_is_exact_on_a_layer(tmp_path, name, target_name):
    target = target_or_skip(target_name)
    variant = VARIANTS[name]
    schedules = {0: {"kernel": name}}
    tried = 0
    for make in _layers(variant):          # every test layer it applies to: the wide ones take the K loops
        graph = make(tmp_path)
        if name not in kernel_choices(graph, graph.ops[0], target):
            continue
        tried += 1
        source = generate_kernels(graph, target, schedules)[0].source
        assert f"kernel {name}" in source.split("*/")[0]          # the banner names the variant
        report = verify_graph(graph, target, runs=2, seed=3, oracle="numpy", schedules=schedules, footprint=False)
        assert_verified(report)
    assert tried, f"no test layer of {variant.op} {variant.dtype} takes {name} on {target_name}"


# --- the channel order (`order = "channels"`) on the pointwise shapes the matrix above leaves out ---------

def _channel_order_cases():
    out = []
    for name, v in VARIANTS.items():
        if v.order != "channels":
            continue
        for t in [t for t in FAST + SLOW if not t.startswith("x86") and name in simd.offered(load_target(t))]:
            out.append(pytest.param(name, t, marks=[pytest.mark.qemu] + ([pytest.mark.slow] if t in SLOW else []),
                                    id=f"{name}-{t}"))
    return out


@pytest.mark.parametrize("name,target_name", _channel_order_cases())
def test_the_channel_order_is_exact_strided_and_below_one_tile(tmp_path, name, target_name):
    """Strided pointwise layers (the pixel pointers from the output index) and planes of fewer pixels than the
    tile (only the tail loop): the channel loop outside, every pixel inside, bit-exact."""
    target = target_or_skip(target_name)
    schedules = {0: {"kernel": name}}
    cases = [ConvCase(CV, (1, 7, 6, 20), (1, 1), out_channels=11, stride=(2, 2), padding="VALID", activation="relu"),
             ConvCase(CV, (1, 1, 1, 36), (1, 1), out_channels=7, padding="VALID")]
    for i, case in enumerate(cases):
        graph = conv_graph(case, "int8", seed=31 + i)
        assert name in kernel_choices(graph, graph.ops[0], target)
        report = verify_graph(graph, target, runs=2, seed=3, oracle="numpy", schedules=schedules, footprint=False)
        assert_verified(report)
