"""Regenerate the example graphs (JSON + npz) in this directory, deterministically.

Each block is defined once in float32 with seeded random weights, then quantized to int8 the way a
post-training quantizer does it: symmetric per-channel filters, int32 bias at input*filter scale, and
activation ranges calibrated by running the float reference on seeded inputs.

    python examples/make_examples.py
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from dwscodegen.importers import load_model  # noqa: E402
from dwscodegen.reference.graph import run_graph  # noqa: E402


def conv(name, kind, x, w, y, **attrs):
    return dict(name=name, type=kind, inputs=[x, w, w.replace("_w", "_b")], outputs=[y], **attrs)


def mbv1_ds_block():
    """MobileNetV1 depthwise separable block: dw 3x3 s2 + relu6, pw 1x1 + relu6."""
    shapes = {"input": [1, 16, 16, 8], "dw_out": [1, 8, 8, 8], "output": [1, 8, 8, 16]}
    weights = {"dw_w": [1, 3, 3, 8], "pw_w": [16, 1, 1, 8]}
    ops = [conv("dw1", "DepthwiseConv2D", "input", "dw_w", "dw_out", stride=[2, 2], padding="SAME",
                activation="relu6"),
           conv("pw1", "Conv2D", "dw_out", "pw_w", "output", activation="relu6")]
    return "mbv1_ds_block", shapes, weights, ops


def mbv2_inverted_residual():
    """MobileNetV2 inverted residual: pw expand x4 + relu6, dw 3x3 + relu6, pw project (linear), Add."""
    shapes = {"input": [1, 12, 12, 8], "expand": [1, 12, 12, 32], "dw_out": [1, 12, 12, 32],
              "project": [1, 12, 12, 8], "output": [1, 12, 12, 8]}
    weights = {"expand_w": [32, 1, 1, 8], "dw_w": [1, 3, 3, 32], "project_w": [8, 1, 1, 32]}
    ops = [conv("expand", "Conv2D", "input", "expand_w", "expand", activation="relu6"),
           conv("dw", "DepthwiseConv2D", "expand", "dw_w", "dw_out", padding="SAME", activation="relu6"),
           conv("project", "Conv2D", "dw_out", "project_w", "project"),
           dict(name="residual", type="Add", inputs=["input", "project"], outputs=["output"])]
    return "mbv2_inverted_residual", shapes, weights, ops


def dscnn_block():
    """DS-CNN keyword-spotting front: conv 10x4 s2 + relu on MFCCs, then one dw 3x3 + pw block."""
    shapes = {"input": [1, 49, 10, 1], "conv_out": [1, 25, 5, 32], "dw_out": [1, 25, 5, 32],
              "output": [1, 25, 5, 32]}
    weights = {"conv_w": [32, 10, 4, 1], "dw_w": [1, 3, 3, 32], "pw_w": [32, 1, 1, 32]}
    ops = [conv("conv1", "Conv2D", "input", "conv_w", "conv_out", stride=[2, 2], padding="SAME",
                activation="relu"),
           conv("dw2", "DepthwiseConv2D", "conv_out", "dw_w", "dw_out", padding="SAME", activation="relu"),
           conv("pw2", "Conv2D", "dw_out", "pw_w", "output", activation="relu")]
    return "dscnn_block", shapes, weights, ops


def float_weights(rng, weights, ops):
    data = {}
    for name, shape in weights.items():
        fan_in = int(np.prod(shape[1:])) if shape[0] != 1 else int(np.prod(shape[1:3]))
        data[name] = rng.normal(0, 1 / np.sqrt(fan_in), shape).astype(np.float32)
        out_c = shape[0] if shape[0] != 1 else shape[3]
        data[name.replace("_w", "_b")] = rng.normal(0, 0.1, out_c).astype(np.float32)
    return data


def write(name, shapes, data, ops, dtype, quant=None):
    tensors = []
    for t, shape in shapes.items():
        spec = dict(name=t, shape=shape, dtype=dtype)
        if quant:
            spec["quant"] = quant[t]
        tensors.append(spec)
    for t, arr in data.items():
        spec = dict(name=t, shape=list(arr.shape), dtype=str(arr.dtype), data={"npz": t})
        if quant and t in quant:
            spec["quant"] = quant[t]
        tensors.append(spec)
    base = f"{name}_{'f32' if dtype == 'float32' else 's8'}"
    doc = dict(name=base, weights=f"{base}.npz", tensors=tensors, ops=ops, inputs=["input"], outputs=["output"])
    (HERE / f"{base}.json").write_text(json.dumps(doc, indent=1) + "\n")
    np.savez(HERE / f"{base}.npz", **data)
    return HERE / f"{base}.json"


def quantize(name, shapes, fdata, ops, float_path):
    graph = load_model(float_path)
    rng = np.random.default_rng(1)
    ranges = {t: [0.0, 0.0] for t in shapes}
    for _ in range(8):
        x = rng.normal(0, 1, shapes["input"]).astype(np.float32)
        for t, v in run_graph(graph, {"input": x}).items():
            ranges[t] = [min(ranges[t][0], float(v.min())), max(ranges[t][1], float(v.max()))]
    quant = {}
    for t, (lo, hi) in ranges.items():
        scale = float(np.float32((hi - lo) / 255.0))
        zp = int(np.clip(round(-128 - lo / scale), -128, 127))
        quant[t] = dict(scale=scale, zero_point=zp)
    qdata = {}
    for op in ops:
        if op["type"] == "Add":
            continue
        x, w, b = op["inputs"]
        wf = fdata[w]
        axis = 3 if op["type"] == "DepthwiseConv2D" else 0
        other = tuple(i for i in range(4) if i != axis)
        wscale = (np.abs(wf).max(axis=other) / 127.0).astype(np.float32)
        shape = [1, 1, 1, 1]
        shape[axis] = -1
        qdata[w] = np.clip(np.round(wf / wscale.reshape(shape)), -127, 127).astype(np.int8)
        quant[w] = dict(scale=[float(s) for s in wscale], zero_point=[0] * len(wscale), axis=axis)
        bscale = np.float32(quant[x]["scale"]) * wscale
        qdata[b] = np.round(fdata[b] / bscale).astype(np.int32)
    return write(name, shapes, qdata, ops, "int8", quant)


def main():
    for seed, block in enumerate((mbv1_ds_block, mbv2_inverted_residual, dscnn_block)):
        name, shapes, weights, ops = block()
        rng = np.random.default_rng(seed)
        fdata = float_weights(rng, weights, ops)
        fpath = write(name, shapes, fdata, ops, "float32")
        qpath = quantize(name, shapes, fdata, ops, fpath)
        print(f"wrote {fpath.name}, {qpath.name}")


if __name__ == "__main__":
    main()
