"""Load an .onnx model into the IR with the `onnx` package.

Layout: ONNX activations are NCHW, the IR and the generated C are NHWC. The conversion happens here,
once: 4-D activations become [N, H, W, C], convolution weights OIHW become [O, KH, KW, I], depthwise
weights (Conv with group == input channels) [C*m, 1, KH, KW] become [1, KH, KW, C*m], Gemm/MatMul
weights become [O, K]. **The generated library therefore takes NHWC inputs and produces NHWC
outputs**: a caller holding an NCHW image transposes it first. A 2-D tensor ([N, K], e.g. logits)
is the same in both layouts. Graph.origin maps every IR tensor to its ONNX tensor name.

float32: Conv (pads, strides, dilations, group 1 or depthwise), Relu, Clip (fused into the producing
op when it is the only consumer, else a Relu/Relu6 op), Add, AveragePool, MaxPool, GlobalAveragePool
(Mean), Flatten/Reshape (only where NCHW and NHWC order the elements alike: H = W = 1 or C = 1),
Gemm, MatMul (+ Add of a constant bias), Softmax (over the channels), Pad (constant 0), Concat,
Identity/Dropout.

int8: QDQ models (QuantizeLinear/DequantizeLinear around float ops, as onnxruntime's static quantizer
writes with QuantFormat.QDQ) and QLinearConv / QLinearMatMul. A float op whose activation inputs all
come from DequantizeLinear and whose only consumer is a QuantizeLinear (optionally through a
Relu/Clip) becomes one int8 op from the int8 inputs to the quantized output; weights and biases behind
DequantizeLinear become int8/int32 constants with their scales. Where the IR has no int8 op with the
model's quantization (Softmax's 1/255 output scale, a pool or reshape that changes the scale) the op
runs in float32 between Dequantize and Quantize ops, which is what the QDQ model means literally.
Graph-edge QuantizeLinear/DequantizeLinear become Quantize/Dequantize ops.

int8 convolutions and fully connected layers requantize as onnxruntime does (requant="onnx": float32
scale, round half to even; bit-exact with QLinearConv/QGemm/QLinearMatMul). An int8 GlobalAveragePool
(or AveragePool without padding) becomes a DepthwiseConv2D with a filter of ones at weight scale
1/(KH*KW), so it requantizes the same way. Add, Concatenation, Quantize and the Relu ops keep the
IR's TFLite arithmetic: docs/graph-format.md ("ONNX models") states how far that is from onnxruntime.

Anything else (an op, dtype, attribute value, dynamic shape or non-constant weight) is an error
naming the node, never an approximation.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DwsError
from ..ir import (Activation, AddAttrs, ConcatAttrs, Conv2DAttrs, FullyConnectedAttrs, Graph, MeanAttrs, NoAttrs,
                  Op, PadAttrs, PoolAttrs, Quant, SoftmaxAttrs, Tensor, same_padding)

SUPPORTED_OPS = ("Conv", "Relu", "Clip", "Add", "AveragePool", "MaxPool", "GlobalAveragePool", "Flatten",
                 "Reshape", "Gemm", "MatMul", "Softmax", "Pad", "Concat", "Identity", "Dropout",
                 "QuantizeLinear", "DequantizeLinear", "QLinearConv", "QLinearMatMul")
NCHW_TO_NHWC = (0, 2, 3, 1)
AXIS_NCHW_TO_NHWC = {0: 0, 1: 3, 2: 1, 3: 2}
# Ops with a fused activation in the IR
FUSES_ACTIVATION = ("Conv2D", "DepthwiseConv2D", "Add", "FullyConnected", "AveragePool2D", "MaxPool2D")


def _onnx():
    try:
        import onnx   # imported lazily: only this importer needs it
    except ImportError:   # pragma: no cover - onnx is a test dependency of the package
        raise DwsError("reading .onnx models needs the 'onnx' package: pip install onnx") from None
    return onnx


@dataclass
class _QConst:
    """A constant behind DequantizeLinear: integer data (ONNX layout) and its quantization."""
    q: np.ndarray
    scale: np.ndarray        # float32 [1] or [channels]
    zp: np.ndarray           # zero points, same length
    axis: int | None         # None: per tensor


@dataclass
class _Act:
    """An activation: its IR tensor name and its ONNX shape."""
    ir: str
    shape: tuple[int, ...]   # ONNX layout (NCHW for 4-D)
    dtype: str


class _Importer:
    def __init__(self, path: Path, model):
        self.path = path
        self.onnx = _onnx()
        self.model = model
        self.graph = model.graph
        self.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
        self.consts: dict[str, np.ndarray] = {}          # ONNX name -> value (float constants, shapes, ...)
        self.qconsts: dict[str, _QConst] = {}            # DequantizeLinear outputs of constants
        self.acts: dict[str, _Act] = {}                  # ONNX name -> activation
        self.dq: dict[str, str] = {}                     # DequantizeLinear output -> its int8 activation input
        self.tensors: dict[str, Tensor] = {}
        self.ops: list[Op] = []
        self.origin: dict[str, str] = {}
        self.op_names: set[str] = set()
        self.done: set[int] = set()                      # node indices folded into an earlier op
        self.consumers: dict[str, list[int]] = {}
        for i, node in enumerate(self.graph.node):
            for name in node.input:
                if name:
                    self.consumers.setdefault(name, []).append(i)
        self.graph_outputs = [o.name for o in self.graph.output]
        self.where = "model"

    # ------------------------------------------------------------------ errors and helpers
    def fail(self, what: str) -> DwsError:
        return DwsError(f"{self.path}: {self.where}: {what}")

    def node_where(self, i: int, node) -> str:
        out = node.output[0] if node.output else ""
        return f"node {i} '{node.name or node.op_type}' ({node.op_type}, output '{out}')"

    def attrs(self, node) -> dict:
        return {a.name: self.onnx.helper.get_attribute_value(a) for a in node.attribute}

    def single_consumer(self, name: str) -> int | None:
        """The index of the only node reading `name`, if exactly one does and it is not a graph output."""
        users = self.consumers.get(name, [])
        if len(users) == 1 and name not in self.graph_outputs:
            return users[0]
        return None

    def const(self, name: str, what: str) -> np.ndarray:
        if name in self.consts:
            return self.consts[name]
        raise self.fail(f"{what} '{name}' must be a constant (an initializer or Constant node); "
                        "computed or runtime-supplied weights and shapes are not supported")

    # ------------------------------------------------------------------ IR tensors
    def new_tensor(self, onnx_name: str, shape_onnx: tuple[int, ...], dtype: str, quant: Quant | None = None,
                   data: np.ndarray | None = None, layout: bool = True) -> str:
        """Declare an IR tensor for ONNX tensor `onnx_name` (a suffix keeps IR names unique)."""
        name = onnx_name
        n = 1
        while name in self.tensors:
            name = f"{onnx_name}#{n}"
            n += 1
        shape = tuple(shape_onnx[i] for i in NCHW_TO_NHWC) if layout and len(shape_onnx) == 4 else tuple(shape_onnx)
        self.tensors[name] = Tensor(name=name, shape=shape, dtype=dtype, quant=quant, data=data)
        self.origin[name] = onnx_name
        return name

    def new_act(self, onnx_name: str, shape: tuple[int, ...], dtype: str, quant: Quant | None = None) -> _Act:
        act = _Act(self.new_tensor(onnx_name, shape, dtype, quant), tuple(shape), dtype)
        self.acts[onnx_name] = act
        return act

    def const_tensor(self, onnx_name: str, data: np.ndarray, dtype: str, quant: Quant | None = None) -> str:
        return self.new_tensor(onnx_name, data.shape, dtype, quant, np.ascontiguousarray(data.astype(dtype)),
                               layout=False)

    def add_op(self, node, op_type: str, inputs: list[str], output: str, attrs) -> Op:
        base = re.sub(r"\s", "_", node.name) if node.name else f"{node.op_type.lower()}_{len(self.ops)}"
        name, n = base, 1
        while name in self.op_names:
            name = f"{base}_{n}"
            n += 1
        self.op_names.add(name)
        op = Op(len(self.ops), name, op_type, inputs, [output], attrs)
        self.ops.append(op)
        return op

    # ------------------------------------------------------------------ activations
    def float_input(self, name: str) -> _Act:
        """A float32 activation for `name`; a DequantizeLinear output gets a Dequantize op (once)."""
        if name in self.acts and self.acts[name].dtype == "float32":
            return self.acts[name]
        if name in self.dq:
            src = self.acts[self.dq[name]]
            act = self.new_act(name, src.shape, "float32")
            self.add_op(_Named(f"dequantize_{self.dq[name]}"), "Dequantize", [src.ir], act.ir, NoAttrs())
            return act
        if name in self.acts:
            raise self.fail(f"input '{name}' is {self.acts[name].dtype}; int8 tensors are only read through "
                            "DequantizeLinear or by QLinear ops")
        if name in self.consts or name in self.qconsts:
            raise self.fail(f"constant input '{name}' is not supported here; this input must be an activation")
        raise self.fail(f"input '{name}' is not produced by any supported node")

    def int8_input(self, name: str) -> _Act | None:
        """The int8 activation behind a DequantizeLinear output, or None."""
        return self.acts[self.dq[name]] if name in self.dq else None

    def shape_of(self, name: str) -> tuple[int, ...]:
        if name in self.acts:
            return self.acts[name].shape
        if name in self.dq:
            return self.acts[self.dq[name]].shape
        raise self.fail(f"input '{name}' is not an activation")

    # ------------------------------------------------------------------ quantization parameters
    def quant_params(self, scale_name: str, zp_name: str | None, what: str, per_tensor: bool = True,
                     zp_dtypes=("int8",), zp_default: bool = False) -> tuple[np.ndarray, np.ndarray]:
        scale = self.const(scale_name, f"{what} scale")
        if scale.dtype != np.float32:
            raise self.fail(f"{what} scale '{scale_name}' is {scale.dtype}; only float32 scales are supported")
        if not zp_name and zp_default:     # DequantizeLinear: zero point 0 of the input's type
            zp = np.zeros(scale.shape, np.int32)
            scale = scale.reshape(-1)
            return scale.astype(np.float32), zp.reshape(-1)
        if not zp_name:
            raise self.fail(f"{what} has no zero point, which means uint8; only int8 quantization (QuantType.QInt8) "
                            "is supported")
        zp = self.const(zp_name, f"{what} zero point")
        if zp.dtype.name not in zp_dtypes:
            raise self.fail(f"{what} zero point '{zp_name}' is {zp.dtype}; only {'/'.join(zp_dtypes)} is supported "
                            "(quantize activations and weights with QuantType.QInt8)")
        scale, zp = scale.reshape(-1), zp.reshape(-1)
        if per_tensor and (scale.size != 1 or zp.size != 1):
            raise self.fail(f"{what}: per-axis quantization of an activation is not supported (int8 activations "
                            "are quantized per tensor)")
        if scale.size != zp.size:
            raise self.fail(f"{what}: {scale.size} scales but {zp.size} zero points")
        return scale.astype(np.float32), zp.astype(np.int32)

    @staticmethod
    def ir_quant(scale: np.ndarray, zp: np.ndarray, axis: int | None = None) -> Quant:
        return Quant(scale=np.asarray(scale, np.float32).astype(np.float64), zero_point=np.asarray(zp, np.int32),
                     axis=axis if np.asarray(scale).size > 1 else None)

    def act_quant(self, act: _Act) -> tuple[float, int]:
        q = self.tensors[act.ir].quant
        return float(q.scale[0]), int(q.zero_point[0])

    # ------------------------------------------------------------------ conversion
    def run(self) -> Graph:
        self.load_constants()
        for inp in self.graph.input:
            if inp.name in self.consts:
                continue      # IR < 4: initializers are listed as inputs too
            self.where = f"graph input '{inp.name}'"
            self.new_act(inp.name, self.value_shape(inp), self.value_dtype(inp))
        inputs = [self.acts[i.name].ir for i in self.graph.input if i.name not in self.consts]
        if not inputs:
            raise self.fail("the model has no runtime inputs")
        for i, node in enumerate(self.graph.node):
            if i in self.done:
                continue
            self.where = self.node_where(i, node)
            self.convert(i, node)
        outputs = []
        for out in self.graph.output:
            self.where = f"graph output '{out.name}'"
            if out.name in self.dq:
                act = self.float_input(out.name)
            elif out.name in self.acts:
                act = self.acts[out.name]
            else:
                raise self.fail("not produced by a supported node (a constant or an input cannot be an output)")
            outputs.append(act.ir)
        name = re.sub(r"\W", "_", self.path.stem)
        name = name if re.match(r"[A-Za-z_]", name) else "model_" + name
        used = {t for op in self.ops for t in op.inputs + op.outputs} | set(inputs)
        tensors = {k: v for k, v in self.tensors.items() if k in used}
        return Graph(name=name, tensors=tensors, ops=self.ops, inputs=inputs, outputs=outputs,
                     source=str(self.path), origin={k: v for k, v in self.origin.items() if k in tensors})

    def value_shape(self, info) -> tuple[int, ...]:
        t = info.type
        if not t.HasField("tensor_type"):
            raise self.fail("is not a tensor (sequences, maps and optionals are not supported)")
        if not t.tensor_type.HasField("shape"):
            raise self.fail("has no static shape; give the model fixed input shapes")
        dims = []
        for d in t.tensor_type.shape.dim:
            if d.HasField("dim_value") and d.dim_value > 0:
                dims.append(int(d.dim_value))
            else:
                label = d.dim_param or "?"
                raise self.fail(f"has a dynamic dimension '{label}' (shape "
                                f"{[x.dim_value or x.dim_param or '?' for x in t.tensor_type.shape.dim]}); "
                                "dynamic shapes are not supported: fix them, e.g. with onnxruntime's "
                                "`python -m onnxruntime.tools.make_dynamic_shape_fixed`")
        if len(dims) not in (2, 4):
            raise self.fail(f"has shape {dims}; inputs must be 4-D NCHW or 2-D [N, K]")
        return tuple(dims)

    def value_dtype(self, info) -> str:
        elem = info.type.tensor_type.elem_type
        if elem != self.onnx.TensorProto.FLOAT:
            type_name = self.onnx.TensorProto.DataType.Name(elem)
            raise self.fail(f"is {type_name}; graph inputs must be float32 (an int8 model quantizes its input "
                            "with QuantizeLinear)")
        return "float32"

    def load_constants(self) -> None:
        numpy_helper = self.onnx.numpy_helper
        for init in self.graph.initializer:
            self.where = f"initializer '{init.name}'"
            try:
                self.consts[init.name] = numpy_helper.to_array(init, base_dir=str(self.path.parent))
            except Exception as exc:
                raise self.fail(f"cannot read its data ({type(exc).__name__}: {exc})") from None
        for node in self.graph.node:
            if node.op_type == "Constant" and node.domain in ("", "ai.onnx"):
                a = self.attrs(node)
                if "value" not in a:
                    self.where = f"Constant node '{node.name}'"
                    raise self.fail(f"only 'value' constants are supported, got {sorted(a)}")
                self.consts[node.output[0]] = numpy_helper.to_array(a["value"])

    def convert(self, i: int, node) -> None:
        if node.domain not in ("", "ai.onnx"):
            raise self.fail(f"operator domain '{node.domain}' is not supported (standard ONNX operators only)")
        if node.op_type == "Constant":
            return
        handler = getattr(self, f"op_{node.op_type}", None)
        if handler is None:
            raise self.fail(f"operator {node.op_type} is not supported; supported: {', '.join(SUPPORTED_OPS)}")
        handler(i, node)

    # ------------------------------------------------------------------ Q / DQ
    def op_DequantizeLinear(self, i, node):
        a = self.attrs(node)
        if a.get("block_size", 0):
            raise self.fail("blocked quantization (block_size) is not supported")
        x = node.input[0]
        if x in self.consts:
            data = self.consts[x]
            if data.dtype.name not in ("int8", "int32"):
                raise self.fail(f"constant '{x}' is {data.dtype}; only int8 weights and int32 biases are supported")
            scale, zp = self.quant_params(node.input[1], node.input[2] if len(node.input) > 2 else None,
                                          f"DequantizeLinear of '{x}'", per_tensor=False,
                                          zp_dtypes=(data.dtype.name,), zp_default=True)
            axis = None
            if scale.size > 1:
                axis = a.get("axis", 1)
                axis = axis + data.ndim if axis < 0 else axis
                if not 0 <= axis < data.ndim or data.shape[axis] != scale.size:
                    raise self.fail(f"{scale.size} scales do not match axis {a.get('axis', 1)} of '{x}' "
                                    f"{list(data.shape)}")
            self.qconsts[node.output[0]] = _QConst(data, scale, zp, axis)
            bshape = [1] * data.ndim
            if axis is not None:
                bshape[axis] = scale.size
            real = (data.astype(np.float32) - zp.astype(np.float32).reshape(bshape)) * scale.reshape(bshape)
            self.consts[node.output[0]] = real.astype(np.float32)
            return
        if x not in self.acts or self.acts[x].dtype != "int8":
            raise self.fail(f"input '{x}' must be an int8 activation (the output of QuantizeLinear or a QLinear "
                            "op) or an int8/int32 constant")
        src = self.acts[x]
        scale, zp = self.quant_params(node.input[1], node.input[2] if len(node.input) > 2 else None,
                                      f"DequantizeLinear of '{x}'", zp_default=True)
        if (scale[0], zp[0]) != (np.float32(self.act_quant(src)[0]), self.act_quant(src)[1]):
            raise self.fail(f"dequantizes '{x}' with scale {scale[0]:g} / zero point {zp[0]} but it was quantized "
                            f"with {self.act_quant(src)[0]:g} / {self.act_quant(src)[1]}")
        self.dq[node.output[0]] = x

    def op_QuantizeLinear(self, i, node):
        a = self.attrs(node)
        if a.get("saturate", 1) != 1 or a.get("block_size", 0):
            raise self.fail("only the default saturate=1 without block_size is supported")
        x = self.float_input(node.input[0])
        scale, zp = self.quant_params(node.input[1], node.input[2] if len(node.input) > 2 else None,
                                      "QuantizeLinear")
        y = self.new_act(node.output[0], x.shape, "int8", self.ir_quant(scale, zp))
        self.add_op(node, "Quantize", [x.ir], y.ir, NoAttrs())

    # ------------------------------------------------------------------ fusion of the tail
    def tail(self, name: str, allow_activation: bool):
        """Follow `name` through an optional Relu/Clip and an optional QuantizeLinear, each the only
        consumer. Returns (activation, activation node index, quantize node index)."""
        act, act_i, q_i = Activation(), None, None
        nxt = self.single_consumer(name)
        if allow_activation and nxt is not None and self.graph.node[nxt].op_type in ("Relu", "Clip"):
            act = self.activation_of(nxt)
            if act is not None:
                act_i, name = nxt, self.graph.node[nxt].output[0]
                nxt = self.single_consumer(name)
            else:
                act = Activation()
        if nxt is not None and self.graph.node[nxt].op_type == "QuantizeLinear" \
                and self.graph.node[nxt].input[0] == name:
            q_i = nxt
        return act, act_i, q_i

    def activation_of(self, i: int) -> Activation | None:
        node = self.graph.node[i]
        if node.op_type == "Relu":
            return Activation("relu")
        low, high = self.clip_bounds(node)
        if low == 0.0 and high == 6.0:
            return Activation("relu6")
        if low == 0.0 and high is None:
            return Activation("relu")
        if low is not None and high is not None:
            return Activation("clamp", low, high)
        return None          # a one-sided clamp other than relu has no IR form

    def clip_bounds(self, node) -> tuple[float | None, float | None]:
        if self.opset < 11:
            a = self.attrs(node)
            low, high = a.get("min"), a.get("max")
        else:
            low = float(self.const(node.input[1], "Clip min")) if len(node.input) > 1 and node.input[1] else None
            high = float(self.const(node.input[2], "Clip max")) if len(node.input) > 2 and node.input[2] else None
        return (None if low is None else float(np.float32(low)), None if high is None else float(np.float32(high)))

    def emit(self, i: int, node, op_type: str, inputs_int8, inputs_float, out_shape, attrs,
             int8_ok=lambda yq: True, float_attrs=None, int8_type: str | None = None, keeps_quant: bool = False):
        """Emit `node` as one IR op: int8 when its activation inputs come from DequantizeLinear and its
        output goes (through an optional fused Relu/Clip) only to a QuantizeLinear and `int8_ok` accepts
        the output quantization; float32 otherwise. inputs_int8 / inputs_float: callables giving the IR
        input names for either case."""
        has_act = op_type in FUSES_ACTIVATION
        acts_in = [n for n in self.activation_inputs(node)]
        direct = [n for n in acts_in if n in self.acts and self.acts[n].dtype == "int8"]
        if direct:      # QOperator models: an int8 tensor straight from QuantizeLinear / QLinearConv
            if not keeps_quant or len(acts_in) != 1:
                raise self.fail(f"int8 input '{direct[0]}' must be read through DequantizeLinear (only Flatten, "
                                "Reshape and MaxPool take int8 tensors directly)")
            x = self.acts[direct[0]]
            y = self.new_act(node.output[0], out_shape, "int8", self.tensors[x.ir].quant)
            self.add_op(node, op_type, [x.ir], y.ir, attrs if float_attrs is None else float_attrs)
            return
        act, act_i, q_i = self.tail(node.output[0], has_act)
        int8_in = [self.int8_input(n) for n in acts_in]
        if q_i is not None and all(a is not None for a in int8_in):
            qnode = self.graph.node[q_i]
            saved = self.where
            self.where = self.node_where(q_i, qnode)
            scale, zp = self.quant_params(qnode.input[1], qnode.input[2] if len(qnode.input) > 2 else None,
                                          "QuantizeLinear")
            self.where = saved
            yq = self.ir_quant(scale, zp)
            ins = inputs_int8(int8_in) if int8_ok(yq) else None
            if ins is not None:
                if has_act:
                    attrs.activation = act
                y = self.new_act(qnode.output[0], out_shape, "int8", yq)
                self.add_op(node, int8_type or op_type, ins, y.ir, attrs)
                self.done.update(k for k in (act_i, q_i) if k is not None)
                return
        if float_attrs is not None:
            attrs = float_attrs
        out_name = node.output[0]
        if has_act and act_i is not None:
            attrs.activation = act
            out_name = self.graph.node[act_i].output[0]
            self.done.add(act_i)
        ins = inputs_float([self.float_input(n) for n in acts_in])
        y = self.new_act(out_name, out_shape, "float32")
        self.add_op(node, op_type, ins, y.ir, attrs)

    def activation_inputs(self, node) -> list[str]:
        """The inputs of `node` that are activations (not constants), in order."""
        return [n for n in node.input if n and n not in self.consts]

    # ------------------------------------------------------------------ convolution
    def conv_attrs(self, node, x_shape, w_shape) -> tuple[Conv2DAttrs, tuple[int, ...], str]:
        a = self.attrs(node)
        if len(x_shape) != 4 or len(w_shape) != 4:
            raise self.fail(f"only 2-D convolution of NCHW inputs is supported, got input {list(x_shape)} and "
                            f"weights {list(w_shape)}")
        n, c, h, w = x_shape
        oc, icg, kh, kw = w_shape
        if "kernel_shape" in a and tuple(a["kernel_shape"]) != (kh, kw):
            raise self.fail(f"kernel_shape {a['kernel_shape']} does not match the weights {list(w_shape)}")
        stride = tuple(a.get("strides", (1, 1)))
        dilation = tuple(a.get("dilations", (1, 1)))
        group = int(a.get("group", 1))
        if group == 1:
            kind, mult = "Conv2D", 1
            if icg != c:
                raise self.fail(f"weights {list(w_shape)} expect {icg} input channels, input has {c}")
        elif group == c and icg == 1 and oc % c == 0:
            kind, mult = "DepthwiseConv2D", oc // c
        else:
            raise self.fail(f"grouped convolution with group={group} is not supported (only group=1 or depthwise, "
                            f"group = input channels = {c})")
        pad = self.padding(a, (h, w), (kh, kw), stride, dilation)
        attrs = Conv2DAttrs(stride=stride, dilation=dilation, pad=pad, depth_multiplier=mult)
        oh = (h + pad[0] + pad[1] - ((kh - 1) * dilation[0] + 1)) // stride[0] + 1
        ow = (w + pad[2] + pad[3] - ((kw - 1) * dilation[1] + 1)) // stride[1] + 1
        if oh < 1 or ow < 1:
            raise self.fail(f"kernel {kh}x{kw} does not fit input {h}x{w} with pads {list(pad)}")
        return attrs, (n, oc, oh, ow), kind

    def padding(self, a: dict, hw, khw, stride, dilation) -> tuple[int, int, int, int]:
        auto = a.get("auto_pad", b"NOTSET")
        auto = auto.decode() if isinstance(auto, bytes) else auto
        if len(stride) != 2 or len(dilation) != 2 or min(stride) < 1 or min(dilation) < 1:
            raise self.fail(f"strides {list(stride)} / dilations {list(dilation)} must be two values >= 1")
        if auto == "NOTSET":
            pads = tuple(int(p) for p in a.get("pads", (0, 0, 0, 0)))
            if len(pads) != 4 or min(pads) < 0:
                raise self.fail(f"pads {list(pads)} must be 4 values >= 0")
            return pads[0], pads[2], pads[1], pads[3]        # ONNX [top, left, bottom, right]
        if auto == "VALID":
            return (0, 0, 0, 0)
        if auto == "SAME_UPPER":
            return (same_padding(hw[0], khw[0], stride[0], dilation[0])
                    + same_padding(hw[1], khw[1], stride[1], dilation[1]))
        raise self.fail(f"auto_pad={auto} is not supported (NOTSET, SAME_UPPER or VALID)")

    def conv_weights(self, kind: str, w: np.ndarray) -> np.ndarray:
        """OIHW -> [O, KH, KW, I]; depthwise [C*m, 1, KH, KW] -> [1, KH, KW, C*m]."""
        if kind == "DepthwiseConv2D":
            return np.ascontiguousarray(w.transpose(1, 2, 3, 0))
        return np.ascontiguousarray(w.transpose(0, 2, 3, 1))

    def op_Conv(self, i, node):
        x_shape = self.shape_of(node.input[0])
        w_name = node.input[1]
        if w_name not in self.consts:
            raise self.fail(f"weights '{w_name}' must be a constant (an initializer, possibly behind "
                            "DequantizeLinear)")
        w = self.consts[w_name]
        attrs, out_shape, kind = self.conv_attrs(node, x_shape, w.shape)
        b_name = node.input[2] if len(node.input) > 2 and node.input[2] else None
        if b_name is not None and b_name not in self.consts:
            raise self.fail(f"bias '{b_name}' must be a constant")

        def int8_inputs(xs):
            wq = self.qconsts.get(w_name)
            if wq is None:
                return None          # float weights: the op runs in float between Dequantize and Quantize
            return self.conv_int8_inputs(xs[0], kind, wq, w_name, b_name)

        def float_inputs(xs):
            wt = self.const_tensor(w_name, self.conv_weights(kind, w.astype(np.float32)), "float32")
            ins = [xs[0].ir, wt]
            if b_name is not None:
                ins.append(self.const_tensor(b_name, self.consts[b_name].astype(np.float32).reshape(-1), "float32"))
            return ins

        attrs_int8 = Conv2DAttrs(**{**vars(attrs), "requant": "onnx"})
        self.emit(i, node, kind, int8_inputs, float_inputs, out_shape, attrs_int8, float_attrs=attrs)

    def conv_int8_inputs(self, x: _Act, kind: str, wq: _QConst, w_name: str, b_name: str | None,
                         w_layout=None) -> list[str]:
        if wq.q.dtype != np.int8:
            raise self.fail(f"weights '{w_name}' are {wq.q.dtype}; int8 weights are required")
        if np.any(wq.zp != 0):
            raise self.fail(f"weights '{w_name}' have a non-zero zero point; only symmetric int8 weights are "
                            "supported (onnxruntime's quantizer makes them symmetric by default)")
        out_axis = 0
        if wq.axis is not None and wq.axis != out_axis:
            raise self.fail(f"weights '{w_name}' are quantized per channel along axis {wq.axis}; only the "
                            "output-channel axis 0 is supported")
        data = self.conv_weights(kind, wq.q) if w_layout is None else w_layout(wq.q)
        ir_axis = None
        if wq.axis is not None:
            ir_axis = 3 if kind == "DepthwiseConv2D" else 0
        wt = self.const_tensor(w_name, data, "int8", self.ir_quant(wq.scale, wq.zp, ir_axis))
        ins = [x.ir, wt]
        if b_name is not None:
            ins.append(self.int32_bias(b_name, x, wq, data_channels=data.shape[3 if kind == "DepthwiseConv2D" else 0]))
        return ins

    def int32_bias(self, b_name: str, x: _Act, wq: _QConst, data_channels: int) -> str:
        bq = self.qconsts.get(b_name)
        if bq is None:
            if b_name in self.consts and self.consts[b_name].dtype == np.int32:   # QLinearConv's raw int32 bias
                return self.const_tensor(b_name, self.consts[b_name].reshape(-1), "int32")
            raise self.fail(f"bias '{b_name}' is float in an int8 op; quantize it to int32 at input_scale * "
                            "weight_scale (onnxruntime's quantizer does)")
        if bq.q.dtype != np.int32 or np.any(bq.zp != 0):
            raise self.fail(f"bias '{b_name}' must be int32 with zero point 0, got {bq.q.dtype}")
        expected = np.broadcast_to(np.float32(self.act_quant(x)[0]) * wq.scale, (data_channels,))
        got = np.broadcast_to(bq.scale, (data_channels,))
        if np.any(np.abs(got.astype(np.float64) - expected) > 1e-6 * expected):
            raise self.fail(f"bias '{b_name}' scale is not input_scale * weight_scale (e.g. {got[0]:g} vs "
                            f"{expected[0]:g}); such a bias cannot be added to the int32 accumulator")
        return self.const_tensor(b_name, bq.q.reshape(-1), "int32")

    def op_QLinearConv(self, i, node):
        ins = list(node.input) + [""] * (9 - len(node.input))
        x = self.acts.get(ins[0])
        if x is None or x.dtype != "int8":
            raise self.fail(f"input '{ins[0]}' must be an int8 activation")
        self.check_same_quant(x, ins[1], ins[2], "x")
        wq = self.qlinear_weights(ins[3], ins[4], ins[5])
        attrs, out_shape, kind = self.conv_attrs(node, x.shape, wq.q.shape)
        attrs.requant = "onnx"
        inputs = self.conv_int8_inputs(x, kind, wq, ins[3], ins[8] or None)
        scale, zp = self.quant_params(ins[6], ins[7], "y")
        y = self.new_act(node.output[0], out_shape, "int8", self.ir_quant(scale, zp))
        self.add_op(node, kind, inputs, y.ir, attrs)

    def qlinear_weights(self, w, s, z) -> _QConst:
        data = self.const(w, "weights")
        scale, zp = self.quant_params(s, z, "weights", per_tensor=False)
        return _QConst(data, scale, zp, 0 if scale.size > 1 else None)

    def check_same_quant(self, act: _Act, s: str, z: str, what: str) -> None:
        scale, zp = self.quant_params(s, z, what)
        if (scale[0], zp[0]) != (np.float32(self.act_quant(act)[0]), self.act_quant(act)[1]):
            raise self.fail(f"{what} quantization {scale[0]:g} / {zp[0]} differs from the quantization of its input "
                            f"'{self.origin[act.ir]}' ({self.act_quant(act)[0]:g} / {self.act_quant(act)[1]})")

    # ------------------------------------------------------------------ fully connected
    def op_Gemm(self, i, node):
        a = self.attrs(node)
        if a.get("transA", 0):
            raise self.fail("transA=1 is not supported")
        alpha, beta = float(a.get("alpha", 1.0)), float(a.get("beta", 1.0))
        trans_b = bool(a.get("transB", 0))
        self.fully_connected(i, node, node.input[0], node.input[1], node.input[2] if len(node.input) > 2 else None,
                             trans_b, alpha, beta)

    def op_MatMul(self, i, node):
        bias = None
        nxt = self.single_consumer(node.output[0])
        if nxt is not None and self.graph.node[nxt].op_type == "Add" and node.input[1] in self.consts:
            add = self.graph.node[nxt]
            other = add.input[1] if add.input[0] == node.output[0] else add.input[0]
            if other in self.consts and other not in self.qconsts and self.consts[other].size == \
                    self.consts[node.input[1]].shape[-1]:
                bias = other
                self.done.add(nxt)
                node = _Renamed(node, add.output[0])
        self.fully_connected(i, node, node.input[0], node.input[1], bias, False, 1.0, 1.0)

    def fully_connected(self, i, node, x_name, w_name, b_name, trans_b: bool, alpha: float, beta: float):
        x_shape = self.shape_of(x_name)
        if len(x_shape) != 2:
            raise self.fail(f"input '{x_name}' has shape {list(x_shape)}; only 2-D [N, K] inputs are supported "
                            "(Flatten first)")
        if w_name not in self.consts:
            raise self.fail(f"weights '{w_name}' must be a constant")
        w = self.consts[w_name]
        if w.ndim != 2:
            raise self.fail(f"weights '{w_name}' have shape {list(w.shape)}; expected 2-D")
        units = w.shape[0] if trans_b else w.shape[1]
        depth = w.shape[1] if trans_b else w.shape[0]
        if depth != x_shape[1]:
            raise self.fail(f"weights {list(w.shape)} do not match input {list(x_shape)}")
        if b_name and b_name not in self.consts:
            raise self.fail(f"bias '{b_name}' must be a constant")
        if b_name and self.consts[b_name].size not in (1, units) or (
                b_name and self.consts[b_name].ndim == 2 and self.consts[b_name].shape[0] != 1):
            raise self.fail(f"bias '{b_name}' {list(self.consts[b_name].shape)} must broadcast as [{units}]")
        out_shape = (x_shape[0], units)

        def int8_inputs(xs):
            wq = self.qconsts.get(w_name)
            if wq is None or alpha != 1.0 or beta != 1.0:
                return None
            if wq.axis is not None and wq.axis != (0 if trans_b else 1):
                raise self.fail(f"weights '{w_name}' are quantized per channel along axis {wq.axis}; only the "
                                "output axis is supported")
            wq2 = _QConst(wq.q if trans_b else np.ascontiguousarray(wq.q.T), wq.scale, wq.zp,
                          None if wq.axis is None else 0)
            ins = self.conv_int8_inputs(xs[0], "FullyConnected", wq2, w_name, None, w_layout=lambda q: q)
            if b_name:
                bq = self.qconsts.get(b_name)
                if bq is not None and bq.q.size == 1 and units > 1:
                    raise self.fail(f"bias '{b_name}' must have one value per output")
                ins.append(self.int32_bias(b_name, xs[0], wq2, units))
            return ins

        def float_inputs(xs):
            wf = (w if trans_b else w.T).astype(np.float32) * np.float32(alpha)
            ins = [xs[0].ir, self.const_tensor(w_name, np.ascontiguousarray(wf), "float32")]
            if b_name:
                b = np.broadcast_to(self.consts[b_name].astype(np.float32).reshape(-1), (units,)) * np.float32(beta)
                ins.append(self.const_tensor(b_name, np.ascontiguousarray(b), "float32"))
            return ins

        self.emit(i, node, "FullyConnected", int8_inputs, float_inputs, out_shape,
                  FullyConnectedAttrs(requant="onnx"), float_attrs=FullyConnectedAttrs())

    def op_QLinearMatMul(self, i, node):
        a_name, a_s, a_z, b_name, b_s, b_z, y_s, y_z = node.input
        x = self.acts.get(a_name)
        if x is None or x.dtype != "int8" or len(x.shape) != 2:
            raise self.fail(f"input '{a_name}' must be a 2-D int8 activation")
        self.check_same_quant(x, a_s, a_z, "a")
        b = self.const(b_name, "weights")
        if b.ndim != 2 or b.shape[0] != x.shape[1]:
            raise self.fail(f"weights {list(b.shape)} do not match input {list(x.shape)}")
        scale, zp = self.quant_params(b_s, b_z, "weights", per_tensor=False)
        if scale.size > 1 and scale.size != b.shape[1]:
            raise self.fail(f"{scale.size} weight scales for {b.shape[1]} outputs")
        wq = _QConst(np.ascontiguousarray(b.T), scale, zp, 0 if scale.size > 1 else None)
        ins = self.conv_int8_inputs(x, "FullyConnected", wq, b_name, None, w_layout=lambda q: q)
        ys, yz = self.quant_params(y_s, y_z, "y")
        y = self.new_act(node.output[0], (x.shape[0], b.shape[1]), "int8", self.ir_quant(ys, yz))
        self.add_op(node, "FullyConnected", ins, y.ir, FullyConnectedAttrs(requant="onnx"))

    # ------------------------------------------------------------------ elementwise
    def op_Add(self, i, node):
        a, b = node.input
        for n in (a, b):
            if n in self.consts:
                raise self.fail(f"adding the constant '{n}' is not supported (Add takes two activations; a bias "
                                "after MatMul is fused when the MatMul output has no other consumer)")
        sa, sb = self.shape_of(a), self.shape_of(b)
        if sa != sb:
            raise self.fail(f"shapes {list(sa)} and {list(sb)} differ; broadcasting is not supported")
        self.emit(i, node, "Add", lambda xs: [x.ir for x in xs], lambda xs: [x.ir for x in xs], sa, AddAttrs())

    def op_Relu(self, i, node):
        self.standalone_activation(i, node, "Relu")

    def op_Clip(self, i, node):
        act = self.activation_of(i)
        if act is None or act.kind not in ("relu", "relu6"):
            low, high = self.clip_bounds(node)
            raise self.fail(f"Clip to [{low}, {high}] is supported only fused into a preceding Conv, Gemm, Add or "
                            "pool (as their only consumer); standalone, only [0, 6] and [0, inf) are")
        self.standalone_activation(i, node, "Relu6" if act.kind == "relu6" else "Relu")

    def standalone_activation(self, i, node, op_type):
        shape = self.shape_of(node.input[0])
        self.emit(i, _Inputs(node, node.input[:1]), op_type, lambda xs: [x.ir for x in xs],
                  lambda xs: [x.ir for x in xs], shape, NoAttrs())

    # ------------------------------------------------------------------ pooling
    def op_GlobalAveragePool(self, i, node):
        """float32: Mean. int8: a depthwise convolution with an H x W kernel of ones at weight scale 1/(H*W)
        and onnxruntime's requantization, because the IR's int8 Mean is TFLite's fixed-point one: the
        sum of (x - zero point) times float32(x_scale / (H*W) / y_scale), rounded half to even."""
        s = self.shape_of(node.input[0])
        if len(s) != 4:
            raise self.fail(f"input {list(s)} must be 4-D NCHW")
        n, c, h, w = s
        self.emit(i, node, "Mean", lambda xs: self.ones_filter(node, xs[0], (h, w)), lambda xs: [x.ir for x in xs],
                  (n, c, 1, 1),
                  Conv2DAttrs(requant="onnx"), float_attrs=MeanAttrs(keep_dims=True), int8_type="DepthwiseConv2D")

    def pool(self, i, node, op_type):
        a = self.attrs(node)
        s = self.shape_of(node.input[0])
        if len(s) != 4:
            raise self.fail(f"input {list(s)} must be 4-D NCHW")
        if len(node.output) > 1 and node.output[1]:
            raise self.fail("the Indices output of MaxPool is not supported")
        k = tuple(a.get("kernel_shape", ()))
        if len(k) != 2:
            raise self.fail(f"kernel_shape {list(k)} must be 2-D")
        stride = tuple(a.get("strides", (1, 1)))
        if tuple(a.get("dilations", (1, 1))) != (1, 1):
            raise self.fail(f"dilations {a['dilations']} are not supported in pooling")
        pad = self.padding(a, s[2:], k, stride, (1, 1))
        if op_type == "AveragePool2D" and a.get("count_include_pad", 0) and any(pad):
            raise self.fail("count_include_pad=1 with padding is not supported (padded taps are not counted)")
        oh = (s[2] + pad[0] + pad[1] - k[0]) // stride[0] + 1
        ow = (s[3] + pad[2] + pad[3] - k[1]) // stride[1] + 1
        if a.get("ceil_mode", 0):
            ch = -(-(s[2] + pad[0] + pad[1] - k[0]) // stride[0]) + 1
            cw = -(-(s[3] + pad[2] + pad[3] - k[1]) // stride[1]) + 1
            if (ch, cw) != (oh, ow):
                raise self.fail("ceil_mode=1 changes the output size here; only floor mode is supported")
        attrs = PoolAttrs(filter=k, stride=stride, pad=pad)
        out_shape = (s[0], s[1], oh, ow)
        if op_type == "MaxPool2D":
            self.emit(i, node, op_type, lambda xs: [x.ir for x in xs], lambda xs: [x.ir for x in xs], out_shape,
                      attrs, self.same_quant_as(node.input[0]), keeps_quant=True)
            return
        # int8 average without padding: a depthwise convolution with a kernel of ones (see GlobalAveragePool);
        # with padding the divisor changes at the border, so it runs in float between Dequantize and Quantize.
        self.emit(i, node, op_type, lambda xs: None if any(pad) else self.ones_filter(node, xs[0], k),
                  lambda xs: [x.ir for x in xs], out_shape, Conv2DAttrs(stride=stride, requant="onnx"),
                  float_attrs=attrs, int8_type="DepthwiseConv2D")

    def ones_filter(self, node, x: _Act, k: tuple[int, int]) -> list[str]:
        """[input, filter]: an int8 depthwise filter of ones over a k window, weight scale 1 / (kh * kw)."""
        ones = np.ones((1, k[0], k[1], x.shape[1]), np.int8)
        scale = np.array([np.float32(1.0) / np.float32(k[0] * k[1])])
        wt = self.const_tensor(f"{node.output[0]}_average_weights", ones, "int8", self.ir_quant(scale, np.zeros(1)))
        return [x.ir, wt]

    def op_AveragePool(self, i, node):
        self.pool(i, node, "AveragePool2D")

    def op_MaxPool(self, i, node):
        self.pool(i, node, "MaxPool2D")

    def same_quant_as(self, name: str):
        """int8 lowering condition of ops that keep their input's quantization (TFLite int8 pooling/reshape)."""
        def ok(yq: Quant) -> bool:
            src = self.int8_input(name)
            return src is not None and self.act_quant(src) == (float(yq.scale[0]), int(yq.zero_point[0]))
        return ok

    # ------------------------------------------------------------------ shape ops
    def layout_free(self, shape) -> bool:
        """NCHW and NHWC order the elements of `shape` alike (H = W = 1, or C = 1)."""
        return len(shape) != 4 or shape[1] == 1 or shape[2] * shape[3] == 1

    def reshape_to(self, i, node, x_name: str, out_shape: tuple[int, ...]):
        s = self.shape_of(x_name)
        if int(np.prod(s)) != int(np.prod(out_shape)):
            raise self.fail(f"cannot reshape {list(s)} to {list(out_shape)}")
        if len(out_shape) not in (2, 4):
            raise self.fail(f"output shape {list(out_shape)} must be 2-D or 4-D")
        for shape in (s, out_shape):
            if not self.layout_free(shape):
                raise self.fail(f"reshaping {list(s)} to {list(out_shape)} is not supported: ONNX orders the "
                                "elements of an NCHW tensor C, H, W but the generated code keeps NHWC (H, W, C), "
                                "so the result would differ; only tensors with H = W = 1 (e.g. after "
                                "GlobalAveragePool) or C = 1 can be flattened or reshaped")
        self.emit(i, _Inputs(node, [x_name]), "Reshape", lambda xs: [x.ir for x in xs], lambda xs: [x.ir for x in xs],
                  out_shape, NoAttrs(), self.same_quant_as(x_name), keeps_quant=True)

    def op_Flatten(self, i, node):
        s = self.shape_of(node.input[0])
        axis = self.attrs(node).get("axis", 1)
        axis = axis + len(s) if axis < 0 else axis
        out = (int(np.prod(s[:axis])), int(np.prod(s[axis:])))
        self.reshape_to(i, node, node.input[0], out)

    def op_Reshape(self, i, node):
        s = self.shape_of(node.input[0])
        target = [int(v) for v in self.const(node.input[1], "Reshape shape").reshape(-1)]
        allow_zero = self.attrs(node).get("allowzero", 0)
        out = [s[k] if v == 0 and not allow_zero else v for k, v in enumerate(target)]
        if out.count(-1) > 1 or any(v < -1 or v == 0 for v in out):
            raise self.fail(f"shape {target} is not supported")
        if -1 in out:
            known = int(np.prod([v for v in out if v != -1]))
            out[out.index(-1)] = int(np.prod(s)) // known
        self.reshape_to(i, node, node.input[0], tuple(out))

    def op_Identity(self, i, node):
        self.alias(node)

    def op_Dropout(self, i, node):
        if len(node.output) > 1 and node.output[1]:
            raise self.fail("the mask output of Dropout is not supported")
        self.alias(node)

    def alias(self, node):
        x, y = node.input[0], node.output[0]
        if y in self.graph_outputs:
            raise self.fail("an Identity/Dropout that produces a graph output is not supported")
        if x in self.consts:
            self.consts[y] = self.consts[x]
            if x in self.qconsts:
                self.qconsts[y] = self.qconsts[x]
        elif x in self.dq:
            self.dq[y] = self.dq[x]
        elif x in self.acts:
            self.acts[y] = self.acts[x]
        else:
            raise self.fail(f"input '{x}' is not produced by a supported node")

    def op_Softmax(self, i, node):
        s = self.shape_of(node.input[0])
        axis = self.attrs(node).get("axis", -1 if self.opset >= 13 else 1)
        axis = axis + len(s) if axis < 0 else axis
        ok = (len(s) == 2 and axis == 1) or (len(s) == 4 and axis == 1 and (self.opset >= 13 or s[2] * s[3] == 1))
        if not ok:
            raise self.fail(f"softmax over axis {axis} of a {len(s)}-D input is not supported; only the last "
                            "axis of a 2-D input or the channel axis of a 4-D one")

        def int8_ok(yq):   # the IR's int8 softmax is TFLite's, with its fixed output quantization
            return abs(yq.scale[0] - 1 / 256) < 1e-12 and yq.zero_point[0] == -128
        self.emit(i, node, "Softmax", lambda xs: [x.ir for x in xs], lambda xs: [x.ir for x in xs], s,
                  SoftmaxAttrs(beta=1.0), int8_ok)

    def op_Pad(self, i, node):
        a = self.attrs(node)
        mode = a.get("mode", b"constant")
        mode = mode.decode() if isinstance(mode, bytes) else mode
        if mode != "constant":
            raise self.fail(f"mode '{mode}' is not supported; only constant padding")
        s = self.shape_of(node.input[0])
        if self.opset < 11:
            pads, value = list(a.get("pads", [])), float(a.get("value", 0.0))
        else:
            pads = [int(v) for v in self.const(node.input[1], "Pad pads").reshape(-1)]
            value = float(self.const(node.input[2], "Pad value").reshape(-1)[0]) \
                if len(node.input) > 2 and node.input[2] else 0.0
            if len(node.input) > 3 and node.input[3]:
                raise self.fail("the axes input is not supported")
        if len(pads) != 2 * len(s) or min(pads) < 0:
            raise self.fail(f"pads {pads} must be 2 x {len(s)} values >= 0")
        if value != 0.0:
            raise self.fail(f"constant value {value} is not supported; only 0")
        pairs = list(zip(pads[:len(s)], pads[len(s):]))
        out = tuple(d + p0 + p1 for d, (p0, p1) in zip(s, pairs))
        if len(s) == 4:
            pairs = [pairs[k] for k in NCHW_TO_NHWC]
        attrs = PadAttrs(paddings=tuple(tuple(p) for p in pairs))
        self.emit(i, node, "Pad", lambda xs: [x.ir for x in xs], lambda xs: [x.ir for x in xs], out, attrs,
                  self.same_quant_as(node.input[0]))

    def op_Concat(self, i, node):
        shapes = [self.shape_of(n) for n in node.input]
        axis = self.attrs(node).get("axis", 1)
        rank = len(shapes[0])
        axis = axis + rank if axis < 0 else axis
        out = list(shapes[0])
        out[axis] = sum(s[axis] for s in shapes)
        ir_axis = AXIS_NCHW_TO_NHWC[axis] if rank == 4 else axis
        self.emit(i, node, "Concatenation", lambda xs: [x.ir for x in xs], lambda xs: [x.ir for x in xs], tuple(out),
                  ConcatAttrs(axis=ir_axis))


