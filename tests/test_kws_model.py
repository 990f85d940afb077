"""The real MLPerf Tiny DS-CNN keyword-spotting model (../shared/models), against the TFLite interpreter.

Every layer's output of the generated C is compared with the interpreter's reference kernels
(experimental_preserve_all_tensors), not only the final softmax. Skips when ../shared is absent.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from dwscodegen.importers import load_model
from dwscodegen.oracles import tflite_interpreter
from .support.layers import assert_verified  # noqa: E402
from .support.targets import target_or_skip
from dwscodegen.verify import verify_graph

MODELS = Path(__file__).resolve().parent.parent.parent / "shared" / "models"
KWS_INT8 = MODELS / "kws_ref_model.tflite"
KWS_FLOAT = MODELS / "kws_ref_model_float32.tflite"   # float32 with a hybrid (int8-weight) first conv

pytestmark = [pytest.mark.skipif(not KWS_INT8.is_file(), reason=f"{KWS_INT8} not present (needs ../shared)"),
              pytest.mark.skipif(not tflite_interpreter.available(), reason="ai-edge-litert not installed")]


_target = target_or_skip


def _verify_every_layer(target_name: str, runs: int, model=KWS_INT8):
    graph = load_model(model)
    report = verify_graph(graph, _target(target_name), runs=runs, seed=11, oracle="tflite", check_layers=True)
    assert report.oracle == "tflite"
    assert_verified(report)
    assert len(report.layers) == len(graph.ops)      # the interpreter kept every intermediate tensor
    bad = [f"{op.where()}: {c.summary()}" for op, c in report.layers if not c.ok]
    assert not bad, bad
    return report


def test_kws_int8_bit_exact_on_x86():
    _verify_every_layer("x86_64", runs=4)


@pytest.mark.qemu
@pytest.mark.parametrize("target_name", ["cortex-m4", "cortex-m55"])
def test_kws_int8_bit_exact_on_cortex_m(target_name):
    report = _verify_every_layer(target_name, runs=2)
    assert len(report.layer_instructions) == 13 and sum(report.layer_instructions) > 1_000_000


def test_kws_float32_on_x86():
    _verify_every_layer("x86_64", runs=3, model=KWS_FLOAT)


@pytest.mark.qemu
@pytest.mark.parametrize("target_name", ["cortex-m4", "cortex-m55"])
def test_kws_float32_on_cortex_m(target_name):
    _verify_every_layer(target_name, runs=1, model=KWS_FLOAT)
