"""The 1:1 translation: each ONNX node becomes the IR op(s) it is, in file order, with no look at the nodes
around it (what spans nodes, QDQ groups, fused activations and biases, folded constants, is the passes'
work). The handlers of the op types live in the *_ops modules; this is what they share: tensors and
names, static values, quantization parameters, materializing constants in IR layout, errors."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...errors import DwsError
from ...ir import Graph, NoAttrs, Op, Quant, Tensor
from ...quant import UINT8_SHIFT
from . import layout


@dataclass
class QConst:
    """A constant behind DequantizeLinear: integer data (ONNX layout) and its quantization."""
    q: np.ndarray
    scale: np.ndarray        # float32 [1] or [channels]
    zp: np.ndarray           # zero points, same length
    axis: int | None         # None: per tensor
    name: str                # the ONNX name of the integer data


class Translator:
    def __init__(self, path: Path, model, onnx):
        self.path = path
        self.onnx = onnx
        self.model = model
        self.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
        self.values: dict[str, np.ndarray] = {}     # ONNX name -> static value (initializers, constants, ...)
        self.qconsts: dict[str, QConst] = {}        # DequantizeLinear outputs of constants
        self.ir: dict[str, str] = {}                # ONNX activation name -> IR tensor name
        self.dequantized: set[str] = set()          # IR outputs of the Dequantize ops weight() adds
        self.from_uint8: set[str] = set()           # IR int8 activations the file quantizes as uint8 (UINT8_SHIFT)
        self.ir_constants: dict[str, str] = {}      # ONNX constant -> its IR tensor (ONNX layout) for Static ops
        self.graph = Graph(name=_graph_name(path), tensors={}, ops=[], inputs=[], outputs=[], source=str(path))
        self.graph_outputs = [o.name for o in model.graph.output]
        self.where = "model"
        self.node_index = 0

    # ------------------------------------------------------------------ errors and attributes
    def fail(self, what: str) -> DwsError:
        return DwsError(f"{self.path}: {self.where}: {what}")

    @staticmethod
    def node_where(i: int, node) -> str:
        out = node.output[0] if node.output else ""
        return f"node {i} '{node.name or node.op_type}' ({node.op_type}, output '{out}')"

    def attrs(self, node) -> dict:
        return {a.name: self.onnx.helper.get_attribute_value(a) for a in node.attribute}

    def text_attr(self, node, name: str, default: str) -> str:
        value = self.attrs(node).get(name, default)
        return value.decode() if isinstance(value, bytes) else value

    # ------------------------------------------------------------------ IR tensors and ops
    def new_tensor(self, onnx_name: str, ir_shape, dtype: str, quant: Quant | None = None,
                   data: np.ndarray | None = None) -> str:
        """Declare an IR tensor for ONNX tensor `onnx_name` (a suffix #1, #2, ... keeps IR names unique)."""
        name, n = onnx_name, 1
        while name in self.graph.tensors:
            name = f"{onnx_name}#{n}"
            n += 1
        self.graph.tensors[name] = Tensor(name=name, shape=tuple(int(d) for d in ir_shape), dtype=dtype, quant=quant,
                                          data=data)
        self.graph.origin[name] = onnx_name
        return name

    def new_activation(self, onnx_name: str, onnx_shape, dtype: str, quant: Quant | None = None) -> str:
        name = self.new_tensor(onnx_name, layout.ir_shape(onnx_shape), dtype, quant)
        self.ir[onnx_name] = name
        return name

    def const_tensor(self, onnx_name: str, data: np.ndarray, dtype: str, quant: Quant | None = None) -> str:
        return self.new_tensor(onnx_name, data.shape, dtype, quant, np.ascontiguousarray(data.astype(dtype)))

    def add_op(self, node, op_type: str, inputs: list[str], outputs: list[str], attrs, name: str | None = None) -> Op:
        """An IR op for `node`, named after it (unique names are given once the passes are done)."""
        base = name or node.name
        base = re.sub(r"\s", "_", base) if base else f"{node.op_type.lower()}_{self.node_index}"
        op = Op(len(self.graph.ops), base, op_type, list(inputs), list(outputs), attrs, origin=self.where)
        self.graph.ops.append(op)
        return op

    # ------------------------------------------------------------------ activations
    def shape_of(self, name: str) -> tuple[int, ...]:
        """The ONNX shape of activation `name`."""
        if name in self.ir:
            return layout.onnx_shape(self.graph.tensor(self.ir[name]).shape)
        if name in self.values:
            raise self.fail(f"constant input '{name}' is not supported here; this input must be an activation")
        raise self.fail(f"input '{name}' is not produced by any supported node")

    def dtype_of(self, name: str) -> str:
        self.shape_of(name)
        return self.graph.tensor(self.ir[name]).dtype

    def quant_of(self, name: str) -> Quant:
        return self.graph.tensor(self.ir[name]).quant

    def act(self, name: str) -> str:
        """The IR tensor of activation `name` (float32, or int8 from QuantizeLinear / a QLinear op)."""
        self.shape_of(name)
        return self.ir[name]

    def float_input(self, name: str) -> str:
        """The IR tensor of float activation `name`."""
        if self.dtype_of(name) != "float32":
            raise self.fail(f"input '{name}' is {self.dtype_of(name)}; int8 tensors are only read through "
                            "DequantizeLinear or by QLinear ops")
        return self.ir[name]

    def emit(self, node, op_type: str, inputs: list[str], out_shape, attrs, keeps_quant: bool = False) -> Op:
        """One IR op from `inputs` (IR names: act() and weight() give them) to node.output[0] of ONNX shape
        `out_shape`: float32, or, for an op that keeps its input's quantization (`keeps_quant`), int8 when its
        one activation is int8 (QOperator models hand int8 tensors straight from QLinearConv to MaxPool,
        Flatten or Reshape)."""
        acts = [n for n in inputs if not self.graph.tensor(n).is_const and n not in self.dequantized]
        int8 = [n for n in acts if self.graph.tensor(n).dtype == "int8"]
        quant = None
        if int8:
            if not keeps_quant or len(acts) != 1:
                raise self.fail(f"int8 input '{self.graph.origin[int8[0]]}' must be read through DequantizeLinear "
                                "(only Flatten, Reshape and MaxPool take int8 tensors directly)")
            quant = self.graph.tensor(int8[0]).quant
        y = self.new_activation(node.output[0], out_shape, "int8" if int8 else "float32", quant)
        return self.add_op(node, op_type, inputs, [y], attrs)

    # ------------------------------------------------------------------ constants
    def is_static(self, name: str) -> bool:
        return name in self.values

    def static(self, name: str, what: str) -> np.ndarray:
        if name in self.values:
            return self.values[name]
        raise self.fail(f"{what} '{name}' must be a constant (an initializer or Constant node); "
                        "computed or runtime-supplied weights and shapes are not supported")

    def optional_input(self, node, k: int) -> str | None:
        return node.input[k] if len(node.input) > k and node.input[k] else None

    def weight(self, name: str, to_ir, axis_to_ir=lambda axis: axis) -> str:
        """Constant `name` as an IR float32 tensor in the layout `to_ir` gives it. Behind DequantizeLinear it is
        the integer constant (its quantization axis moved by `axis_to_ir`) and a Dequantize op, which
        fold_qdq either folds into an int8 op or into the float constant."""
        qc = self.qconsts.get(name)
        if qc is None:
            return self.const_tensor(name, to_ir(self.static(name, "constant").astype(np.float32)), "float32")
        data = to_ir(qc.q)
        axis = axis_to_ir(qc.axis) if qc.axis is not None else None
        q = self.const_tensor(qc.name, data, data.dtype.name, self.ir_quant(qc.scale, qc.zp, axis))
        y = self.new_tensor(name, data.shape, "float32")
        self.add_op(None, "Dequantize", [q], [y], NoAttrs(), name=f"dequantize_{qc.name}")
        self.dequantized.add(y)
        return y

    def elementwise_operand(self, name: str, rank: int) -> str:
        """An operand of Add / Mul: an activation as it is, a constant broadcast to the activation's layout."""
        if name in self.ir:
            return self.ir[name]
        self.static(name, "operand")
        return self.weight(name, lambda v: layout.broadcast_constant(v, rank))

    # ------------------------------------------------------------------ quantization parameters
    def quant_params(self, scale_name: str, zp_name: str | None, what: str, per_tensor: bool = True,
                     zp_dtypes=("int8",), zp_default: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """(scale, zero point) of a quantization; an activation's (per_tensor) may be uint8 in the file, which
        comes back as its int8 twin (UINT8_SHIFT). zp_default: a missing zero point is 0 of the input's type
        (DequantizeLinear); otherwise a missing one means uint8 0 (QuantizeLinear)."""
        scale = self.static(scale_name, f"{what} scale")
        if scale.dtype != np.float32:
            raise self.fail(f"{what} scale '{scale_name}' is {scale.dtype}; only float32 scales are supported")
        if not zp_name and zp_default:
            return scale.reshape(-1).astype(np.float32), np.zeros(scale.size, np.int32)
        zp = self.static(zp_name, f"{what} zero point") if zp_name else np.zeros(scale.shape, np.uint8)
        if per_tensor and zp.dtype == np.uint8:
            zp = zp.astype(np.int32) - UINT8_SHIFT
        elif zp.dtype.name not in zp_dtypes:
            kinds = "/".join(zp_dtypes) + (" (uint8 for activations)" if per_tensor else "")
            raise self.fail(f"{what} zero point '{zp_name}' is {zp.dtype}; only {kinds} is supported "
                            "(quantize weights with QuantType.QInt8)")
        scale, zp = scale.reshape(-1), zp.reshape(-1)
        if per_tensor and (scale.size != 1 or zp.size != 1):
            raise self.fail(f"{what}: per-axis quantization of an activation is not supported (int8 activations "
                            "are quantized per tensor)")
        if scale.size != zp.size:
            raise self.fail(f"{what}: {scale.size} scales but {zp.size} zero points")
        return scale.astype(np.float32), zp.astype(np.int32)

    def mark_uint8(self, y: str, zp_name: str | None) -> None:
        """Record that the int8 activation y is a uint8 one in the file (its zero point is uint8, or absent where
        that means uint8 0): a DequantizeLinear of it without a zero point means uint8 0 too."""
        if not zp_name or self.static(zp_name, "zero point").dtype == np.uint8:
            self.from_uint8.add(y)

    @staticmethod
    def ir_quant(scale: np.ndarray, zp: np.ndarray, axis: int | None = None) -> Quant:
        return Quant(scale=np.asarray(scale, np.float32).astype(np.float64), zero_point=np.asarray(zp, np.int32),
                     axis=axis if np.asarray(scale).size > 1 else None)

    def same_quant(self, name: str, scale: np.ndarray, zp: np.ndarray) -> bool:
        q = self.quant_of(name)
        return (scale[0], zp[0]) == (np.float32(q.scale[0]), int(q.zero_point[0]))


def _graph_name(path: Path) -> str:
    name = re.sub(r"\W", "_", path.stem)
    return name if re.match(r"[A-Za-z_]", name) else "model_" + name
