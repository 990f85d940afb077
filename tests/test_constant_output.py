"""Layers whose int8 activation range collapses to one value (RELU / RELU6 with the output zero point at 127): the
output is that value whatever the input. Both roads take every such op, bit-exact against the TFLite interpreter
on x86; on Cortex-M4 (QEMU) the tvm road, where conv layers are otherwise tensorized, too."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("tvm")
pytest.importorskip("ai_edge_litert")

from dwscodegen.backends.tvm import generate_kernels  # noqa: E402
from dwscodegen.importers import load_model  # noqa: E402
from dwscodegen.qparams import conv_qparams  # noqa: E402
from dwscodegen.targets import load_target  # noqa: E402
from dwscodegen.verify import verify_graph  # noqa: E402
from .support.layers import ConvCase, conv_graph  # noqa: E402
from .support.targets import target_or_skip  # noqa: E402
from .support.tflite_builder import build_single_op_model  # noqa: E402
from .support.tflite_cases import single_op  # noqa: E402

FUSED = ["CONV_2D", "DEPTHWISE_CONV_2D", "ADD", "AVERAGE_POOL_2D", "MAX_POOL_2D", "FULLY_CONNECTED"]


def _collapsed(tmp_path, op: str):
    """The op's single-op case with its output zero point at 127 and a RELU (fused, or the op itself)."""
    name, inputs, outputs, options = single_op(op, "int8", np.random.default_rng(5))
    outputs[0].zero_point = 127
    if op in ("AVERAGE_POOL_2D", "MAX_POOL_2D"):
        inputs[0].zero_point = 127          # pools keep the input's quantization
    if op in FUSED:
        options = dict(options, fused_activation="RELU")
    path = tmp_path / f"{op.lower()}.tflite"
    path.write_bytes(build_single_op_model(name, inputs, outputs, options))
    return load_model(path)


@pytest.mark.parametrize("backend", ["templates", "tvm"])
@pytest.mark.parametrize("op", FUSED + ["RELU", "RELU6"])
def test_constant_output_on_both_roads(tmp_path, op, backend):
    graph = _collapsed(tmp_path, op)
    report = verify_graph(graph, load_target("x86_64"), backend=backend, runs=2, seed=1, oracle="tflite")
    assert report.ok, [c.summary() for c in report.comparisons]


@pytest.mark.qemu
@pytest.mark.parametrize("kind,kernel", [("Conv2D", (1, 1)), ("Conv2D", (3, 3)), ("DepthwiseConv2D", (3, 3))])
def test_constant_output_tvm_on_cortex_m4(kind, kernel):
    case = ConvCase(kind, (1, 5, 5, 8), kernel, out_channels=4 if kind == "Conv2D" else 0, activation="relu",
                    out_zp=127)
    graph = conv_graph(case, "int8", seed=2)
    q = conv_qparams(graph, graph.ops[0])
    assert q.act_min == q.act_max == 127
    target = target_or_skip("cortex-m4")
    source = generate_kernels(graph, target)[0].source
    assert "tensorized" not in source and "= (int8_t)127;" in source     # a fill, nothing computed
    report = verify_graph(graph, target, backend="tvm", runs=2, seed=3, oracle="numpy")
    assert report.ok, [c.summary() for c in report.comparisons]
