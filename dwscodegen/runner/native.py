"""Run a host executable with a timeout (the x86_64 target)."""
from __future__ import annotations

import subprocess
from pathlib import Path

from .. import procs
from ..errors import DwsError
from . import RunResult


def run_native(exe: Path, args: list[str], cwd: Path, timeout: float) -> RunResult:
    cmd = [str(Path(exe).resolve()), *map(str, args)]
    try:
        # stdin closed: a harness waiting on input must fail, not hang the verifier
        proc = procs.run(cmd, cwd=cwd, timeout=timeout)
    except subprocess.TimeoutExpired:   # the harness is already ended
        raise DwsError(f"{exe.name} on the host did not finish within {timeout:g} s "
                       f"(infinite loop, or a model too large for this timeout?)") from None
    except OSError as exc:
        raise DwsError(f"cannot run {exe}: {exc}") from None
    # a signal shows up as a negative return code (e.g. -11 for a segmentation fault)
    return RunResult(proc.returncode, proc.stdout, proc.stderr)
