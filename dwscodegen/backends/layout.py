"""What the kernels of an assembled C file share, emitted once at the top (the file's indentation and blank
lines are c_layout's).

Each SIMD kernel template starts with its ISA prelude (intrinsics headers, and helpers guarded by
#ifndef DWS_<ISA>_HELPERS so a file holding several kernels compiles); the library takes them out of the
kernels and emits each include and each helper block once.
"""
from __future__ import annotations

import re

INCLUDE = re.compile(r"^#include <[^>\n]+>\n", re.M)
HELPERS = re.compile(r"^#ifndef (DWS_\w+_HELPERS)\n#define \1\n(.*?)^#endif\n", re.M | re.S)


def hoist_preludes(kernels: list[str]) -> tuple[list[str], list[str], list[str]]:
    """(kernels without their preludes, the includes, the helper blocks), each include and block once."""
    includes: list[str] = []
    helpers: dict[str, str] = {}
    stripped = []
    for source in kernels:
        for line in INCLUDE.findall(source):
            if line.strip() not in includes:
                includes.append(line.strip())
        for guard, body in HELPERS.findall(source):
            if "#if" not in body:       # a nested conditional would end the match early: leave it alone
                helpers.setdefault(guard, body.rstrip("\n"))
        source = INCLUDE.sub("", source)
        source = HELPERS.sub(lambda m: "" if "#if" not in m.group(2) else m.group(0), source)
        stripped.append(source)
    return stripped, includes, list(helpers.values())

