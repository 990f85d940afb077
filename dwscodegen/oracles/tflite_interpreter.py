"""TFLite's interpreter with its reference kernels (BUILTIN_REF), run on the original .tflite file.

The default op resolver applies the XNNPACK delegate, which is not the reference; this never uses it.

The interpreter runs in a child process (isolation.py): ai-edge-litert's kernels abort() the process
when a TFLITE_CHECK fails, and that must become an error message, not the end of verify.

Where the reference kernels abort: int8 SOFTMAX
-----------------------------------------------
ai-edge-litert 2.3's reference int8 SOFTMAX kernel aborts (SIGABRT, no message) outside two limits
of its fixed-point recipe (reference/softmax.py has the arithmetic):
1. in Prepare (allocate_tensors, or the first invoke when shapes are computed at run time) when
   beta * input_scale * 2^26 <= 1 -- PreprocessSoftmaxScaling's QuantizeMultiplierGreaterThanOne.
   The int8 Keras classifiers that TFLiteConverter writes from barely trained weights have a logits
   scale near 7.8e-9 (< 2^-26 ~ 1.49e-8): every one of them aborts, whatever the input.
2. in Invoke, for a row whose sum of exps reaches 2^28 (512.0 in Q12.19): its
   TFLITE_CHECK(exponent <= 31). Any 1000-class softmax with ~512 logits within rounding of the
   maximum -- e.g. EfficientNetB0's flat logits (scale 4.8e-8) -- depends on the input.
Nothing in these models is wrong; the reference kernel simply has no answer there. TFLite itself
has one: its builtin (optimized) SOFTMAX kernel, a float exp table (OpResolverType
BUILTIN_WITHOUT_DEFAULT_DELEGATES, without XNNPACK), takes any scale and depth. So when the
reference kernels cannot run an int8 SOFTMAX op, the oracle splits the model instead of giving up:

* the model without its int8 SOFTMAX ops runs on BUILTIN_REF, as always (the softmax inputs are
  then outputs of the model, and a softmax output that later ops read becomes an input, fed in
  rounds until it no longer changes);
* each int8 SOFTMAX op runs alone on the values the reference kernels computed for its input: on
  BUILTIN_REF for the rows the reference kernel can compute (found with the exact integer recipe,
  reference.softmax.tflite_reference_rejects), on TFLite's builtin kernel for the rest.

So every value still comes from TFLite, and from its reference kernels wherever those exist. Every
op or row that was not is named in the result's `notes`, which verify prints (and writes to its
JSON report): the oracle never changes silently. The builtin kernel's float arithmetic agrees with
the reference recipe continued past its limits, which is what the generated code computes (all
-128 for a sum >= 512, i.e. probabilities below 1/512) except at exact rounding ties (a row of
exactly 512 near-equal values). A crash anywhere else, or one that the split does not avoid, is a
DwsError that says so (OracleCrash: signal, stage) and suggests `--oracle numpy`.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DwsError
from ..ir import Graph
from .isolation import OracleCrash, OracleValues, input_feeds, run_worker

LABEL = "the TFLite interpreter (BUILTIN_REF reference kernels)"
SOFTMAX = 25          # BuiltinOperator.SOFTMAX
INT8 = 9              # TensorType.INT8


def available() -> bool:
    try:
        import ai_edge_litert.interpreter  # noqa: F401
    except ImportError:
        return False
    return True


def custom_ops(model_path: Path) -> list[str]:
    """The CUSTOM operator codes of a .tflite file: BUILTIN_REF has no kernel for any of them (MediaPipe's
    Convolution2DTransposeBias, for one, is implemented only by its XNNPACK and GPU delegates)."""
    import tflite
    try:
        model = tflite.Model.GetRootAsModel(Path(model_path).read_bytes(), 0)
        codes = [model.OperatorCodes(i) for i in range(model.OperatorCodesLength())]
    except Exception:   # unreadable: the importer has already said why
        return []
    custom = tflite.BuiltinOperator.CUSTOM
    return [(c.CustomCode() or b"").decode(errors="replace") for c in codes
            if max(c.BuiltinCode(), c.DeprecatedBuiltinCode()) == custom]


def run_tflite(model_path: Path, graph: Graph, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every tensor of `graph` that the interpreter kept, keyed by IR name (intermediates included);
    an OracleValues, whose `notes` name what the reference kernels did not compute."""
    return run_tflite_batch(model_path, graph, [inputs])[0]


def run_tflite_batch(model_path: Path, graph: Graph, input_sets: list[dict[str, np.ndarray]]) -> list[OracleValues]:
    """run_tflite for several input sets, in one child process; the notes are those of the batch."""
    sets = input_feeds(graph, input_sets, graph.origin.__getitem__,
                       lambda name, v: np.asarray(v).reshape(graph.tensor(name).shape))
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
    custom = custom_ops(model_path)
    if custom:
        raise DwsError(f"{model_path}: the TFLite interpreter has no kernel for the custom operator(s) "
                       f"{', '.join(custom)}; verify against the NumPy reference instead (--oracle numpy)")
    path = Path(model_path).resolve()
    args = dict(model=str(path), names=names, mode="whole")
    what = f"{LABEL} on {path.name}"
    try:
        result, outputs = run_worker("tflite", args, input_sets, what)
    except OracleCrash as crash:
        if not _int8_softmaxes(_parse(path)):
            raise _unexplained(crash) from None
        try:
            result, outputs = run_worker("tflite", dict(args, mode="split"), input_sets, what)
        except OracleCrash as again:
            raise _unexplained(again, "; it also crashed with its int8 SOFTMAX ops run separately") from None
        result["notes"].insert(0, f"{crash}; so it was run again with its int8 SOFTMAX ops separately:")
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


