"""Running built programs: natively (native.py) or under QEMU (qemu.py), with one result type.

`elf_sizes` lives here because both the fit check and the reports need it for either kind of ELF.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from elftools.common.exceptions import ELFError
from elftools.elf.constants import SH_FLAGS
from elftools.elf.elffile import ELFFile
from elftools.elf.sections import SymbolTableSection

from ..errors import DwsError


@dataclass
class RunResult:
    returncode: int
    stdout: str
    stderr: str
    # cumulative executed-instruction counts, one per execution of the marker function
    # (QEMU runs with count_marker only; empty otherwise)
    marker_counts: list[int] = field(default_factory=list)
    insn_total: int | None = None   # all instructions executed (QEMU with count_marker only)


def elf_sizes(elf: Path) -> dict:
    """Bytes of text, rodata, data, bss in an ELF (bare-metal or host), by section flags.

    Bare-metal ELFs built with templates/baremetal also report the reserved `heap` and `stack`
    regions (NOBITS sections .heap/.stack) and `stack_range` = (bottom, top) addresses; those are
    excluded from bss. Host ELFs report heap = stack = 0 and stack_range = None.
    """
    sizes = {"text": 0, "rodata": 0, "data": 0, "bss": 0, "heap": 0, "stack": 0, "stack_range": None}
    try:
        with open(elf, "rb") as f:
            ef = ELFFile(f)
            for sec in ef.iter_sections():
                flags = sec["sh_flags"]
                if not flags & SH_FLAGS.SHF_ALLOC or sec["sh_size"] == 0:
                    continue
                if sec.name in (".heap", ".stack"):
                    sizes[sec.name[1:]] += sec["sh_size"]
                elif sec["sh_type"] == "SHT_NOBITS":
                    sizes["bss"] += sec["sh_size"]
                elif flags & SH_FLAGS.SHF_EXECINSTR:
                    sizes["text"] += sec["sh_size"]
                elif flags & SH_FLAGS.SHF_WRITE:
                    sizes["data"] += sec["sh_size"]
                else:  # read-only data, including the vector table and unwind tables
                    sizes["rodata"] += sec["sh_size"]
            symtab = ef.get_section_by_name(".symtab")
            if isinstance(symtab, SymbolTableSection):
                lo, hi = symtab.get_symbol_by_name("__stack_bottom__"), symtab.get_symbol_by_name("__stack_top__")
                if lo and hi:
                    sizes["stack_range"] = (lo[0]["st_value"], hi[0]["st_value"])
    except (OSError, ELFError) as exc:
        raise DwsError(f"cannot read ELF {elf}: {exc}") from None
    return sizes


def find_function(elf: Path, name: str) -> int:
    """Address of function `name` in an ELF, with the Thumb bit cleared (it is where the
    first instruction is, which is what QEMU reports as the instruction address)."""
    try:
        with open(elf, "rb") as f:
            symtab = ELFFile(f).get_section_by_name(".symtab")
            syms = symtab.get_symbol_by_name(name) if isinstance(symtab, SymbolTableSection) else None
    except (OSError, ELFError) as exc:
        raise DwsError(f"cannot read ELF {elf}: {exc}") from None
    funcs = [s for s in syms or [] if s["st_info"]["type"] == "STT_FUNC"]
    if not funcs:
        raise DwsError(f"{elf}: no function '{name}' (is it static, inlined, or removed by "
                       f"--gc-sections? mark it __attribute__((noinline, used)))")
    return funcs[0]["st_value"] & ~1


__all__ = ["RunResult", "elf_sizes", "find_function"]
