"""Run a host executable with a timeout (the x86_64 targets), after checking that the host's CPU has the
instruction set the target builds for."""
from __future__ import annotations

import functools
import subprocess
from pathlib import Path

from .. import procs
from ..errors import DwsError
from ..targets import Target
from . import RunResult

CPUINFO = Path("/proc/cpuinfo")


@functools.lru_cache(maxsize=None)
def host_cpu_flags(cpuinfo: Path = CPUINFO) -> frozenset[str] | None:
    """The CPU flags the kernel reports (the first processor's `flags` line), or None where there is no
    /proc/cpuinfo to read (not Linux)."""
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        return None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            return frozenset(value.split())
    return None


def missing_cpu_flags(target: Target, flags: frozenset[str] | None = None) -> list[str]:
    """The target's required CPU flags that the host lacks (empty: it can run the target's binaries)."""
    have = host_cpu_flags() if flags is None else flags
    if have is None or not target.cpu_flags:
        return []
    return [f for f in target.cpu_flags if f not in have]


def require_host_isa(target: Target, flags: frozenset[str] | None = None) -> None:
    """Refuse, with the flags that are missing, a native target whose binaries this CPU cannot execute
    (running one would end in SIGILL somewhere inside a kernel)."""
    if target.runner != "native":
        return
    missing = missing_cpu_flags(target, flags)
    if missing:
        raise DwsError(f"target '{target.name}' builds for CPU features this host lacks: {', '.join(missing)} "
                       f"(checked against the flags in {CPUINFO}); its binaries would stop with an illegal "
                       f"instruction. Run on a host that has them, or pick a lower x86 level (x86_64-v3, x86_64)")


def run_native(exe: Path, args: list[str], cwd: Path, timeout: float, target: Target | None = None) -> RunResult:
    """target: checked first with require_host_isa."""
    if target is not None:
        require_host_isa(target)
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