def _unexplained(crash: OracleCrash, more: str = "") -> DwsError:
    where = ("in its kernels' Prepare" if crash.stage.startswith("allocate") else
             "in a kernel's Eval (or the Prepare of one whose shapes are computed at run time)"
             if crash.stage.startswith("invoke") else f"in {crash.stage}")
    what = "a check inside ai-edge-litert failing" if crash.signal_name == "SIGABRT" else "a crash of ai-edge-litert"
    return DwsError(f"{crash}{more}. That is {what} {where}, on something in this model that its reference "
                    "kernels cannot take: not an error of dwscodegen, and nothing was compared. Verify against "
                    "dwscodegen's NumPy reference instead (--oracle numpy), and report the model to ai-edge-litert.")


# ----------------------------------------------------------------------------------------------
# In the child process (worker.py)
# ----------------------------------------------------------------------------------------------

def child_run(args: dict, sets: list[dict], progress, work: Path) -> tuple[dict, list[dict]]:
    path = Path(args["model"])
    progress("reading the model")
    model = _parse(path)
    buf = path.read_bytes()
    softmaxes = _int8_softmaxes(model)
    static = [s for s in softmaxes if s.prepare_reason]
    if args["mode"] == "whole" and not static:
        return dict(notes=[]), [_run(buf, feeds, args["names"], progress, f"input set {k}")
                                for k, feeds in enumerate(sets)]
    return _run_split(model, softmaxes, sets, args["names"], progress)


class _Softmax:
    """An int8 SOFTMAX op of subgraph 0 and what its reference kernel's Prepare says of it."""

    def __init__(self, model, index: int, op):
        sg = model.subgraphs[0]
        self.index, self.op = index, op
        self.input, self.output = op.inputs[0], op.outputs[0]
        x = sg.tensors[self.input]
        self.name = _name(sg.tensors[self.output])
        self.input_name = _name(x)
        self.scale = float(x.quantization.scale[0])
        self.beta = float(op.builtinOptions.beta) if op.builtinOptions is not None else 1.0
        self.depth = int(x.shape[-1])
        from ..reference.softmax import tflite_reference_rejects
        self.prepare_reason = tflite_reference_rejects(None, self.scale, self.beta)[0]
        self.rows = self.builtin_rows = 0          # over all input sets (_run_split)

    def where(self) -> str:
        return f"SOFTMAX op {self.index} ('{self.name}', depth {self.depth})"


def _name(tensor) -> str:
    return tensor.name.decode() if isinstance(tensor.name, bytes) else str(tensor.name)


def _int8_softmaxes(model) -> list[_Softmax]:
    sg, codes = model.subgraphs[0], model.operatorCodes
    found = []
    for i, op in enumerate(sg.operators):
        code = codes[op.opcodeIndex]
        if max(code.builtinCode, code.deprecatedBuiltinCode) != SOFTMAX:
            continue
        x, y = sg.tensors[op.inputs[0]], sg.tensors[op.outputs[0]]
        if x.type == INT8 and y.type == INT8 and x.quantization is not None and x.quantization.scale is not None:
            found.append(_Softmax(model, i, op))
    return found


