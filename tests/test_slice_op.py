"""The IR's Slice op on its own: the box arithmetic against NumPy's own indexing, the JSON form (with a
negative Concatenation axis) through both backends against the NumPy reference, and validation's errors.
The TFLite road to it (STRIDED_SLICE, SLICE, SPLIT) is in test_tflite_passes.py."""
from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest

from dwscodegen.errors import DwsError
from dwscodegen.importers import load_model
from dwscodegen.passes.slicing import box_of_index, strided_slice_box
from dwscodegen.reference.shape_ops import slice_values
from dwscodegen.targets import load_target
from dwscodegen.verify import verify_graph
from .support.layers import assert_verified  # noqa: E402

BACKENDS = ["templates", pytest.param("tvm", marks=[pytest.mark.tvm, pytest.mark.skipif(
    importlib.util.find_spec("tvm") is None, reason="apache-tvm not installed")])]


def _random_index(rng, shape):
    index = []
    for n in shape:
        kind = rng.integers(0, 4)
        if kind == 0:
            index.append(int(rng.integers(-n, n)))
        elif kind == 1:
            index.append(None)
            index.append(slice(None))
        else:
            step = int(rng.choice([-3, -2, -1, 1, 2, 3]))
            lo, hi = (int(v) for v in rng.integers(-n - 2, n + 3, 2))
            index.append(slice(lo, hi, step))
    return tuple(index)


def test_box_selects_what_numpy_indexing_selects():
    rng = np.random.default_rng(11)
    checked = 0
    for _ in range(400):
        shape = tuple(int(v) for v in rng.integers(1, 6, rng.integers(1, 5)))
        x = rng.normal(size=shape)
        index = _random_index(rng, shape)
        expected = x[index]
        if expected.size == 0:
            with pytest.raises(ValueError, match="selects no values"):
                box_of_index(shape, index)
            continue
        box = box_of_index(shape, index)
        assert box.shape == expected.shape
        np.testing.assert_array_equal(slice_values(x, box.starts, box.steps, box.counts).reshape(box.shape), expected)
        checked += 1
    assert checked > 150


def test_strided_slice_masks_mean_numpy_indexing():
    shape = (2, 5, 6, 3)
    x = np.arange(np.prod(shape)).reshape(shape)
    box = strided_slice_box(shape, [0, 1, -1, 0], [0, 4, 0, 2], [1, 2, -2, 1],
                            dict(begin_mask=0b0001, end_mask=0b0101, shrink_axis_mask=0b1000))
    np.testing.assert_array_equal(x[box.index], x[:, 1:4:2, -1::-2, 0])
    with pytest.raises(ValueError, match="stride 0"):
        strided_slice_box(shape, [0], [1], [0], {})


def _slice_graph(dtype: str) -> dict:
    q = dict(quant=dict(scale=0.04, zero_point=-5)) if dtype == "int8" else {}
    t = lambda name, shape: dict(name=name, shape=shape, dtype=dtype, **q)  # noqa: E731
    return dict(
        name="slices", tensors=[t("x", [1, 6, 5, 4]), t("top", [1, 3, 5, 4]), t("odd", [1, 3, 5, 2]),
                                t("back", [1, 2, 5, 4]), t("both", [1, 3, 5, 6])],
        ops=[dict(name="top", type="Slice", inputs=["x"], outputs=["top"], begin=[0, 0, 0, 0]),
             dict(name="odd", type="Slice", inputs=["top"], outputs=["odd"], begin=[0, 2, 0, 3], strides=[1, -1, 1, -2]),
             dict(name="back", type="Slice", inputs=["x"], outputs=["back"], begin=[0, 5, 4, 0], strides=[1, -2, -1, 1]),
             dict(name="cat", type="Concatenation", inputs=["top", "odd"], outputs=["both"], axis=-1)],
        inputs=["x"], outputs=["both", "back"])


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", ["int8", "float32"])
def test_json_slices_and_negative_concat_axis(tmp_path, dtype, backend):
    path = tmp_path / "slices.json"
    path.write_text(json.dumps(_slice_graph(dtype)))
    graph = load_model(path)
    assert graph.ops[3].attrs.axis == 3
    report = verify_graph(graph, load_target("x86_64"), backend=backend, runs=2, seed=3)
    assert_verified(report)


@pytest.mark.parametrize("change, message", [
    (dict(begin=[0, 4, 0, 0]), r"dimension 1: 3 value\(s\) from index 4 in steps of 1 leave the input's range"),
    (dict(begin=[0, 0, 0]), "'begin' must be a list of 4 integers"),
    (dict(begin=[0, 0, 0, 0], strides=[1, 0, 1, 1]), "in steps of 0"),
])
def test_slice_out_of_range_is_a_clear_error(tmp_path, change, message):
    doc = _slice_graph("float32")
    doc["ops"][0].update(change)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(DwsError, match=message):
        load_model(path)
