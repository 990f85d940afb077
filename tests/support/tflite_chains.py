"""Small multi-operator .tflite models of what real exporters write around the compute ops: Keras 3 shape heads,
float16 weights, squeeze / expand_dims, strided slices and splits of activations, concatenation on any axis,
several outputs. Each builder returns the model's bytes (tflite_builder.build_model)."""
from __future__ import annotations

import numpy as np

from .tflite_builder import OpSpec, TensorSpec, build_model

SCALE, ZP = 0.05, -3


def ints(name: str, values) -> TensorSpec:
    v = np.asarray(values, dtype=np.int32)
    return TensorSpec(name, v.shape, "int32", data=v)


def act(name: str, shape, dtype: str, scale: float = SCALE, zp: int = ZP) -> TensorSpec:
    s8 = dtype == "int8"
    return TensorSpec(name, tuple(shape), dtype, scale=scale if s8 else None, zero_point=zp if s8 else None)


def keras_reshape_head(dtype: str) -> bytes:
    """keras.layers.Reshape under Keras 3: the batch size read at run time, SHAPE -> STRIDED_SLICE -> PACK."""
    x, y = act("x", (1, 1, 1, 6), dtype), act("y", (1, 6), dtype)
    shape, batch, new_shape = TensorSpec("shape", (4,), "int32"), TensorSpec("batch", (), "int32"), \
        TensorSpec("new_shape", (2,), "int32")
    return build_model([
        OpSpec("SHAPE", [x], [shape]),
        OpSpec("STRIDED_SLICE", [shape, ints("b", [0]), ints("e", [1]), ints("s", [1])], [batch],
               dict(shrink_axis_mask=1)),
        OpSpec("PACK", [batch, ints("units", 6)], [new_shape], dict(values_count=2)),
        OpSpec("RESHAPE", [x, new_shape], [y])])


def keras_flatten(dtype: str) -> bytes:
    """Flatten with the batch read at run time: [batch] + [prod(shape[1:])] (REDUCE_PROD, CONCATENATION)."""
    x, y = act("x", (1, 2, 3, 4), dtype), act("y", (1, 24), dtype)
    shape = TensorSpec("shape", (4,), "int32")
    batch, rest, count, new_shape = (TensorSpec(n, s, "int32") for n, s in
                                     (("batch", (1,)), ("rest", (3,)), ("count", (1,)), ("new_shape", (2,))))
    return build_model([
        OpSpec("SHAPE", [x], [shape]),
        OpSpec("STRIDED_SLICE", [shape, ints("b0", [0]), ints("e0", [1]), ints("s0", [1])], [batch]),
        OpSpec("STRIDED_SLICE", [shape, ints("b1", [1]), ints("e1", [0]), ints("s1", [1])], [rest],
               dict(end_mask=1)),
        OpSpec("REDUCE_PROD", [rest, ints("axes", [0])], [count], dict(keep_dims=True)),
        OpSpec("CONCATENATION", [batch, count], [new_shape], dict(axis=0)),
        OpSpec("RESHAPE", [x, new_shape], [y])])


def gathered_shape(dtype: str) -> bytes:
    """RESHAPE to [N, C] gathered from the input's shape."""
    x, y = act("x", (1, 1, 1, 6), dtype), act("y", (1, 6), dtype)
    shape, new_shape = TensorSpec("shape", (4,), "int32"), TensorSpec("new_shape", (2,), "int32")
    return build_model([OpSpec("SHAPE", [x], [shape]),
                        OpSpec("GATHER", [shape, ints("which", [0, 3])], [new_shape], dict(axis=0)),
                        OpSpec("RESHAPE", [x, new_shape], [y])])


def float16_conv(rng) -> bytes:
    """float32 CONV_2D whose filter and bias are float16 constants behind DEQUANTIZE (MediaPipe's BlazeFace)."""
    w16 = TensorSpec("w16", (4, 3, 3, 2), "float16", data=rng.normal(0, 0.3, (4, 3, 3, 2)).astype(np.float16))
    b16 = TensorSpec("b16", (4,), "float16", data=rng.normal(0, 0.1, 4).astype(np.float16))
    w, b = TensorSpec("w", (4, 3, 3, 2), "float32"), TensorSpec("b", (4,), "float32")
    x, y = act("x", (1, 6, 5, 2), "float32"), act("y", (1, 6, 5, 4), "float32")
    return build_model([OpSpec("DEQUANTIZE", [b16], [b]), OpSpec("DEQUANTIZE", [w16], [w]),
                        OpSpec("CONV_2D", [x, w, b], [y], dict(padding="SAME", fused_activation="RELU"))])


