"""The JSON format carries every op: a float32 classifier head using each glue op verifies on x86."""
from __future__ import annotations

import json

import numpy as np
from click.testing import CliRunner

from dwscodegen.cli import main


def test_classifier_head_with_every_glue_op(tmp_path):
    rng = np.random.default_rng(8)
    t = lambda name, shape, **kw: dict(name=name, shape=shape, dtype="float32", **kw)  # noqa: E731
    doc = dict(
        name="head", weights="head.npz",
        tensors=[t("x", [1, 6, 6, 4]), t("padded", [1, 8, 8, 4]), t("pooled", [1, 4, 4, 4]),
                 t("maxed", [1, 4, 4, 4]), t("both", [1, 4, 4, 8]), t("relu", [1, 4, 4, 8]),
                 t("mean", [1, 1, 1, 8]), t("flat", [1, 8]), t("logits", [1, 5]), t("probs", [1, 5]),
                 t("fc_w", [5, 8], data={"npz": "fc_w"}), t("fc_b", [5], data=[0.1, -0.2, 0.3, 0.0, 0.05])],
        ops=[dict(name="pad", type="Pad", inputs=["x"], outputs=["padded"], paddings=[[0, 0], [1, 1], [1, 1], [0, 0]]),
             dict(name="avg", type="AveragePool2D", inputs=["padded"], outputs=["pooled"], filter=[3, 3],
                  stride=[2, 2], padding="SAME"),
             dict(name="max", type="MaxPool2D", inputs=["padded"], outputs=["maxed"], filter=[2, 2], stride=[2, 2]),
             dict(name="cat", type="Concatenation", inputs=["pooled", "maxed"], outputs=["both"], axis=3),
             dict(name="relu", type="Relu6", inputs=["both"], outputs=["relu"]),
             dict(name="gap", type="Mean", inputs=["relu"], outputs=["mean"], keep_dims=True),
             dict(name="flatten", type="Reshape", inputs=["mean"], outputs=["flat"]),
             dict(name="fc", type="FullyConnected", inputs=["flat", "fc_w", "fc_b"], outputs=["logits"]),
             dict(name="softmax", type="Softmax", inputs=["logits"], outputs=["probs"], beta=1.5)],
        inputs=["x"], outputs=["probs"])
    (tmp_path / "head.json").write_text(json.dumps(doc))
    np.savez(tmp_path / "head.npz", fc_w=rng.normal(0, 1, (5, 8)).astype(np.float32))
    result = CliRunner().invoke(main, ["verify", str(tmp_path / "head.json"), "-t", "x86_64", "--inputs", "4"])
    assert result.exit_code == 0, result.output
    assert "PASS" in result.output
