"""Run a framework oracle in a child process, so that a crash of the framework is an error, not ours.

The frameworks are C++ behind Python bindings: when one of their checks fails (ai-edge-litert's
TFLITE_CHECK calls abort()), the whole Python process dies with SIGABRT and no message -- verify
with it, and the user sees "Aborted (core dumped)", exit code 134. So each oracle runs in
`python -m dwscodegen.oracles.worker DIR`: the request (what to run, JSON) and the input arrays
(.npz) go into a fresh temporary directory, the child writes its results (.npz, JSON) back, and
the parent turns every way the child can end into a result or a DwsError:

* results                          -> the arrays and the child's notes (OracleValues.notes)
* a DwsError in the child          -> the same message (error.json, exit code 3)
* another exception in the child   -> DwsError: the framework, the exception, the stage
* killed by a signal               -> OracleCrash: the signal, the stage it was in (the child logs
                                      its stages to DIR/progress before each call into the
                                      framework), the framework's last messages
* any other exit                   -> DwsError with the exit code and the child's stderr tail

Nothing outlives the call: the child is killed and reaped if the parent is interrupted (Ctrl-C,
any exception), the directory is removed in every case, and on Linux the child also dies with its
parent (PR_SET_PDEATHSIG), should the parent be killed outright.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from ..errors import DwsError
from ..ir import Graph

ERROR_EXIT = 3          # the child raised a DwsError (message in error.json)
PARENT_ENV = "DWSCODEGEN_ORACLE_PARENT"


class OracleValues(dict):
    """Tensor name -> array, plus `notes`: what the oracle did that the user must be told (an op
    computed by another kernel than the oracle's own, and why). Empty when it ran as labelled."""

    def __init__(self, values=(), notes=()):
        super().__init__(values)
        self.notes = list(notes)


class OracleCrash(DwsError):
    """The framework killed its process (a signal): `signal_name`, `stage`, `message`."""

    def __init__(self, text: str, signal_name: str, stage: str):
        super().__init__(text)
        self.signal_name = signal_name
        self.stage = stage


def input_feeds(graph: Graph, input_sets: list[dict[str, np.ndarray]], key, convert) -> list[dict[str, np.ndarray]]:
    """Per input set, the framework's feed: `key(name)` -> `convert(name, value)` for every graph input."""
    sets = []
    for inputs in input_sets:
        missing = [name for name in graph.inputs if name not in inputs]
        if missing:
            raise DwsError(f"no value for graph input '{missing[0]}'")
        sets.append({key(name): convert(name, inputs[name]) for name in graph.inputs})
    return sets


def save_arrays(path: Path, sets: list[dict[str, np.ndarray]]) -> list[list[tuple[str, str]]]:
    """Array sets into one .npz under neutral keys (tensor names may hold '/' or ':'); the index."""
    arrays, index = {}, []
    for s, values in enumerate(sets):
        entry = []
        for j, (name, value) in enumerate(values.items()):
            key = f"s{s}_{j}"
            arrays[key] = np.asarray(value)
            entry.append((name, key))
        index.append(entry)
    np.savez(path, **arrays)
    return index


def load_arrays(path: Path, index) -> list[dict[str, np.ndarray]]:
    with np.load(path, allow_pickle=False) as data:
        return [{name: data[key] for name, key in entry} for entry in index]


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _stderr_tail(text: str, lines: int = 8) -> str:
    """The child's last messages, without the framework's INFO chatter."""
    kept = [line for line in text.splitlines() if line.strip() and not line.startswith("INFO:")]
    return "\n".join(kept[-lines:])


# a framework that hangs (a deadlocked thread pool) is an error, not a verify that never ends; far above the
# longest legitimate run here (EfficientNet-B0 float32 through the reference kernels takes well under a minute)
ORACLE_TIMEOUT_SECONDS = 1800


def _package_root() -> str:
    return str(Path(__file__).resolve().parent.parent.parent)


def run_worker(task: str, args: dict, sets: list[dict[str, np.ndarray]], what: str,
               files: dict[str, bytes] | None = None) -> tuple[dict, list[dict[str, np.ndarray]]]:
    """Run `task` of dwscodegen.oracles.worker in a child on `sets` (one dict of arrays per run);
    `files` are written into its directory first (args can name them relative to it). Returns
    the child's JSON result and its array sets. `what` names the framework in error messages."""
    with tempfile.TemporaryDirectory(prefix="dwscodegen-oracle-") as tmp:
        work = Path(tmp)
        for name, data in (files or {}).items():
            (work / name).write_bytes(data)
        index = save_arrays(work / "inputs.npz", sets)
        (work / "request.json").write_text(json.dumps(dict(task=task, args=args, inputs=index)))
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([_package_root()] + [p for p in [env.get("PYTHONPATH")] if p])
        env[PARENT_ENV] = str(os.getpid())
        with open(work / "stdout", "wb") as out, open(work / "stderr", "wb") as err:
            try:
                proc = subprocess.Popen([sys.executable, "-m", "dwscodegen.oracles.worker", str(work)],
                                        stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env)
            except OSError as exc:
                raise DwsError(f"cannot start the process that runs {what}: {exc}") from None
            try:
                returncode = proc.wait(timeout=ORACLE_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                raise DwsError(f"{what} did not finish within {ORACLE_TIMEOUT_SECONDS} s (a hang in the framework, or "
                               f"a model too large for this many inputs): try fewer --inputs or --oracle numpy") from None
            except BaseException:            # KeyboardInterrupt included: leave no child behind
                proc.kill()
                proc.wait()
                raise
        stderr = (work / "stderr").read_text(errors="replace")
        if returncode == 0:
            result = json.loads((work / "result.json").read_text())
            return result, load_arrays(work / "outputs.npz", result.pop("outputs"))
        if returncode == ERROR_EXIT and (work / "error.json").exists():
            error = json.loads((work / "error.json").read_text())
            raise DwsError(f"{what} raised {error['message']}" if error.get("raised") else error["message"])
        progress = (work / "progress").read_text().splitlines() if (work / "progress").exists() else []
        stage = progress[-1] if progress else "starting up"
        tail = _stderr_tail(stderr)
        said = f"; its last messages:\n{tail}" if tail else ", with no message"
        if returncode < 0:
            name = _signal_name(-returncode)
            raise OracleCrash(f"{what} crashed: its process was killed by {name} in {stage}{said}", name, stage)
        raise DwsError(f"{what} failed (exit code {returncode}) in {stage}{said}")