def _interpreter(content: bytes, resolver: str):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
    # one thread: the reference kernels are single-threaded anyway, and the builtin kernels some ops fall back
    # to then neither spin up a thread pool nor depend on the host's core count
    return Interpreter(model_content=content, experimental_preserve_all_tensors=True, num_threads=1,
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


def _pack(model) -> bytes:
    import flatbuffers
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _without(model, cut: list[_Softmax]) -> tuple[bytes, list[int]]:
    """The model without the `cut` ops: their inputs (those not produced by another cut op) become
    outputs; their outputs that the remaining ops read become inputs (returned)."""
    import copy
    m = copy.copy(model)
    sg = copy.copy(model.subgraphs[0])
    m.subgraphs = [sg] + list(model.subgraphs[1:])
    gone = {s.index for s in cut}
    sg.operators = [op for i, op in enumerate(model.subgraphs[0].operators) if i not in gone]
    read = {t for op in sg.operators for t in op.inputs}
    produced = {s.output for s in cut}
    fed = [s.output for s in cut if s.output in read]
    sg.inputs = list(sg.inputs) + [t for t in fed if t not in sg.inputs]
    outputs = [t for t in sg.outputs if t not in produced or t in sg.inputs]
    sg.outputs = outputs + [s.input for s in cut if s.input not in outputs and s.input not in produced]
    return _pack(m), fed


def _alone(model, s: _Softmax, rows: int, depth: int) -> bytes:
    """A model of just the SOFTMAX op `s` on [rows, depth]."""
    import copy

    from ai_edge_litert import schema_py_generated as schema
    sg0 = model.subgraphs[0]
    m = schema.ModelT()
    m.version = model.version
    m.operatorCodes = [model.operatorCodes[s.op.opcodeIndex]]
    m.buffers = [schema.BufferT()]
    sg = schema.SubGraphT()
    tensors = []
    for t in (sg0.tensors[s.input], sg0.tensors[s.output]):
        t = copy.copy(t)
        t.shape = np.array([rows, depth], dtype=np.int32)
        t.shapeSignature = None
        t.buffer = 0
        tensors.append(t)
    op = copy.copy(s.op)
    op.opcodeIndex, op.inputs, op.outputs = 0, np.array([0], np.int32), np.array([1], np.int32)
    sg.tensors, sg.inputs, sg.outputs, sg.operators = tensors, [0], [1], [op]
    m.subgraphs = [sg]
    return _pack(m)


def _softmax_alone(model, s: _Softmax, x: np.ndarray, resolver: str, progress) -> np.ndarray:
    rows = x.reshape(-1, x.shape[-1])
    interpreter = _interpreter(_alone(model, s, len(rows), x.shape[-1]), resolver)
    progress(f"{s.where()} alone on {resolver}")
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], np.ascontiguousarray(rows))
    interpreter.invoke()
    return np.array(interpreter.get_tensor(interpreter.get_output_details()[0]["index"]))


def _compute(model, s: _Softmax, x: np.ndarray, progress) -> tuple[np.ndarray, np.ndarray]:
    """The op's output: BUILTIN_REF for the rows its reference kernel computes, the builtin kernel
    for the rest (returned: True per such row)."""
    from ..reference.softmax import tflite_reference_rejects
    s.depth = x.shape[-1]            # the value's (a shape computed at run time may differ from the file's)
    rows = x.reshape(-1, s.depth)
    _, beyond = tflite_reference_rejects(rows, s.scale, s.beta)
    out = np.empty_like(rows)
    if (~beyond).any():
        out[~beyond] = _softmax_alone(model, s, rows[~beyond], "BUILTIN_REF", progress)
    if beyond.any():
        out[beyond] = _softmax_alone(model, s, rows[beyond], "BUILTIN_WITHOUT_DEFAULT_DELEGATES", progress)
    return out.reshape(x.shape), beyond


def _run_split(model, softmaxes: list[_Softmax], sets: list[dict], names: list[str], progress):
    """The model without its int8 SOFTMAX ops on BUILTIN_REF, then each of them alone (_compute). A
    SOFTMAX output that remaining ops read is fed back in, in rounds until no fed value changes (one
    round per SOFTMAX on the path at most: each round makes one more of them exact)."""
    if not softmaxes:
        raise DwsError("the model has no int8 SOFTMAX op to run separately")
    content, fed = _without(model, softmaxes)
    tensors = model.subgraphs[0].tensors
    wanted = None if names is None else sorted(set(names) | {s.input_name for s in softmaxes})
    results = []
    for k, feeds in enumerate(sets):
        given = {t: np.zeros(_shape(model, t), np.int8) for t in fed}
        for _ in range(len(softmaxes) + 1):
            extra = {_name(tensors[t]): v for t, v in given.items()}
            values = _run(content, {**feeds, **extra}, wanted, progress, f"input set {k}, without its int8 SOFTMAX ops")
            computed, beyond = {}, {}
            for s in softmaxes:                       # in model order: a SOFTMAX may read another's output
                x = computed[s.input] if s.input in computed else values[s.input_name]
                computed[s.output], beyond[s.index] = _compute(model, s, x, progress)
            if all(np.array_equal(computed[t], v) for t, v in given.items()):
                break
            given = {t: computed[t] for t in given}
        for s in softmaxes:
            values[s.name] = computed[s.output]
            s.rows += len(beyond[s.index])
            s.builtin_rows += int(beyond[s.index].sum())
        results.append({name: v for name, v in values.items() if names is None or name in names})
    notes = []
    for s in softmaxes:
        if not s.builtin_rows:
            continue
        reason = s.prepare_reason or ("the sum of exps of the row reaches 2^28 (512.0 in Q12.19: ~512 values "
                                      "within rounding of its maximum), and the kernel's TFLITE_CHECK(exponent <= 31) "
                                      "aborts")
        which = "all its rows" if s.builtin_rows == s.rows else f"{s.builtin_rows} of its {s.rows} rows"
        notes.append(f"{s.where()}: TFLite's reference kernel cannot compute {which} ({reason}); those come "
                     "from TFLite's builtin (optimized) SOFTMAX kernel (BUILTIN_WITHOUT_DEFAULT_DELEGATES) on "
                     "the input the reference kernels computed; every other op and row is BUILTIN_REF's")
    return dict(notes=notes), results


def _shape(model, tensor: int) -> tuple:
    return tuple(int(d) for d in model.subgraphs[0].tensors[tensor].shape)
