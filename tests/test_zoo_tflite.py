"""Real TFLite exports from ../shared/models/zoo end to end (the verify runs are slow): Keras MobileNet (float32 and int8, a Keras 3
Reshape head) and MediaPipe BlazeFace (float16 weights, two outputs) import through the passes, generate with
both backends and verify on x86_64, the QEMU Cortex-M55 and (int8) Cortex-M4. Skipped without ../shared."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from dwscodegen.importers import load_model
from dwscodegen.targets import load_target
from dwscodegen.verify import verify_graph

from .support.layers import assert_verified  # noqa: E402
from .support.targets import target_or_skip

ZOO = Path(__file__).resolve().parents[1].parent / "shared" / "models" / "zoo"
TVM = pytest.mark.skipif(importlib.util.find_spec("tvm") is None, reason="apache-tvm not installed")
MODELS = ("mbv1_a025_96_c2_f32.tflite", "mbv1_a025_96_c2_s8.tflite", "mp_face_detection_short_range.tflite")
RUNS = [(m, "x86_64", "templates") for m in MODELS] + [pytest.param(m, "x86_64", "tvm", marks=TVM) for m in MODELS] \
    + [(m, "cortex-m55", "templates") for m in MODELS] + [("mbv1_a025_96_c2_s8.tflite", "cortex-m4", "templates")]

pytestmark = pytest.mark.skipif(not ZOO.is_dir(), reason=f"{ZOO} not present")


@pytest.mark.slow
@pytest.mark.parametrize("model, target, backend", RUNS)
def test_zoo_model_verifies(model, target, backend):
    graph = load_model(ZOO / model)
    tgt = load_target(target) if target == "x86_64" else target_or_skip(target)
    report = verify_graph(graph, tgt, backend=backend, runs=1 if tgt.runner == "qemu" else 2, seed=0, timeout=600)
    assert_verified(report)
    assert report.oracle == "tflite"     # the model's own framework (int8 SOFTMAX on its builtin kernel)


def test_zoo_imports_fold_what_the_exporters_wrote():
    mbv1 = load_model(ZOO / "mbv1_a025_96_c2_s8.tflite")
    assert [op.type for op in mbv1.ops[-3:]] == ["Conv2D", "Reshape", "Softmax"]   # SHAPE..PACK folded
    face = load_model(ZOO / "mp_face_detection_short_range.tflite")
    assert "Dequantize" not in {op.type for op in face.ops} and len(face.ops) == 90   # 74 DEQUANTIZE folded
    assert face.outputs == ["regressors", "classificators"]
    assert {face.tensor(n).dtype for op in face.ops for n in op.inputs} == {"float32"}
