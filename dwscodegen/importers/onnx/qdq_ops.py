"""QuantizeLinear and DequantizeLinear, one IR op each: Quantize (float32 -> int8) and Dequantize (int8 ->
float32). A DequantizeLinear of a constant (weights, biases) records the integer data and its quantization
instead: each op that reads it gets the data in its own layout and a Dequantize (Translator.weight)."""
from __future__ import annotations

import numpy as np

from ...ir import NoAttrs, QuantizeAttrs
from ...quant import UINT8_SHIFT
from .translate import QConst


def dequantize_linear(t, node) -> None:
    a = t.attrs(node)
    if a.get("block_size", 0):
        raise t.fail("blocked quantization (block_size) is not supported")
    x = node.input[0]
    zp_name = t.optional_input(node, 2)
    if t.is_static(x):
        data = t.values[x]
        if data.dtype.name not in ("int8", "int32"):
            raise t.fail(f"constant '{x}' is {data.dtype}; only int8 weights and int32 biases are supported")
        scale, zp = t.quant_params(node.input[1], zp_name, f"DequantizeLinear of '{x}'", per_tensor=False,
                                   zp_dtypes=(data.dtype.name,), zp_default=True)
        axis = None
        if scale.size > 1:
            axis = a.get("axis", 1)
            axis = axis + data.ndim if axis < 0 else axis
            if not 0 <= axis < data.ndim or data.shape[axis] != scale.size:
                raise t.fail(f"{scale.size} scales do not match axis {a.get('axis', 1)} of '{x}' {list(data.shape)}")
        t.qconsts[node.output[0]] = QConst(data, scale, zp, axis, x)
        shape = [1] * data.ndim
        if axis is not None:
            shape[axis] = scale.size
        real = (data.astype(np.float32) - zp.astype(np.float32).reshape(shape)) * scale.reshape(shape)
        t.values[node.output[0]] = real.astype(np.float32)
        return
    if x not in t.ir or t.dtype_of(x) != "int8":
        raise t.fail(f"input '{x}' must be an int8 activation (the output of QuantizeLinear or a QLinear op) or an "
                     "int8/int32 constant")
    scale, zp = t.quant_params(node.input[1], zp_name, f"DequantizeLinear of '{x}'", zp_default=True)
    if not zp_name and t.ir[x] in t.from_uint8:        # the default zero point is the input type's: uint8 0
        zp = zp - UINT8_SHIFT
    q = t.quant_of(x)
    if not t.same_quant(x, scale, zp):
        raise t.fail(f"dequantizes '{x}' with scale {scale[0]:g} / zero point {zp[0]} but it was quantized with "
                     f"{np.float32(q.scale[0]):g} / {int(q.zero_point[0])}")
    y = t.new_activation(node.output[0], t.shape_of(x), "float32")
    t.add_op(node, "Dequantize", [t.ir[x]], [y], NoAttrs(), name=f"dequantize_{x}")


def quantize_linear(t, node) -> None:
    a = t.attrs(node)
    if a.get("saturate", 1) != 1 or a.get("block_size", 0):
        raise t.fail("only the default saturate=1 without block_size is supported")
    x = t.float_input(node.input[0])
    zp_name = t.optional_input(node, 2)
    scale, zp = t.quant_params(node.input[1], zp_name, "QuantizeLinear")
    y = t.new_activation(node.output[0], t.shape_of(node.input[0]), "int8", t.ir_quant(scale, zp))
    t.mark_uint8(y, zp_name)
    t.add_op(node, "Quantize", [x], [y], QuantizeAttrs("half_even"))


HANDLERS = {"DequantizeLinear": dequantize_linear, "QuantizeLinear": quantize_linear}
