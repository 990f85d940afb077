"""Graph IR: tensors (NHWC, TFLite quantization conventions) and ops in execution order.

Importers build a Graph; `validate` checks it once, so every later stage (reference, planner,
backends) can rely on consistent shapes, dtypes and quantization without checking again.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

DTYPES = {"float32": np.float32, "int8": np.int8, "int32": np.int32}
# Constant data an importer may carry until a pass converts it (TFLite's float16 weights, which
# passes/fold_float16.py turns into float32); validation refuses it anywhere else.
IMPORT_DTYPES = {**DTYPES, "float16": np.float16}
ITEMSIZE = {name: np.dtype(t).itemsize for name, t in IMPORT_DTYPES.items()}
OP_TYPES = ("Conv2D", "DepthwiseConv2D", "Add", "AveragePool2D", "MaxPool2D", "FullyConnected", "Softmax",
            "Reshape", "Mean", "Pad", "Concatenation", "Quantize", "Dequantize", "Relu", "Relu6",
            "ResizeBilinear", "ResizeNearest", "TransposeConv2D", "Slice",
            "Mul", "Maximum", "Minimum", "HardSwish", "Logistic", "Tanh", "LeakyRelu", "PRelu", "Table")
ACTIVATIONS = ("none", "relu", "relu6", "clamp")


@dataclass
class Quant:
    """Affine quantization real = scale * (q - zero_point), per tensor or per channel along `axis`."""
    scale: np.ndarray        # float64 [1] or [channels]
    zero_point: np.ndarray   # int32, same length as scale
    axis: int | None = None  # None: per tensor

    @property
    def per_channel(self) -> bool:
        return self.axis is not None


@dataclass
class Tensor:
    name: str
    shape: tuple[int, ...]
    dtype: str
    quant: Quant | None = None
    data: np.ndarray | None = None   # constant tensors (weights, bias) only

    @property
    def is_const(self) -> bool:
        return self.data is not None

    @property
    def size(self) -> int:
        return int(math.prod(self.shape))     # Python ints: exact, and cheap (the planner asks millions of times)

    @property
    def nbytes(self) -> int:
        return self.size * ITEMSIZE[self.dtype]


@dataclass
class Activation:
    """Fused activation. `clamp` carries real-valued bounds; relu/relu6 are special cases of it."""
    kind: str = "none"
    low: float | None = None
    high: float | None = None

    def label(self) -> str:
        """How generated code and reports name it: none, relu, relu6, clamp [low, high]."""
        return f"clamp [{self.low:g}, {self.high:g}]" if self.kind == "clamp" else self.kind

    def bounds(self) -> tuple[float | None, float | None]:
        return {"none": (None, None), "relu": (0.0, None), "relu6": (0.0, 6.0),
                "clamp": (self.low, self.high)}[self.kind]


@dataclass
class Conv2DAttrs:
    """Shared by Conv2D and DepthwiseConv2D. `pad` is explicit (top, bottom, left, right)."""
    stride: tuple[int, int] = (1, 1)
    dilation: tuple[int, int] = (1, 1)
    pad: tuple[int, int, int, int] = (0, 0, 0, 0)
    depth_multiplier: int = 1
    activation: Activation = field(default_factory=Activation)
    # int8 requantization: "tflite" (MultiplyByQuantizedMultiplier) or "onnx" (onnxruntime/MLAS:
    # float32 scale, round half to even); see reference.ops.requantize_onnx
    requant: str = "tflite"


@dataclass
class AddAttrs:
    """Add: [a, b], broadcast NumPy-style (broadcast.py); either may be a constant."""
    activation: Activation = field(default_factory=Activation)


@dataclass
class PoolAttrs:
    """AveragePool2D / MaxPool2D. `pad` is explicit (top, bottom, left, right)."""
    filter: tuple[int, int] = (1, 1)
    stride: tuple[int, int] = (1, 1)
    pad: tuple[int, int, int, int] = (0, 0, 0, 0)
    activation: Activation = field(default_factory=Activation)


@dataclass
class FullyConnectedAttrs:
    """Input flattened to [N, K], weights [O, K]."""
    activation: Activation = field(default_factory=Activation)
    requant: str = "tflite"      # int8: "tflite" (double scale, round half away) or "onnx" (as Conv2DAttrs)


@dataclass
class SoftmaxAttrs:
    beta: float = 1.0


@dataclass
class MeanAttrs:
    """Mean over `axes` (non-negative, ascending, contiguous: H and W of an NHWC tensor is global average
    pooling); keep_dims keeps them as 1s, else they are dropped."""
    keep_dims: bool = True
    axes: tuple[int, ...] = (1, 2)


@dataclass
class PadAttrs:
    paddings: tuple[tuple[int, int], ...] = ()   # (before, after) per dimension


@dataclass
class ConcatAttrs:
    axis: int = 3                                 # non-negative


@dataclass
class QuantizeAttrs:
    """Quantize float32 -> int8: x / scale in float32, rounded, plus the zero point, saturated. `rounding`:
    "half_away" (TFLite's AffineQuantize) or "half_even" (ONNX QuantizeLinear)."""
    rounding: str = "half_away"


@dataclass
class MulAttrs:
    """Mul: [a, b], broadcast NumPy-style (each dimension equal or 1); either may be a constant."""
    activation: Activation = field(default_factory=Activation)


@dataclass
class LeakyReluAttrs:
    alpha: float = 0.2


@dataclass
class TableAttrs:
    """Table: an int8 tensor through a chain of int8 elementwise ops of it alone (passes/fuse_tables.py), as
    one lookup: table[q + 128] is what the chain computes from q; `what` names the chain, e.g.
    "mul(x, logistic(x))"."""
    table: np.ndarray        # int8 [256]
    what: str = ""


@dataclass
class ResizeAttrs:
    """ResizeBilinear / ResizeNearest over H and W of an NHWC tensor to the output tensor's H and W, with
    TFLite's coordinate conventions (an importer maps other conventions onto these or refuses)."""
    align_corners: bool = False
    half_pixel_centers: bool = False


@dataclass
class TransposeConv2DAttrs:
    """TransposeConv2D: [input, filter [OC][KH][KW][IC], bias?]. `pad` (top, bottom, left, right) is what is
    cropped from the full (H - 1) * stride + K output, as TFLite's TRANSPOSE_CONV computes it."""
    stride: tuple[int, int] = (1, 1)
    pad: tuple[int, int, int, int] = (0, 0, 0, 0)
    activation: Activation = field(default_factory=Activation)


@dataclass
class SliceAttrs:
    """Slice: output[i...] = input[begin + i * stride ...] per dimension (the output tensor gives the sizes).
    STRIDED_SLICE of an activation, SPLIT (one Slice per output) and ONNX Slice import as this."""
    begin: tuple[int, ...] = ()
    strides: tuple[int, ...] = ()


@dataclass
class NoAttrs:
    """Reshape (shape comes from the output tensor), Quantize, Dequantize, Relu, Relu6, Maximum, Minimum,
    HardSwish, Logistic, Tanh, PRelu ([x, alpha] with alpha broadcast over x)."""


@dataclass
class Op:
    index: int
    name: str
    type: str                 # one of OP_TYPES
    inputs: list[str]         # conv / fully connected: [input, filter, bias?]; add: [a, b]; others: [input]
    outputs: list[str]
    attrs: (Conv2DAttrs | AddAttrs | PoolAttrs | FullyConnectedAttrs | SoftmaxAttrs | MeanAttrs | PadAttrs
            | ConcatAttrs | QuantizeAttrs | MulAttrs | LeakyReluAttrs | ResizeAttrs | TransposeConv2DAttrs | SliceAttrs | NoAttrs)
    origin: str = ""          # where in the source model file the op came from (e.g. an ONNX node), for errors

    def where(self) -> str:
        return f"op {self.index} '{self.name}' ({self.type})"


@dataclass
class Graph:
    name: str
    tensors: dict[str, Tensor]
    ops: list[Op]
    inputs: list[str]
    outputs: list[str]
    source: str = ""          # file the graph came from, for error messages
    # tensor name -> its name in the source model file (TFLite/ONNX names are long or not unique),
    # so oracles that run the original file can be read back per tensor
    origin: dict[str, str] = field(default_factory=dict)

    def tensor(self, name: str) -> Tensor:
        return self.tensors[name]

    def activation_tensors(self) -> list[Tensor]:
        """Non-constant tensors in first-use order: graph inputs, then op outputs."""
        names = list(self.inputs) + [o for op in self.ops for o in op.outputs]
        return [self.tensors[n] for n in dict.fromkeys(names)]

    def op_dtype(self, op: Op) -> str:
        """The dtype an op computes in: its first input's (Quantize: float32 in, int8 out)."""
        return self.tensors[op.inputs[0]].dtype

    def activation_dtypes(self) -> set[str]:
        return {t.dtype for t in self.activation_tensors()}


def same_padding(in_size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    """TFLite SAME padding: output = ceil(in / stride), extra padding goes after."""
    out = -(-in_size // stride)
    effective = (kernel - 1) * dilation + 1
    total = max((out - 1) * stride + effective - in_size, 0)
    return total // 2, total - total // 2


def conv_output_hw(in_hw: tuple[int, int], kernel_hw: tuple[int, int], a: Conv2DAttrs) -> tuple[int, int]:
    top, bottom, left, right = a.pad
    out = []
    for size, k, s, d, p0, p1 in ((in_hw[0], kernel_hw[0], a.stride[0], a.dilation[0], top, bottom),
                                  (in_hw[1], kernel_hw[1], a.stride[1], a.dilation[1], left, right)):
        out.append((size + p0 + p1 - ((k - 1) * d + 1)) // s + 1)
    return out[0], out[1]


def transpose_conv_crop(padding: str, in_hw: tuple[int, int], kernel_hw: tuple[int, int], out_hw: tuple[int, int],
                        stride: tuple[int, int]) -> tuple[int, int, int, int]:
    """TransposeConv2DAttrs.pad of TFLite's TRANSPOSE_CONV "SAME" / "VALID": its padding is that of the forward
    convolution from the output size (transpose_conv.cc ComputePaddingHeightWidth), so SAME crops
    same_padding(out)[0] at the top/left and VALID nothing; the bottom/right crop is what remains of the full
    (H - 1) * stride + K output (negative: rows only the bias reaches)."""
    pad = []
    for size, k, out, s in zip(in_hw, kernel_hw, out_hw, stride):
        top = same_padding(out, k, s, 1)[0] if padding == "SAME" else 0
        pad += [top, (size - 1) * s + k - top - out]
    return tuple(pad)
