"""Flash and RAM a generated library needs on a target, measured from its compiled object.

flash = text + rodata + data (initial values live in flash); RAM = data + bss (the arena is bss) + stack.
The stack is a bound from gcc's -fstack-usage: the run function's frame plus the deepest kernel frame
plus the deepest helper frame (the call depth of a generated library is at most three).
"""
from __future__ import annotations

import re
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from .backends import Library
from .errors import DwsError
from .runner import elf_sizes
from .targets import Target
from .toolchain import compile_object


@dataclass(frozen=True)
class Footprint:
    text: int
    rodata: int
    data: int
    bss: int
    stack: int

    @property
    def flash(self) -> int:
        return self.text + self.rodata + self.data

    @property
    def ram(self) -> int:
        return self.data + self.bss + self.stack

    def as_dict(self) -> dict:
        return {**asdict(self), "flash": self.flash, "ram": self.ram}

    def summary(self) -> str:
        return (f"flash {self.flash:,} B (code {self.text:,}, constants {self.rodata + self.data:,}); "
                f"RAM {self.ram:,} B (static {self.data + self.bss:,}, stack <= {self.stack:,})")


def measure(lib: Library, target: Target) -> Footprint:
    with tempfile.TemporaryDirectory(prefix="dwscodegen-size-") as tmp:
        work = Path(tmp)
        for name, text in lib.files.items():
            (work / name).write_text(text)
        obj = compile_object(target, work / f"{lib.name}.c", work / f"{lib.name}.o", ("-fstack-usage",))
        sizes = elf_sizes(obj)
        stack = _stack_bound(work / f"{lib.name}.su", f"{lib.name}_run")
    return Footprint(text=sizes["text"], rodata=sizes["rodata"], data=sizes["data"], bss=sizes["bss"], stack=stack)


def _stack_bound(su_file: Path, run_fn: str) -> int:
    frames: dict[str, int] = {}
    for line in su_file.read_text().splitlines():
        location, size, kind = line.rsplit("\t", 2)
        if "dynamic" in kind and "bounded" not in kind:
            raise DwsError(f"function {location} has an unbounded stack frame; generated code must not")
        frames[location.rsplit(":", 1)[-1]] = int(size)
    run = frames.pop(run_fn, 0)
    helpers = [size for fn, size in frames.items() if fn.startswith("dws_")]
    kernels = [size for fn, size in frames.items() if not fn.startswith("dws_")]
    return run + max(kernels, default=0) + max(helpers, default=0)


def parse_size(text: str) -> int:
    """'512K', '1M', '2048' (bytes) -> bytes."""
    m = re.fullmatch(r"\s*(\d+)\s*([kKmM]i?[bB]?|[bB])?\s*", text)
    if not m:
        raise DwsError(f"cannot read size '{text}'; use bytes or a K/M suffix, e.g. 512K")
    unit = (m.group(2) or "b")[0].lower()
    return int(m.group(1)) * {"b": 1, "k": 1024, "m": 1024 * 1024}[unit]


def check_fit(fp: Footprint, target: Target, flash: int | None = None, ram: int | None = None) -> list[str]:
    """Messages for each budget exceeded (empty if it fits). Budgets default to the target file's part."""
    flash = flash if flash is not None else target.flash_bytes
    ram = ram if ram is not None else target.ram_bytes
    problems = []
    if flash is not None and fp.flash > flash:
        problems.append(f"flash: needs {fp.flash:,} B but {target.name} has {flash:,} B "
                        f"(over by {fp.flash - flash:,} B)")
    if ram is not None and fp.ram > ram:
        problems.append(f"RAM: needs {fp.ram:,} B but {target.name} has {ram:,} B (over by {fp.ram - ram:,} B)")
    return problems


def _part_size(needed: int) -> str:
    """The smallest power-of-two size (at least 1K) holding `needed` bytes, as --flash/--ram take it."""
    size = 1024
    while size < needed:
        size *= 2
    return f"{size // (1024 * 1024)}M" if size >= 1024 * 1024 else f"{size // 1024}K"


def fit_options(fp: Footprint, target: Target, flash: int | None = None, ram: int | None = None) -> list[str]:
    """The --flash/--ram options of a part the library would fit (empty if it fits already)."""
    flash = flash if flash is not None else target.flash_bytes
    ram = ram if ram is not None else target.ram_bytes
    options = []
    if flash is not None and fp.flash > flash:
        options.append(f"--flash {_part_size(fp.flash)}")
    if ram is not None and fp.ram > ram:
        options.append(f"--ram {_part_size(fp.ram)}")
    return options


def fit_verdict(fp: Footprint, target: Target, flash: int | None = None, ram: int | None = None) -> str:
    """One line: fits (with the share of each budget used), or not and with which options it would."""
    problems = check_fit(fp, target, flash, ram)
    if problems:
        return (f"does not fit {target.name}: " + "; ".join(problems)
                + f"; it would fit with {' '.join(fit_options(fp, target, flash, ram))} (a larger part), "
                  "or make the model smaller")
    flash = flash if flash is not None else target.flash_bytes
    ram = ram if ram is not None else target.ram_bytes
    if flash is None and ram is None:
        return f"{target.name} names no part size; no fit check (give --flash/--ram to check one)"
    used = [f"{what} {need:,} of {have:,} B ({100 * need / have:.0f} %)"
            for what, need, have in (("flash", fp.flash, flash), ("RAM", fp.ram, ram)) if have]
    return f"fits {target.name}: " + ", ".join(used)