class _Named:
    """A stand-in node for ops the importer adds itself (Dequantize of a DequantizeLinear output)."""
    def __init__(self, name):
        self.name = name
        self.op_type = "DequantizeLinear"


class _Inputs:
    """`node` with only some of its inputs (Reshape's shape, Clip's bounds are constants, not activations)."""
    def __init__(self, node, inputs):
        self._node = node
        self.input = list(inputs)

    def __getattr__(self, item):
        return getattr(self._node, item)


class _Renamed:
    """`node` whose output is another node's (MatMul + Add fused into one op)."""
    def __init__(self, node, output):
        self._node = node
        self.output = [output]

    def __getattr__(self, item):
        return getattr(self._node, item)


def load_onnx(path) -> Graph:
    """Read an .onnx file into a Graph (NHWC; see the module docstring). Raises DwsError on any problem."""
    path = Path(path)
    onnx = _onnx()
    try:
        buf = path.read_bytes()
    except OSError as exc:
        raise DwsError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        model = onnx.load_model_from_string(buf)
    except Exception as exc:   # protobuf DecodeError and friends
        raise DwsError(f"{path}: not a valid ONNX model: the protobuf does not parse ({type(exc).__name__}: "
                       f"{exc}); is the file truncated or of another format?") from None
    if not model.HasField("graph") or not model.graph.node:
        raise DwsError(f"{path}: not a valid ONNX model: it has no graph nodes; is the file truncated or of "
                       "another format?")
    try:
        onnx.checker.check_model(model)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DwsError(f"{path}: invalid ONNX model, the onnx checker rejects it: {first}") from None
    return _Importer(path, model).run()
