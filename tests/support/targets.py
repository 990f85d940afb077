"""Load a target for a test, or skip the test with the reason its toolchain (or, for a native target, the
host CPU's instruction set) is unavailable here."""
from __future__ import annotations

import pytest

from dwscodegen.runner.native import missing_cpu_flags
from dwscodegen.targets import Target, load_target
from dwscodegen.toolchain import toolchain_available


def target_or_skip(name: str) -> Target:
    target = load_target(name)
    ok, why = toolchain_available(target)
    if not ok:
        pytest.skip(why)
    missing = missing_cpu_flags(target) if target.runner == "native" else []
    if missing:
        pytest.skip(f"target '{name}' needs CPU features this host lacks: {', '.join(missing)}")
    return target
