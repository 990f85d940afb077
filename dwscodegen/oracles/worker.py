"""The child side of isolation.py: `python -m dwscodegen.oracles.worker DIR`.

Reads DIR/request.json (task, args, index of DIR/inputs.npz), runs the task -- the framework calls of
tflite_interpreter.child_run or onnxruntime_session.child_run -- and writes DIR/outputs.npz and
DIR/result.json (exit 0), or DIR/error.json for a DwsError (exit 3). Before each call into the
framework a task logs what it is about to do to DIR/progress, so that the parent can say where a
crash happened.
"""
from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path


def _die_with_parent() -> None:
    """Linux: get SIGKILL when the parent dies; and stop if it is already gone."""
    parent = os.environ.get("DWSCODEGEN_ORACLE_PARENT")
    if sys.platform.startswith("linux"):
        try:
            import ctypes
            ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL))    # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if parent and os.getppid() != int(parent):
        sys.exit(1)


def _last(work: Path) -> str:
    lines = (work / "progress").read_text().splitlines() if (work / "progress").exists() else []
    return lines[-1] if lines else "starting up"


def main(argv: list[str]) -> int:
    _die_with_parent()
    from ..errors import DwsError
    from .isolation import ERROR_EXIT, load_arrays, save_arrays

    work = Path(argv[1])
    request = json.loads((work / "request.json").read_text())
    sets = load_arrays(work / "inputs.npz", request["inputs"])
    progress_file = open(work / "progress", "a")

    def progress(stage: str) -> None:
        progress_file.write(stage + "\n")
        progress_file.flush()

    try:
        if request["task"] == "tflite":
            from .tflite_interpreter import child_run
        elif request["task"] == "onnxruntime":
            from .onnxruntime_session import child_run
        else:
            raise DwsError(f"unknown oracle task '{request['task']}'")
        result, outputs = child_run(request["args"], sets, progress, work)
    except DwsError as exc:
        (work / "error.json").write_text(json.dumps(dict(message=str(exc))))
        return ERROR_EXIT
    except Exception as exc:        # the framework's own exceptions: a message, not a traceback
        message = f"{type(exc).__name__} in {_last(work)}: {exc}"
        (work / "error.json").write_text(json.dumps(dict(message=message, raised=True)))
        return ERROR_EXIT
    result["outputs"] = save_arrays(work / "outputs.npz", outputs)
    (work / "result.json").write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
