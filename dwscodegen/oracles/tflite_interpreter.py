"""TFLite's interpreter with its reference kernels (BUILTIN_REF), run on the original .tflite file.

The default op resolver applies the XNNPACK delegate, which is not the reference; this never uses it.

The interpreter runs in a child process (isolation.py): ai-edge-litert's kernels abort() the process
when a TFLITE_CHECK fails, and that must become an error message, not the end of verify.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DwsError
from ..ir import Graph
from .isolation import OracleCrash, OracleValues, run_worker

LABEL = "the TFLite interpreter (BUILTIN_REF reference kernels)"


def available() -> bool:
    try:
        import ai_edge_litert.interpreter  # noqa: F401
    except ImportError:
        return False
    return True


def run_tflite(model_path: Path, graph: Graph, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every tensor of `graph` that the interpreter kept, keyed by IR name (intermediates included);
    an OracleValues."""
    return run_tflite_batch(model_path, graph, [inputs])[0]


def run_tflite_batch(model_path: Path, graph: Graph, input_sets: list[dict[str, np.ndarray]]) -> list[OracleValues]:
    """run_tflite for several input sets, in one child process; the notes are those of the batch."""
    sets = []
    for inputs in input_sets:
        feeds = {}
        for name in graph.inputs:
            if name not in inputs:
                raise DwsError(f"no value for graph input '{name}'")
            feeds[graph.origin[name]] = np.asarray(inputs[name]).reshape(graph.tensor(name).shape)
        sets.append(feeds)
    wanted = {t.name: graph.origin[t.name] for t in graph.activation_tensors() if t.name in graph.origin}
    values = []
    for out in run_tflite_file(model_path, sets, sorted(set(wanted.values()))):
        by_ir = {name: out[src].reshape(graph.tensor(name).shape) for name, src in wanted.items() if src in out}
        values.append(OracleValues(by_ir, out.notes))
    return values


def run_tflite_file(model_path: Path, input_sets: list[dict[str, np.ndarray]],
                    names: list[str] | None = None) -> list[OracleValues]:
    """The oracle without an IR graph: per input set (TFLite input tensor name -> array of its dtype
    and shape), the tensors named in `names` (TFLite names; None: every tensor the interpreter kept).
    One child process for all sets; the notes are those of the batch."""
    if not available():
        raise DwsError("the TFLite oracle needs ai-edge-litert: pip install ai-edge-litert")
    path = Path(model_path).resolve()
    args = dict(model=str(path), names=names)
    what = f"{LABEL} on {path.name}"
    try:
        result, outputs = run_worker("tflite", args, input_sets, what)
    except OracleCrash as crash:
        raise _unexplained(crash) from None
    return [OracleValues(out, result["notes"]) for out in outputs]


def _parse(path: Path):
    """The model's flatbuffer as ai-edge-litert's schema objects (pure Python: safe in any process)."""
    from ai_edge_litert import schema_py_generated as schema
    try:
        buf = path.read_bytes()
    except OSError as exc:
        raise DwsError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        model = schema.ModelT.InitFromPackedBuf(buf, 0)
        if model.subgraphs and model.subgraphs[0].operators is not None:
            return model
    except Exception:
        pass
    raise DwsError(f"{path}: not a readable TFLite model (is the file truncated or of another format?)")


def _unexplained(crash: OracleCrash) -> DwsError:
    where = ("in its kernels' Prepare" if crash.stage.startswith("allocate") else
             "in a kernel's Eval (or the Prepare of one whose shapes are computed at run time)"
             if crash.stage.startswith("invoke") else f"in {crash.stage}")
    what = "a check inside ai-edge-litert failing" if crash.signal_name == "SIGABRT" else "a crash of ai-edge-litert"
    return DwsError(f"{crash}. That is {what} {where}, on something in this model that its reference "
                    "kernels cannot take: not an error of dwscodegen, and nothing was compared. Verify against "
                    "dwscodegen's NumPy reference instead (--oracle numpy), and report the model to ai-edge-litert.")


# ----------------------------------------------------------------------------------------------
# In the child process (worker.py)
# ----------------------------------------------------------------------------------------------

def child_run(args: dict, sets: list[dict], progress, work: Path) -> tuple[dict, list[dict]]:
    path = Path(args["model"])
    progress("reading the model")
    _parse(path)
    buf = path.read_bytes()
    return dict(notes=[]), [_run(buf, feeds, args["names"], progress, f"input set {k}") for k, feeds in enumerate(sets)]


def _interpreter(content: bytes, resolver: str):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
    return Interpreter(model_content=content, experimental_preserve_all_tensors=True,
                       experimental_op_resolver_type=getattr(OpResolverType, resolver))


def _run(content: bytes, feeds: dict[str, np.ndarray], names: list[str], progress, what: str) -> dict:
    """One invoke on BUILTIN_REF: the tensors in `names` (TFLite names) that it kept."""
    interpreter = _interpreter(content, "BUILTIN_REF")
    progress(f"allocate_tensors ({what})")
    interpreter.allocate_tensors()
    index = {d["name"]: d["index"] for d in interpreter.get_tensor_details()}
    for name, value in feeds.items():
        interpreter.set_tensor(index[name], value)
    progress(f"invoke ({what})")
    interpreter.invoke()
    values = {}
    for name in (index if names is None else names):
        if name in index:
            try:
                values[name] = np.array(interpreter.get_tensor(index[name]))
            except ValueError:      # a tensor without data (not computed)
                continue
    return values
