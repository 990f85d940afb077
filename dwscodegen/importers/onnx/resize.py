"""Resize (opset >= 11) over H and W as the IR's ResizeBilinear / ResizeNearest, which use TFLite's
coordinate conventions (align_corners, half_pixel_centers). An ONNX coordinate_transformation_mode /
nearest_mode is taken where it computes what one of those computes, and refused otherwise:

* nearest: the input row and column each output pixel reads are computed both ways, with onnxruntime's and
  TFLite's float32 formulas, for this model's sizes; a TFLite convention that reads the same pixels
  everywhere is taken (torch's default `nearest` upsampling, asymmetric + floor, is align_corners = false,
  half_pixel_centers = false; half_pixel + round_prefer_ceil is half_pixel_centers, and so is
  round_prefer_floor where no output pixel lands on a tie).
* linear: half_pixel (and pytorch_half_pixel, half_pixel_symmetric where they equal it), align_corners and
  asymmetric map onto half_pixel_centers, align_corners and neither; the interpolation is the same (TFLite's
  clamped corners are onnxruntime's clamped coordinates), up to float rounding.

Given `scales`, onnxruntime maps coordinates with that scale but TFLite with in / out: both are taken
only where in * scale is exactly the output size.
"""
from __future__ import annotations

import numpy as np

from ...ir import ResizeAttrs

TFLITE_CONVENTIONS = ((False, False), (True, False), (False, True))   # (align_corners, half_pixel_centers)
# the TFLite convention that computes the same coordinates as an ONNX coordinate_transformation_mode
LINEAR_MODES = {"half_pixel": (False, True), "pytorch_half_pixel": (False, True), "half_pixel_symmetric": (False, True),
                "align_corners": (True, False), "asymmetric": (False, False)}
NEAREST_MODES = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil")


def resize(t, node) -> None:
    if t.opset < 11:
        raise t.fail("Resize of opset < 11 is not supported; export with opset 11 or later")
    a = t.attrs(node)
    mode = t.text_attr(node, "mode", "nearest")
    coord = t.text_attr(node, "coordinate_transformation_mode", "half_pixel")
    nearest = t.text_attr(node, "nearest_mode", "round_prefer_floor")
    s = t.shape_of(node.input[0])
    if len(s) != 4:
        raise t.fail(f"input {list(s)} must be 4-D NCHW")
    out, scales = _output_size(t, node, a, s)
    if a.get("antialias", 0) and any(o < i for o, i in zip(out, s[2:])):
        raise t.fail("antialias=1 when downsampling is not supported")
    if t.text_attr(node, "keep_aspect_ratio_policy", "stretch") != "stretch":
        raise t.fail("keep_aspect_ratio_policy other than 'stretch' is not supported")
    if scales is not None and any(np.float32(i) * np.float32(sc) != o for i, sc, o in zip(s[2:], scales, out)):
        raise t.fail(f"scales {list(scales)} do not give whole output sizes ({list(s[2:])} x scales); onnxruntime "
                     "then maps coordinates with the scale, TFLite's resize with the size ratio, which differ: give "
                     "`sizes` instead, or scales with an integral result")
    if mode == "linear":
        if coord not in LINEAR_MODES or (coord == "pytorch_half_pixel" and min(out) == 1):
            raise t.fail(f"linear Resize with coordinate_transformation_mode '{coord}' is not supported: TFLite's "
                         "bilinear resize computes half_pixel, pytorch_half_pixel (output > 1), align_corners, "
                         "asymmetric")
        align_corners, half_pixel = LINEAR_MODES[coord]
        op_type = "ResizeBilinear"
    elif mode == "nearest":
        if nearest not in NEAREST_MODES:
            raise t.fail(f"nearest_mode '{nearest}' is not supported")
        onnx_rows = [_onnx_nearest(coord, nearest, i, o, sc, t)
                     for i, o, sc in zip(s[2:], out, scales or (None, None))]
        natural = LINEAR_MODES.get(coord, (False, True))    # tried first, so the graph reads like the file
        match = next((c for c in (natural,) + TFLITE_CONVENTIONS
                      if all(np.array_equal(_tflite_nearest(*c, i, o), rows)
                             for i, o, rows in zip(s[2:], out, onnx_rows))), None)
        if match is None:
            raise t.fail(f"nearest Resize with coordinate_transformation_mode '{coord}' and nearest_mode '{nearest}' "
                         f"reads other pixels (for {list(s[2:])} -> {list(out)}) than any of TFLite's nearest "
                         "neighbour conventions (align_corners / half_pixel_centers); torch's default nearest "
                         "(asymmetric, floor) and half_pixel with round_prefer_ceil are supported")
        align_corners, half_pixel = match
        op_type = "ResizeNearest"
    else:
        raise t.fail(f"mode '{mode}' is not supported (nearest or linear)")
    t.emit(node, op_type, [t.act(node.input[0])], (s[0], s[1], out[0], out[1]),
           ResizeAttrs(align_corners=align_corners, half_pixel_centers=half_pixel))


