"""The graph's edges: initializers, runtime inputs (float32, static shapes, 2-D or 4-D) and outputs."""
from __future__ import annotations

from ...errors import DwsError


def load_initializers(t) -> None:
    for init in t.model.graph.initializer:
        t.where = f"initializer '{init.name}'"
        try:
            t.values[init.name] = t.onnx.numpy_helper.to_array(init, base_dir=str(t.path.parent))
        except Exception as exc:
            raise t.fail(f"cannot read its data ({type(exc).__name__}: {exc})") from None


def graph_inputs(t) -> None:
    for inp in t.model.graph.input:
        if inp.name in t.values:
            continue      # IR < 4: initializers are listed as inputs too
        t.where = f"graph input '{inp.name}'"
        t.graph.inputs.append(t.new_activation(inp.name, _value_shape(t, inp), _value_dtype(t, inp)))
    if not t.graph.inputs:
        raise DwsError(f"{t.path}: model: the model has no runtime inputs")


def graph_outputs(t) -> None:
    for out in t.model.graph.output:
        t.where = f"graph output '{out.name}'"
        if out.name not in t.ir:
            raise t.fail("not produced by a supported node (a constant or an input cannot be an output)")
        if t.ir[out.name] in t.from_uint8:
            raise t.fail("is a uint8 tensor; the generated library computes uint8 activations as their int8 twins "
                         "(q - 128), so a model must end in DequantizeLinear (float32 outputs)")
        t.graph.outputs.append(t.ir[out.name])


def _value_shape(t, info) -> tuple[int, ...]:
    kind = info.type
    if not kind.HasField("tensor_type"):
        raise t.fail("is not a tensor (sequences, maps and optionals are not supported)")
    if not kind.tensor_type.HasField("shape"):
        raise t.fail("has no static shape; give the model fixed input shapes")
    dims = []
    for d in kind.tensor_type.shape.dim:
        if d.HasField("dim_value") and d.dim_value > 0:
            dims.append(int(d.dim_value))
        else:
            label = d.dim_param or "?"
            raise t.fail(f"has a dynamic dimension '{label}' (shape "
                         f"{[x.dim_value or x.dim_param or '?' for x in kind.tensor_type.shape.dim]}); "
                         "dynamic shapes are not supported: fix them, e.g. with onnxruntime's "
                         "`python -m onnxruntime.tools.make_dynamic_shape_fixed`")
    if len(dims) not in (2, 4):
        raise t.fail(f"has shape {dims}; inputs must be 4-D NCHW or 2-D [N, K]")
    return tuple(dims)


def _value_dtype(t, info) -> str:
    elem = info.type.tensor_type.elem_type
    if elem != t.onnx.TensorProto.FLOAT:
        type_name = t.onnx.TensorProto.DataType.Name(elem)
        raise t.fail(f"is {type_name}; graph inputs must be float32 (an int8 model quantizes its input "
                     "with QuantizeLinear)")
    return "float32"
