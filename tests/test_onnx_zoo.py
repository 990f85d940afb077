"""The ONNX models of ../shared/models/zoo (torch exports: torchvision mnasnet0_5, legacy exporter, opset 13) end
to end: float32 as exported, and int8 as onnxruntime's quantize_static (QDQ, per channel, seeded random
calibration) makes it, against onnxruntime. Slow (about a minute per model and target); skipped without
../shared.

The QDQ model verifies bit-exactly on the seeded inputs below (verify's default seed). That is not a property
of every input: onnxruntime runs a QDQ model as Dequantize, float Conv, Quantize, and its float32 sums land on
the other side of a rounding boundary about once in a million values (each layer fed onnxruntime's own
inputs, test_qdq_layers_within_one_lsb bounds it); a deep network carries such a difference on to the output
for about a third of random inputs (docs/graph-format.md, "int8 semantics of ONNX models", has the numbers).
"""
from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from dwscodegen.importers import load_model  # noqa: E402
from dwscodegen.targets import load_target  # noqa: E402
from dwscodegen.verify import random_inputs, verify_graph  # noqa: E402

from .support.layers import assert_verified  # noqa: E402
from .support.onnx_cases import layer_differences, quantize_qdq  # noqa: E402
from .support.targets import target_or_skip  # noqa: E402

pytestmark = pytest.mark.slow
ZOO = Path(__file__).resolve().parent.parent.parent / "shared" / "models" / "zoo"
MODELS = sorted(ZOO.glob("*.onnx")) if ZOO.is_dir() else []
needs_zoo = pytest.mark.skipif(not MODELS, reason=f"no ONNX models in {ZOO} (../shared is not here)")
models = pytest.mark.parametrize("model", MODELS or [None], ids=lambda p: p.stem if p else "none")


@pytest.fixture(scope="module")
def quantized(tmp_path_factory):
    """model -> its QDQ version, made once per module."""
    made = {}

    def get(model: Path) -> Path:
        if model not in made:
            made[model] = quantize_qdq(model, tmp_path_factory.mktemp("qdq") / f"{model.stem}_qdq.onnx", seed=0,
                                       count=4)
        return made[model]
    return get


def _check(report, exact: bool) -> None:
    assert_verified(report)
    if exact:
        assert all(c.max_abs_err == 0 for c in report.comparisons), [c.summary() for c in report.comparisons]


@needs_zoo
@models
def test_float_verifies_on_x86(model):
    graph = load_model(model)
    _check(verify_graph(graph, load_target("x86_64"), runs=2, seed=0), exact=False)


@needs_zoo
@models
def test_qdq_verifies_bit_exactly_on_x86(model, quantized):
    graph = load_model(quantized(model))
    assert sum(graph.op_dtype(op) == "int8" for op in graph.ops) > len(graph.ops) // 2
    _check(verify_graph(graph, load_target("x86_64"), runs=3, seed=0), exact=True)


@needs_zoo
@models
def test_qdq_layers_within_one_lsb(model, quantized):
    path = quantized(model)
    graph = load_model(path)
    for inputs in random_inputs(graph, 7, 3):
        for where, (off, worst, size) in layer_differences(path, graph, inputs).items():
            assert worst <= 1 and off <= max(2, 1e-5 * size), (where, off, worst, size)


@pytest.mark.qemu
@needs_zoo
@models
@pytest.mark.parametrize("target", ["cortex-m4", "cortex-m55"])
def test_qdq_verifies_bit_exactly_on_cortex_m(model, target, quantized):
    """Larger than the parts these targets describe (the report says so); the QEMU boards hold it."""
    graph = load_model(quantized(model))
    report = verify_graph(graph, target_or_skip(target), runs=1, seed=0)
    _check(report, exact=True)
    assert len(report.layer_instructions) == len(graph.ops)
