"""Run a bare-metal Cortex-M ELF on a QEMU MPS2/MPS3 board, optionally counting instructions.

The program talks to the host only through Arm semihosting (newlib rdimon, see
templates/baremetal/startup.c): argv comes from `-semihosting-config arg=...`, stdout/stderr are
QEMU's, fopen() paths are relative to `cwd`, and exit(n) becomes QEMU's exit status. A guest
fault prints a message to stderr and exits with FAULT_EXIT_CODE.

Instruction counts come from tools/qemu_insn_plugin (a TCG plugin, built here on first use):
QEMU's -icount would only give a shifted virtual clock, the plugin gives exact counts at chosen
points (each execution of a marker function) without changing what the guest sees.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from .. import procs
from ..errors import DwsError
from ..paths import TOOLS_DIR
from ..targets import Target
from . import RunResult, find_function

QEMU_SYSTEM = "qemu-system-arm"
FAULT_EXIT_CODE = 134   # startup.c's exit status after a HardFault/MemManage/BusFault/UsageFault
PLUGIN_DIR = TOOLS_DIR / "qemu_insn_plugin"
PLUGIN_SOURCES = (PLUGIN_DIR / "insn_count.c", PLUGIN_DIR / "qemu_plugin_api.h")


def plugin_path() -> Path:
    """Where the built plugin goes: beside its source, or, when that folder is not writable (a system-wide
    install), in the user's cache."""
    if os.access(PLUGIN_DIR, os.W_OK):
        return PLUGIN_DIR / "insn_count.so"
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "dwscodegen"
    cache.mkdir(parents=True, exist_ok=True)
    return cache / "insn_count.so"


def build_plugin(force: bool = False) -> Path:
    """Build the instruction-count plugin with the host C compiler unless it is up to date."""
    plugin = plugin_path()
    newest = max(p.stat().st_mtime for p in PLUGIN_SOURCES)
    if not force and plugin.is_file() and plugin.stat().st_mtime >= newest:
        return plugin
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        raise DwsError("instruction counting needs a host C compiler to build the QEMU plugin; "
                       "install: apt-get install gcc")
    # build to a private name and rename: parallel test workers may build at the same time
    tmp = plugin.with_name(f".{plugin.stem}.{os.getpid()}.so")
    cmd = [cc, "-shared", "-fPIC", "-O2", "-std=c99", "-Wall", "-Wextra", "-Werror",
           "-o", str(tmp), str(PLUGIN_SOURCES[0])]
    proc = procs.run(cmd)
    if proc.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise DwsError(f"building the QEMU plugin failed:\n$ {' '.join(cmd)}\n{proc.stderr.strip()}")
    os.replace(tmp, plugin)
    return plugin


def _opt(value: str) -> str:
    """Escape a value inside a QEMU -option a=b,c=d list (a literal comma is written twice)."""
    return value.replace(",", ",,")


def _parse_counts(path: Path) -> tuple[list[int], int | None]:
    hits, total = [], None
    for line in path.read_text().splitlines():
        kind, _, num = line.partition(" ")
        if kind == "hit":
            hits.append(int(num))
        elif kind == "total":
            total = int(num)
    return hits, total


def run_qemu(elf: Path, target: Target, args: list[str], cwd: Path, timeout: float,
             count_marker: str | None = None) -> RunResult:
    """Run `elf` on the target's QEMU board with argv = [elf name, *args] and cwd `cwd`.

    With `count_marker` (a function name in the ELF), RunResult.marker_counts holds the number of
    instructions executed before each call of that function, and insn_total the whole run's.
    """
    if target.runner != "qemu" or not target.qemu_machine:
        raise DwsError(f"target '{target.name}' is not a QEMU target")
    qemu = shutil.which(QEMU_SYSTEM)
    if qemu is None:
        raise DwsError(f"target '{target.name}' needs {QEMU_SYSTEM}; install: {target.install_hint}")
    where = f"{target.name} ({target.qemu_machine})"
    elf = Path(elf).resolve()
    for a in args:
        # the semihosting command line is the arguments joined by spaces, split again by startup.c
        if a == "" or re.search(r"\s", str(a)):
            raise DwsError(f"argument {str(a)!r} for {where}: semihosting arguments cannot be empty "
                           f"or contain whitespace")
    semi = ",".join(["enable=on", "target=native", f"arg={_opt(elf.name)}",
                     *(f"arg={_opt(str(a))}" for a in args)])
    cmd = [qemu, "-M", target.qemu_machine, *(["-cpu", target.qemu_cpu] if target.qemu_cpu else []),
           "-nographic", "-monitor", "none", "-serial", "none",
           "-semihosting-config", semi, "-kernel", str(elf)]
    with tempfile.TemporaryDirectory(prefix="dws-qemu-") as tmp:
        counts_file = Path(tmp) / "counts.txt"
        if count_marker is not None:
            addr = find_function(elf, count_marker)
            plugin = build_plugin()
            cmd += ["-plugin", f"{_opt(str(plugin))},marker=0x{addr:x},out={_opt(str(counts_file))}"]
        try:
            proc = procs.run(cmd, cwd=cwd, timeout=timeout)
        except subprocess.TimeoutExpired:   # procs.run has already ended QEMU
            raise DwsError(f"{elf.name} on {where} did not finish within {timeout:g} s "
                           f"(infinite loop, or a model too slow for this timeout?)") from None
        except OSError as exc:
            raise DwsError(f"cannot run {QEMU_SYSTEM} for {where}: {exc}") from None
        # no counts file: QEMU itself died (e.g. "Lockup" abort); the return code tells
        hits, total = _parse_counts(counts_file) if counts_file.is_file() else ([], None)
    return RunResult(proc.returncode, proc.stdout, proc.stderr, hits, total)