def _output_size(t, node, a: dict, s) -> tuple[tuple[int, int], tuple[float, float] | None]:
    """(out H, out W) and the H / W scales when `scales` gave them."""
    axes = [int(x) + 4 if int(x) < 0 else int(x) for x in a.get("axes", range(4))]
    scales_name, sizes_name = t.optional_input(node, 2), t.optional_input(node, 3)
    scales = t.static(scales_name, "Resize scales").reshape(-1) if scales_name else np.zeros(0)
    sizes = t.static(sizes_name, "Resize sizes").reshape(-1) if sizes_name else np.zeros(0)
    if (scales.size == 0) == (sizes.size == 0):
        raise t.fail("give exactly one of scales and sizes")
    given = scales if scales.size else sizes
    if given.size != len(axes):
        raise t.fail(f"{given.size} scales/sizes for axes {axes}")
    per_axis = dict(zip(axes, given.tolist()))
    same = {0: s[0], 1: s[1]} if sizes.size else {0: 1.0, 1: 1.0}
    if any(per_axis.get(k, same[k]) != same[k] for k in (0, 1)):
        raise t.fail(f"resizing the batch or channel axis ({list(given)} over axes {axes}) is not supported")
    if sizes.size:
        return (int(per_axis.get(2, s[2])), int(per_axis.get(3, s[3]))), None
    hw = tuple(np.float32(per_axis.get(k, 1.0)) for k in (2, 3))
    out = tuple(int(np.floor(np.float32(i) * sc)) for i, sc in zip(s[2:], hw))
    if min(out) < 1:
        raise t.fail(f"scales {list(given)} give an empty output")
    return out, hw


def _onnx_nearest(coord: str, nearest: str, size_in: int, size_out: int, scale, t) -> np.ndarray:
    """The input index each output index reads: onnxruntime's float32 arithmetic (upsamplebase.h)."""
    x = np.arange(size_out, dtype=np.float32)
    scale = np.float32(size_out) / np.float32(size_in) if scale is None else np.float32(scale)
    half = np.float32(0.5)
    if coord in ("half_pixel", "half_pixel_symmetric"):
        orig = (x + half) / scale - half
    elif coord == "pytorch_half_pixel":
        orig = (x + half) / scale - half if size_out > 1 else np.zeros_like(x)
    elif coord == "asymmetric":
        orig = x / scale
    elif coord == "tf_half_pixel_for_nn":
        orig = (x + half) / scale
    elif coord == "align_corners":
        orig = x * np.float32(size_in - 1) / np.float32(size_out - 1) if size_out > 1 else np.zeros_like(x)
    else:
        raise t.fail(f"nearest Resize with coordinate_transformation_mode '{coord}' is not supported")
    away = np.sign(orig) * np.floor(np.abs(orig) + half)            # std::round: half away from zero
    index = {"round_prefer_floor": np.where(orig == np.trunc(orig) + half, np.floor(orig), away),
             "round_prefer_ceil": away, "floor": np.floor(orig), "ceil": np.ceil(orig)}[nearest]
    return np.clip(index, 0, size_in - 1).astype(np.int64)


def _tflite_nearest(align_corners: bool, half_pixel: bool, size_in: int, size_out: int) -> np.ndarray:
    """The input index each output index reads: TFLite's reference GetNearestNeighbor, float32."""
    x = np.arange(size_out, dtype=np.float32)
    if align_corners and size_out > 1:
        scale = np.float32(size_in - 1) / np.float32(size_out - 1)
    else:
        scale = np.float32(size_in) / np.float32(size_out)
    v = (x + np.float32(0.5 if half_pixel else 0.0)) * scale
    index = np.sign(v) * np.floor(np.abs(v) + np.float32(0.5)) if align_corners else np.floor(v)
    return np.clip(index, 0, size_in - 1).astype(np.int64)


HANDLERS = {"Resize": resize}
