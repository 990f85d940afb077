"""onnxruntime as an oracle: run the original .onnx file on IR-layout inputs, read back IR-layout outputs.

The IR (and the generated C) is NHWC, ONNX is NCHW: 4-D inputs are transposed to NCHW before the run
and 4-D results back to NHWC after it; 2-D tensors are the same in both. Names are translated with
Graph.origin (IR tensor -> ONNX tensor).

onnxruntime runs on the CPU, single-threaded, with graph optimizations off (ORT_DISABLE_ALL) by
default. That runs a QDQ model as written, node by node: DequantizeLinear, the float op,
QuantizeLinear (round half to even) — the ONNX meaning of the file, identical on every machine.
With optimizations on, onnxruntime fuses *some* DequantizeLinear -> op -> QuantizeLinear groups into
integer kernels (QLinearConv, QGemm, QLinearSoftmax, ...), chosen by heuristics that depend on the CPU
(e.g. it rewrites int8 activations to uint8 on x86): the result is then a machine-dependent mix of
the two arithmetics. `level` selects another optimization level for experiments; docs/graph-format.md
("ONNX models") has the measured differences.

The session runs in a child process (isolation.py), so that a crash inside onnxruntime is a
DwsError naming the signal, not the end of verify.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DwsError
from ..ir import Graph
from ..quant import UINT8_SHIFT
from .isolation import OracleValues, input_feeds, run_worker

LEVELS = ("disable_all", "basic", "extended", "all")


def available() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def _session(model, level: str):
    try:
        import onnxruntime as ort
    except ImportError:   # pragma: no cover
        raise DwsError("the onnxruntime oracle needs the 'onnxruntime' package: pip install onnxruntime") from None
    opts = ort.SessionOptions()
    opts.graph_optimization_level = {
        "disable_all": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL}[level]
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.log_severity_level = 3
    try:
        return ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise DwsError(f"onnxruntime cannot load the model: {exc}") from None


def _to_onnx_layout(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2)) if x.ndim == 4 else x


def _to_ir_layout(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1)) if x.ndim == 4 else x


def run_onnxruntime(model_path, graph: Graph, inputs: dict[str, np.ndarray], tensors: list[str] | None = None,
                    level: str = "disable_all") -> dict[str, np.ndarray]:
    """Run `model_path` with onnxruntime on `inputs` (IR names, NHWC) and return the graph outputs, plus
    any other IR activation tensors named in `tensors`, keyed by IR name and in IR layout.

    Extra tensors are read by declaring them as additional model outputs, which changes nothing at
    ORT_DISABLE_ALL; at higher levels it can stop onnxruntime from fusing the nodes around them.
    """
    return run_onnxruntime_batch(model_path, graph, [inputs], tensors, level)[0]


def run_onnxruntime_batch(model_path, graph: Graph, input_sets: list[dict[str, np.ndarray]],
                          tensors: list[str] | None = None, level: str = "disable_all") -> list[OracleValues]:
    """run_onnxruntime for several input sets, in one child process."""
    import onnx

    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}")
    if not available():
        raise DwsError("the onnxruntime oracle needs the 'onnxruntime' package: pip install onnxruntime")
    origin = lambda name: graph.origin.get(name, name)     # noqa: E731
    wanted = list(dict.fromkeys(list(graph.outputs) + list(tensors or [])))
    model = onnx.load(str(model_path))
    declared = {o.name for o in model.graph.output}
    uint8 = _uint8_values(onnx, model)
    for name in wanted:
        onnx_name = origin(name)
        if onnx_name in declared:
            continue
        t = graph.tensor(name)
        elem = (onnx.TensorProto.UINT8 if onnx_name in uint8 else
                {"float32": onnx.TensorProto.FLOAT, "int8": onnx.TensorProto.INT8}[t.dtype])
        shape = [t.shape[i] for i in (0, 3, 1, 2)] if len(t.shape) == 4 else list(t.shape)
        model.graph.output.append(onnx.helper.make_tensor_value_info(onnx_name, elem, shape))
        declared.add(onnx_name)
    sets = input_feeds(graph, input_sets, origin, lambda _, v: _to_onnx_layout(np.asarray(v, dtype=np.float32)))
    names = [origin(n) for n in wanted]
    _, outputs = run_worker("onnxruntime", dict(model="model.onnx", names=names, level=level), sets,
                            f"onnxruntime on {Path(model_path).name}", files={"model.onnx": model.SerializeToString()})
    return [OracleValues({name: _to_ir_layout(_as_int8_twin(np.asarray(out[src])))
                          for name, src in zip(wanted, names)})
            for out in outputs]


def _uint8_values(onnx, model) -> set[str]:
    """Names of the model's uint8 tensors (QuantizeLinear outputs of a QUInt8 model), by shape inference; only
    where the file can hold one (a uint8 zero point, or a QuantizeLinear without one, which means uint8)."""
    uint8 = onnx.TensorProto.UINT8
    constants = list(model.graph.initializer) + [a.t for n in model.graph.node if n.op_type == "Constant"
                                                   for a in n.attribute if a.name == "value"]
    if not (any(t.data_type == uint8 for t in constants)
            or any(n.op_type == "QuantizeLinear" and (len(n.input) < 3 or not n.input[2]) for n in model.graph.node)):
        return set()
    inferred = onnx.shape_inference.infer_shapes(model)
    infos = list(inferred.graph.value_info) + list(inferred.graph.output)
    return {v.name for v in infos if v.type.tensor_type.elem_type == uint8}


def _as_int8_twin(values: np.ndarray) -> np.ndarray:
    """A uint8 activation as the int8 tensor the importer made of it (quant.UINT8_SHIFT)."""
    if values.dtype != np.uint8:
        return values
    return (values.astype(np.int16) - UINT8_SHIFT).astype(np.int8)


def child_run(args: dict, sets: list[dict], progress, work: Path) -> tuple[dict, list[dict]]:
    """In the child process (worker.py): the session and its runs."""
    progress("creating the session")
    session = _session(str(work / args["model"]), args["level"])
    results = []
    for k, feeds in enumerate(sets):
        progress(f"run (input set {k})")
        values = session.run(args["names"], feeds)
        results.append(dict(zip(args["names"], (np.asarray(v) for v in values))))
    return dict(notes=[]), results
