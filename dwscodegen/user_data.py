"""The user's own data: input arrays from .npy/.npz files for `verify --input` and `run --input`, and the
library's outputs written back the same way.

One array per graph input: a .npy for a one-input graph; a .npz keyed by input tensor name, or by position
(arr_0, arr_1, ... as np.savez writes unnamed arrays). An array holds one sample (the input's shape), or
several along a new first axis (samples x shape), or, for an input of batch 1, several stacked along the
batch axis. Values must suit the input: integers in [-128, 127] for an int8 input (float data is
quantized with the input's scale and zero point, and the report says so), finite numbers for float32.
Anything else is an error naming the file, the input and both shapes: never a silent reshape.
"""
from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import DwsError
from .ir import Graph, Tensor
from .quant import round_half_away_f64

LAYOUTS = ("single", "stacked", "batch")   # one sample; samples x shape; samples along the batch axis of 1


@dataclass
class UserInputs:
    sets: list[dict[str, np.ndarray]]    # one dict per sample, input name -> array of the input's shape
    layout: str                          # how the file held the samples, mirrored by save_outputs
    notes: list[str]                     # what was done to the data (quantization), for the report


def _arrays(path: Path, graph: Graph) -> dict[str, np.ndarray]:
    suffix = path.suffix.lower()
    if suffix not in (".npy", ".npz"):
        raise DwsError(f"--input {path}: expected a .npy or .npz file")
    try:
        loaded = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise DwsError(f"--input {path}: no such file") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise DwsError(f"--input {path}: not a readable {suffix} file: {exc}") from None
    if suffix == ".npy":
        if len(graph.inputs) != 1:
            raise DwsError(f"--input {path}: {graph.name} has {len(graph.inputs)} inputs "
                           f"({', '.join(graph.inputs)}); give a .npz with one array per input")
        return {graph.inputs[0]: loaded}
    with loaded:
        files = {k: loaded[k] for k in loaded.files}
    positional = [f"arr_{i}" for i in range(len(graph.inputs))]
    if set(files) == set(graph.inputs):
        return files
    if set(files) == set(positional):
        return {name: files[key] for name, key in zip(graph.inputs, positional)}
    if len(files) == 1 and len(graph.inputs) == 1:
        return {graph.inputs[0]: next(iter(files.values()))}
    raise DwsError(f"--input {path}: holds arrays {sorted(files)}; {graph.name} needs one per input, named "
                   f"{', '.join(graph.inputs)} (or {', '.join(positional)} in that order)")


def _samples(path: Path, t: Tensor, data: np.ndarray) -> tuple[np.ndarray, str]:
    """data as [samples, *t.shape], and the layout it came in."""
    if data.shape == t.shape:
        return data[np.newaxis], "single"
    if data.shape[1:] == t.shape and data.shape[0] > 0:
        return data, "stacked"
    if t.shape[0] == 1 and data.shape[1:] == t.shape[1:] and data.shape[0] > 0:
        return data[:, np.newaxis], "batch"
    raise DwsError(f"--input {path}: input '{t.name}' is {list(t.shape)}, the array is {list(data.shape)}; give "
                   f"{list(t.shape)}, or [samples, {', '.join(map(str, t.shape))}] for several")


def _values(path: Path, t: Tensor, data: np.ndarray, notes: list[str]) -> np.ndarray:
    where = f"--input {path}: input '{t.name}' ({t.dtype})"
    if data.dtype.kind not in "biuf":
        raise DwsError(f"{where}: the array holds {data.dtype} values, not numbers")
    if data.dtype.kind == "f" and not np.all(np.isfinite(data)):
        raise DwsError(f"{where}: the array holds NaN or infinite values")
    if t.dtype == "float32":
        return data.astype(np.float32)
    if data.dtype.kind == "f":     # real-valued data for an int8 input: TFLite's Quantize, said out loud
        scale, zero_point = np.float32(t.quant.scale[0]), int(t.quant.zero_point[0])
        q = round_half_away_f64(data.astype(np.float32) / scale) + zero_point
        clipped = int(np.sum((q < -128) | (q > 127)))
        notes.append(f"input '{t.name}': float data quantized to int8 with scale {scale:g}, zero point "
                     f"{zero_point}" + (f" ({clipped} values clipped to [-128, 127])" if clipped else ""))
        return np.clip(q, -128, 127).astype(np.int8)
    if data.size and (data.min() < -128 or data.max() > 127):
        raise DwsError(f"{where}: values {int(data.min())}..{int(data.max())} are outside int8 [-128, 127]")
    return data.astype(np.int8)


def load_inputs(path: Path, graph: Graph) -> UserInputs:
    path = Path(path)
    notes: list[str] = []
    per_input, layouts = {}, set()
    for name, data in _arrays(path, graph).items():
        t = graph.tensor(name)
        samples, layout = _samples(path, t, data)
        per_input[name] = _values(path, t, samples, notes)
        layouts.add(layout)
    counts = {name: len(a) for name, a in per_input.items()}
    if len(set(counts.values())) != 1:
        raise DwsError(f"--input {path}: the inputs hold different numbers of samples: {counts}")
    runs = next(iter(counts.values()))
    sets = [{name: a[r] for name, a in per_input.items()} for r in range(runs)]
    layout = layouts.pop() if len(layouts) == 1 else "stacked"
    return UserInputs(sets=sets, layout=layout, notes=notes)


def save_outputs(path: Path, graph: Graph, outputs: list[dict[str, np.ndarray]], layout: str) -> dict[str, tuple]:
    """Write the runs' outputs in the inputs' layout: .npy for one output, .npz keyed by output name.
    Returns output name -> the shape written."""
    path = Path(path)
    arrays = {}
    for name in graph.outputs:
        stacked = np.stack([out[name] for out in outputs])
        if layout == "single":
            stacked = stacked[0]
        elif layout == "batch" and stacked.shape[1] == 1:
            stacked = stacked[:, 0]
        arrays[name] = stacked
    try:
        if path.suffix.lower() == ".npy":
            np.save(path, arrays[graph.outputs[0]])
        else:
            np.savez(path, **arrays)
    except OSError as exc:
        raise DwsError(f"-o {path}: cannot write: {exc.strerror or exc}") from None
    return {name: a.shape for name, a in arrays.items()}


def check_output_file(path: Path, graph: Graph) -> None:
    suffix = Path(path).suffix.lower()
    if suffix not in (".npy", ".npz"):
        raise DwsError(f"-o {path}: expected a .npy or .npz file name")
    if suffix == ".npy" and len(graph.outputs) != 1:
        raise DwsError(f"-o {path}: {graph.name} has {len(graph.outputs)} outputs ({', '.join(graph.outputs)}); "
                       "write them to a .npz")
