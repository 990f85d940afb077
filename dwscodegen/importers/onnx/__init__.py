"""Load an .onnx model into the IR with the `onnx` package: read the file, translate each node 1:1, then run
the graph passes that span nodes.

Layout: ONNX activations are NCHW, the IR and the generated C are NHWC. The conversion happens at import,
once (layout.py): 4-D activations become [N, H, W, C], convolution weights OIHW become [O, KH, KW, I],
depthwise weights (Conv with group == input channels) [C*m, 1, KH, KW] become [1, KH, KW, C*m],
ConvTranspose weights [I, O, KH, KW] become [O, KH, KW, I], Gemm/MatMul weights become [O, K]. **The
generated library therefore takes NHWC inputs and produces NHWC outputs**: a caller holding an NCHW image
transposes it first. A 2-D tensor ([N, K], e.g. logits) is the same in both layouts. Graph.origin maps
every IR tensor to its ONNX tensor name, Op.origin every op to its ONNX node.

The passes, in order (docs/graph-format.md, "ONNX models", says what each op becomes):
  fold_constants     Shape / Constant / Gather / Unsqueeze / Concat / Cast / ... chains -> constants
  fuse_bias          MatMul + Add of a constant -> FullyConnected with bias
  fuse_activations   Relu / Clip -> the fused activation of the op before
  fuse_hard_swish    x * HardSigmoid(x) -> HardSwish;  lower_hard_sigmoid: other HardSigmoids in IR ops
  fold_qdq           DequantizeLinear -> op -> QuantizeLinear -> int8 ops (onnxruntime's requantization)

Anything else (an op, dtype, attribute value, dynamic shape or non-constant weight) is an error naming
the node, never an approximation; unsupported operators are listed all at once.
"""
from __future__ import annotations

from pathlib import Path

from ...errors import DwsError
from ...ir import Graph
from ...passes.fold_constants import fold_constants
from ...passes.fold_qdq import fold_qdq
from ...passes.fuse_activations import fuse_activations
from ...passes.fuse_bias import fuse_bias
from ...passes.graph_edit import unique_op_names
from ...passes.hard_sigmoid import fuse_hard_swish, lower_hard_sigmoid
from ...passes.source_ops import CLAMP, leftovers
from . import conv_ops, elementwise_ops, qdq_ops, resize, shape_ops
from .graph_io import graph_inputs, graph_outputs, load_initializers
from .static import is_static, translate_static
from .translate import Translator

HANDLERS = {**conv_ops.HANDLERS, **elementwise_ops.HANDLERS, **shape_ops.HANDLERS, **resize.HANDLERS,
            **qdq_ops.HANDLERS}
SUPPORTED_OPS = tuple(HANDLERS) + ("Constant", "Shape", "Size", "and any node of constants")
PASSES = (fold_constants, fuse_bias, fuse_activations, fuse_hard_swish, lower_hard_sigmoid,
          lambda g: fold_qdq(g, requant="onnx"), unique_op_names)


def _onnx():
    try:
        import onnx  # imported lazily: only this importer needs it
    except ImportError:   # pragma: no cover - onnx is a test dependency of the package
        raise DwsError("reading .onnx models needs the 'onnx' package: pip install onnx") from None
    return onnx


def load_onnx(path) -> Graph:
    """Read an .onnx file into a Graph (NHWC; see the module docstring). Raises DwsError on any problem."""
    path = Path(path)
    onnx = _onnx()
    model = _read(path, onnx)
    t = Translator(path, model, onnx)
    load_initializers(t)
    _check_operators(t)
    graph_inputs(t)
    for i, node in enumerate(model.graph.node):
        t.where, t.node_index = t.node_where(i, node), i
        if is_static(node, t.values):
            translate_static(t, node)
        else:
            HANDLERS[node.op_type](t, node)
    graph_outputs(t)
    graph = t.graph
    for run in PASSES:
        graph = run(graph)
    _check_leftovers(path, graph)
    return graph


def _read(path: Path, onnx):
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
    # External data (`model.onnx.data`) lives beside the model: look it up there, not in the working directory.
    tensors = list(model.graph.initializer) + [a.t for n in model.graph.node for a in n.attribute if a.HasField("t")]
    external = [tensor for tensor in tensors if onnx.external_data_helper.uses_external_data(tensor)]
    if external:
        try:
            onnx.load_external_data_for_model(model, str(path.parent))
        except Exception as exc:
            files = sorted({e.value for tensor in external for e in tensor.external_data if e.key == "location"})
            raise DwsError(f"{path}: the model keeps its weights in {', '.join(files)}, which cannot be read beside "
                           f"it in {path.parent} ({type(exc).__name__}: {exc}); copy the data file(s) next to the "
                           "model") from None
    try:
        onnx.checker.check_model(model)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DwsError(f"{path}: invalid ONNX model, the onnx checker rejects it: {first}") from None
    return model


def _check_operators(t: Translator) -> None:
    """Every node the translator has no handler for, listed at once (per operator: how often, which nodes).
    Nodes of constants need none: they are evaluated (static.py)."""
    known = set(t.values)
    missing: dict[str, list[str]] = {}
    for i, node in enumerate(t.model.graph.node):
        if node.domain not in ("", "ai.onnx"):
            missing.setdefault(f"{node.domain}.{node.op_type}", []).append(t.node_where(i, node))
        elif is_static(node, known) or (node.op_type in ("DequantizeLinear", "Identity", "Dropout")
                                         and node.input and node.input[0] in known):
            known.update(node.output)
        elif node.op_type not in HANDLERS:
            missing.setdefault(node.op_type, []).append(t.node_where(i, node))
    if not missing:
        return
    supported = f"supported: {', '.join(SUPPORTED_OPS)}"
    if len(missing) == 1 and len(next(iter(missing.values()))) == 1:
        (op, (where,)), = missing.items()
        what = f"operator domain '{op.split('.')[0]}'" if "." in op else f"operator {op}"
        raise DwsError(f"{t.path}: {where}: {what} is not supported; {supported}")
    lines = [f"  {op}: {len(wheres)} node{'s' if len(wheres) > 1 else ''} ({'; '.join(wheres[:3])}"
             f"{f'; and {len(wheres) - 3} more' if len(wheres) > 3 else ''})" for op, wheres in missing.items()]
    raise DwsError(f"{t.path}: {len(missing)} operators are not supported (standard ONNX domain only):\n"
                   + "\n".join(lines) + f"\n{supported}")


def _check_leftovers(path: Path, graph: Graph) -> None:
    """Ops no pass could turn into IR ops, listed at once."""
    problems = []
    for op in leftovers(graph):
        if op.type == CLAMP:
            what = (f"Clip to [{op.attrs.low}, {op.attrs.high}] is supported only fused into a preceding Conv, Gemm, "
                    "Add or pool (as their only consumer); standalone, only [0, 6] and [0, inf) are")
        else:
            what = f"becomes the IR op {op.type}, which this version of dwscodegen does not implement yet"
        problems.append(f"{op.origin}: {what}")
    if len(problems) == 1:
        raise DwsError(f"{path}: {problems[0]}")
    if problems:
        raise DwsError(f"{path}: {len(problems)} nodes cannot be generated:\n" + "\n".join(f"  {p}" for p in problems))
