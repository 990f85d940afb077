"""Compile and link a C99 program for a target with the target's own compiler.

Host targets get a plain `cc ... -o exe`. QEMU (bare-metal Cortex-M) targets additionally get
templates/baremetal/startup.c (vector table, reset, fault reporting), the board's linker script,
and newlib's rdimon semihosting library, so a harness can use printf/fopen/fread/fwrite/exit as
on a host: QEMU serves those calls from the host, relative to its working directory.
"""
from __future__ import annotations

import functools
import re
import shlex
import shutil
import subprocess
from pathlib import Path

from . import procs
from .errors import DwsError
from .paths import TEMPLATES_DIR
from .targets import Target

BAREMETAL_DIR = TEMPLATES_DIR / "baremetal"
QEMU_SYSTEM = "qemu-system-arm"
WARNING_FLAGS = ("-std=c99", "-pedantic", "-Wall", "-Wextra", "-Wconversion", "-Wsign-conversion", "-Werror")
_MAX_ERROR_LINES = 40


@functools.lru_cache(maxsize=None)
def _has_rdimon(cc: str) -> bool:
    # gcc echoes the bare name back when it cannot find the file in its search path
    try:
        found = procs.run([cc, "-print-file-name=rdimon.specs"], timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return False
    return found != "rdimon.specs" and Path(found).is_file()


def toolchain_available(target: Target) -> tuple[bool, str]:
    """(True, "") if `target` can be built and run here, else (False, what is missing)."""
    hint = f"; install: {target.install_hint}" if target.install_hint else ""
    if shutil.which(target.cc) is None:
        return False, f"target '{target.name}' needs the C compiler '{target.cc}'{hint}"
    if target.runner == "qemu":
        if not _has_rdimon(target.cc):
            return False, f"target '{target.name}' needs newlib's rdimon.specs for {target.cc}{hint}"
        if shutil.which(QEMU_SYSTEM) is None:
            return False, f"target '{target.name}' needs {QEMU_SYSTEM}{hint}"
    return True, ""


def _baremetal_flags(target: Target) -> tuple[list[Path], list[str]]:
    """Extra sources and link flags for a QEMU Cortex-M target."""
    if not target.linker_script:
        raise DwsError(f"{target.path}: a qemu target needs [run] linker_script")
    script = BAREMETAL_DIR / target.linker_script
    if not script.is_file():
        raise DwsError(f"{target.path}: linker script {script} does not exist")
    if not _has_rdimon(target.cc):
        raise DwsError(f"target '{target.name}' needs newlib (rdimon.specs) for {target.cc}; "
                       f"install: {target.install_hint}")
    # -nostartfiles: startup.c replaces crt0; -L: the board script INCLUDEs cortexm_sections.ld
    flags = ["-nostartfiles", "--specs=rdimon.specs", f"-L{BAREMETAL_DIR}", "-T", str(script)]
    return [BAREMETAL_DIR / "startup.c"], flags


def _trim(text: str) -> str:
    lines = text.strip().splitlines()
    if len(lines) > _MAX_ERROR_LINES:
        lines = lines[:_MAX_ERROR_LINES] + [f"... ({len(lines) - _MAX_ERROR_LINES} more lines)"]
    return "\n".join(lines)


def compile_object(target: Target, source: Path, out: Path, extra_flags: tuple[str, ...] = ()) -> Path:
    """Compile one C file to an object with the target's flags (no link); used to measure a library."""
    if shutil.which(target.cc) is None:
        raise DwsError(toolchain_available(target)[1])
    cmd = [target.cc, *WARNING_FLAGS, *target.cflags, *extra_flags, "-c", str(source), "-o", str(out)]
    try:
        proc = procs.run(cmd, cwd=Path(out).parent)
    except OSError as exc:
        raise DwsError(f"cannot run {target.cc} for target '{target.name}': {exc}") from None
    if proc.returncode != 0:
        raise DwsError(f"compiling for target '{target.name}' failed:\n$ {shlex.join(cmd)}\n"
                       f"{_trim(proc.stderr or proc.stdout)}")
    return Path(out)


def compile_program(target: Target, sources: list[Path], include_dirs: list[Path], out: Path,
                    defines: dict[str, str] | None = None) -> Path:
    """Compile and link `sources` into the executable/ELF `out`; returns `out`.

    Always -std=c99 -Wall -Wextra -Werror: generated code must be warning-free on every target.
    QEMU targets get -DDWS_BAREMETAL=1 so a harness can tell where it runs.
    """
    if shutil.which(target.cc) is None:
        raise DwsError(toolchain_available(target)[1])  # names the compiler and what to install
    extra_sources: list[Path] = []
    link_flags: list[str] = []
    defines = dict(defines or {})
    if target.runner == "qemu":
        extra_sources, link_flags = _baremetal_flags(target)
        defines.setdefault("DWS_BAREMETAL", "1")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    cmd = [target.cc, *WARNING_FLAGS, *target.cflags]
    cmd += [f"-I{d}" for d in include_dirs]
    cmd += [f"-D{k}={v}" if v != "" else f"-D{k}" for k, v in defines.items()]
    cmd += [str(s) for s in [*sources, *extra_sources]]
    # -lm last: the host libc keeps libm separate; newlib's is harmless to name
    cmd += ["-o", str(out), *target.ldflags, *link_flags, "-lm"]
    try:
        proc = procs.run(cmd)
    except OSError as exc:
        raise DwsError(f"cannot run {target.cc} for target '{target.name}': {exc}") from None
    if proc.returncode != 0:
        overflow = board_overflow(target, proc.stderr) if target.runner == "qemu" else None
        if overflow:
            raise DwsError(overflow)
        raise DwsError(f"compiling for target '{target.name}' failed:\n$ {shlex.join(cmd)}\n"
                       f"{_trim(proc.stderr or proc.stdout)}")
    return out


_REGION = re.compile(r"^\s*(\w+)\s*\([^)]*\)\s*:\s*ORIGIN\s*=\s*(\w+)\s*,\s*LENGTH\s*=\s*(\d+)\s*([KM]?)", re.M)
_ALIAS = re.compile(r'REGION_ALIAS\(\s*"(\w+)"\s*,\s*(\w+)\s*\)')
_OVERFLOW = re.compile(r"region `(\w+)' overflowed by (\d+) bytes")
WHAT_GOES_WHERE = {"BOOT": "vector table", "FLASH": "code", "CONST": "constants", "RAM": "variables, the arena",
                   "STACKRAM": "stack"}


def _board(target: Target) -> tuple[dict[str, int], dict[str, str]]:
    """(bytes per memory region and region alias, alias -> region) of a QEMU target's linker script."""
    text = (BAREMETAL_DIR / target.linker_script).read_text() if target.linker_script else ""
    scale = {"": 1, "K": 1024, "M": 1024 * 1024}
    regions = {m.group(1): int(m.group(3)) * scale[m.group(4)] for m in _REGION.finditer(text)}
    aliases = {alias: name for alias, name in _ALIAS.findall(text) if name in regions}
    return {**regions, **{alias: regions[name] for alias, name in aliases.items()}}, aliases


def board_regions(target: Target) -> dict[str, int]:
    """Bytes of each memory region (and region alias) of a QEMU target's board, from its linker script."""
    return _board(target)[0]


def board_overflow(target: Target, linker_output: str) -> str | None:
    """What the linker's "region `X' overflowed" means for a user: which part of the program does not fit
    the QEMU board's memory, by how much, and which targets' boards are big enough."""
    found = {name: int(over) for name, over in _OVERFLOW.findall(linker_output)}
    regions, aliases = _board(target)
    if not found or not set(found) <= set(regions):
        return None
    problems, needs = [], {}
    for name, over in found.items():
        size, needs[name] = regions[name], regions[name] + over
        held = [WHAT_GOES_WHERE.get(n, n) for n in [name] + [a for a, r in aliases.items() if r == name]]
        problems.append(f"region {name} ({', '.join(held)}) needs {size + over:,} B but holds {size:,} B")
    from .targets import available_targets, load_target   # every target file, for what would fit
    bigger = [t.name for t in map(load_target, available_targets()) if t.runner == "qemu" and t.name != target.name
              and all(board_regions(t).get(n, 0) >= need for n, need in needs.items())]
    hint = (f"; verify on {' or '.join(bigger)}, whose board has room for it" if bigger
            else "; no QEMU board here has room for it")
    return (f"the program does not fit the memory of QEMU board {target.qemu_machine} (target '{target.name}', "
            f"templates/baremetal/{target.linker_script}): " + "; ".join(problems) + hint)