def sliced_constant_weights(rng) -> bytes:
    """float32 CONV_2D whose filter is every other row of a constant (STRIDED_SLICE) and whose bias is a
    SQUEEZE of one SPLIT part of another: shape ops on constants, folded at import."""
    w_all = TensorSpec("w_all", (8, 3, 3, 2), "float32", data=rng.normal(0, 0.3, (8, 3, 3, 2)).astype(np.float32))
    b_all = TensorSpec("b_all", (2, 4), "float32", data=rng.normal(0, 0.1, (2, 4)).astype(np.float32))
    w, b0, b1, b = (TensorSpec(n, s, "float32") for n, s in (("w", (4, 3, 3, 2)), ("b0", (1, 4)), ("b1", (1, 4)),
                                                              ("b", (4,))))
    x, y = act("x", (1, 5, 5, 2), "float32"), act("y", (1, 5, 5, 4), "float32")
    return build_model([
        OpSpec("STRIDED_SLICE", [w_all, ints("begin", [1, 0, 0, 0]), ints("end", [8, 3, 3, 2]),
                                 ints("strides", [2, 1, 1, 1])], [w]),
        OpSpec("SPLIT", [ints("axis", 0), b_all], [b0, b1], dict(num_splits=2)),
        OpSpec("SQUEEZE", [b1], [b], dict(squeeze_dims=[0])),
        OpSpec("CONV_2D", [x, w, b], [y], dict(padding="SAME"))], outputs=[y])


def squeeze_expand(dtype: str) -> bytes:
    x, mid, y = act("x", (1, 1, 1, 8), dtype), act("mid", (1, 8), dtype), act("y", (1, 8, 1), dtype)
    return build_model([OpSpec("SQUEEZE", [x], [mid], dict(squeeze_dims=[1, 2])),
                        OpSpec("EXPAND_DIMS", [mid, ints("axis", [-1])], [y])])


def strided_slice(dtype: str, shape, begin, end, strides, **masks) -> tuple[bytes, tuple]:
    """One STRIDED_SLICE of an activation (the output shape from NumPy's reading of the same index)."""
    from dwscodegen.passes.slicing import strided_slice_box
    out = strided_slice_box(tuple(shape), begin, end, strides, masks).shape
    x, y = act("x", shape, dtype), act("y", out, dtype)
    return build_model([OpSpec("STRIDED_SLICE", [x, ints("begin", begin), ints("end", end),
                                                 ints("strides", strides)], [y], masks)]), out


def slice_sizes(dtype: str) -> bytes:
    x, y = act("x", (1, 4, 5, 6), dtype), act("y", (1, 3, 2, 3), dtype)
    return build_model([OpSpec("SLICE", [x, ints("begin", [0, 1, 2, 1]), ints("size", [1, -1, 2, 3])], [y])])


def split(dtype: str) -> bytes:
    """SPLIT of the channels into three outputs, each a graph output."""
    x = act("x", (1, 4, 3, 6), dtype)
    ys = [act(f"y{k}", (1, 4, 3, 2), dtype) for k in range(3)]
    return build_model([OpSpec("SPLIT", [ints("axis", -1), x], ys, dict(num_splits=3))])


def split_sizes(dtype: str) -> bytes:
    """SPLIT_V along W (one size -1), feeding an ADD and two graph outputs."""
    x = act("x", (1, 3, 6, 2), dtype)
    a, b, c = act("a", (1, 3, 2, 2), dtype), act("b", (1, 3, 3, 2), dtype), act("c", (1, 3, 1, 2), dtype)
    s = act("s", (1, 3, 2, 2), dtype, 0.08, 1)
    return build_model([OpSpec("SPLIT_V", [x, ints("sizes", [2, -1, 1]), ints("axis", 2)], [a, b, c],
                               dict(num_splits=3)),
                        OpSpec("ADD", [a, a], [s])], outputs=[s, b, c])


def concatenation(dtype: str, shapes, axis: int) -> bytes:
    """CONCATENATION of activations on `axis` (negative counts from the end). int8: one quantization for all,
    as TFLite's kernel requires (a converter requantizes other inputs with a QUANTIZE in front)."""
    xs = [act(f"x{k}", s, dtype) for k, s in enumerate(shapes)]
    out = list(shapes[0])
    out[axis] = sum(s[axis] for s in shapes)
    return build_model([OpSpec("CONCATENATION", xs, [act("y", out, dtype)], dict(axis=axis))])


def requantized_concatenation() -> bytes:
    """int8 CONCATENATION of an input of another quantization, requantized by a QUANTIZE in front (as the
    converter writes it)."""
    x0, q0 = act("x0", (1, 3, 2, 4), "int8", 0.03, 7), act("q0", (1, 3, 2, 4), "int8")
    x1, y = act("x1", (1, 3, 2, 3), "int8"), act("y", (1, 3, 2, 7), "int8")
    return build_model([OpSpec("QUANTIZE", [x0], [q0]), OpSpec("CONCATENATION", [q0, x1], [y], dict(axis=-1))])


def three_outputs(dtype: str) -> bytes:
    """Outputs listed in another order than they are computed (as BlazeFace's are), one of them also read by
    later ops."""
    x = act("x", (1, 4, 4, 3), dtype)
    r, flat, pooled = act("r", (1, 4, 4, 3), dtype), act("flat", (1, 16, 3), dtype), act("pooled", (1, 2, 2, 3), dtype)
    return build_model([OpSpec("RELU", [x], [r]),
                        OpSpec("RESHAPE", [r], [flat], dict(new_shape=[1, 16, 3])),
                        OpSpec("MAX_POOL_2D", [r], [pooled], dict(filter_h=2, filter_w=2, stride_h=2, stride_w=2,
                                                                  padding="VALID"))],
                       outputs=[pooled, r, flat])
