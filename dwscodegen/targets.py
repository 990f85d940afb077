"""Targets are data: one TOML file per target in targets/. This module only reads and checks them."""
from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from .errors import DwsError
from .paths import TARGETS_DIR


@dataclass(frozen=True)
class Target:
    name: str
    description: str
    cc: str                       # compiler executable
    cflags: tuple[str, ...]       # code generation flags (cpu, fpu, optimisation)
    ldflags: tuple[str, ...]      # link flags (specs, libraries)
    features: frozenset[str]      # e.g. {"dsp", "fpu", "mve", "sse4"}
    runner: str                   # "native" or "qemu"
    qemu_machine: str | None = None
    qemu_cpu: str | None = None
    linker_script: str | None = None   # file name under templates/baremetal/
    flash_bytes: int | None = None     # typical part, for the fit check
    ram_bytes: int | None = None
    install_hint: str = ""             # what to install when the toolchain is missing
    cpu_flags: tuple[str, ...] = ()    # native targets: /proc/cpuinfo flags the host needs to run the build
    path: Path = field(default=Path(), compare=False)


def available_targets() -> list[str]:
    return sorted(p.stem for p in TARGETS_DIR.glob("*.toml"))


def load_target(name: str) -> Target:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name) or name.endswith(".toml"):
        # a path such as ../targets/x86_64 would also find the file: say it is a name, not a path
        raise DwsError(f"target '{name}' is not a target name: give the name of a file in {TARGETS_DIR} without "
                       f".toml, one of: {', '.join(available_targets())}")
    path = TARGETS_DIR / f"{name}.toml"
    if not path.is_file():
        raise DwsError(f"unknown target '{name}'; available: {', '.join(available_targets())} "
                       f"(a target is a file in {TARGETS_DIR})")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise DwsError(f"{path}: not valid TOML: {exc}") from None
    try:
        comp, run = data["compiler"], data["run"]
        mem = data.get("memory", {})
        runner = run["kind"]
        if runner not in ("native", "qemu"):
            raise DwsError(f"{path}: run.kind must be 'native' or 'qemu', not '{runner}'")
        return Target(
            name=data["name"],
            description=data.get("description", ""),
            cc=comp["cc"],
            cflags=tuple(comp.get("cflags", [])),
            ldflags=tuple(comp.get("ldflags", [])),
            features=frozenset(k for k, v in data.get("features", {}).items() if v),
            runner=runner,
            qemu_machine=run.get("machine"),
            qemu_cpu=run.get("cpu"),
            linker_script=run.get("linker_script"),
            flash_bytes=int(mem["flash_kib"] * 1024) if "flash_kib" in mem else None,
            ram_bytes=int(mem["ram_kib"] * 1024) if "ram_kib" in mem else None,
            install_hint=data.get("install_hint", ""),
            cpu_flags=tuple(run.get("cpu_flags", [])),
            path=path,
        )
    except KeyError as exc:
        raise DwsError(f"{path}: missing key {exc}") from None
