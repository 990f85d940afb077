"""Load a target for a test, or skip the test with the reason its toolchain is unavailable here."""
from __future__ import annotations

import pytest

from dwscodegen.targets import Target, load_target
from dwscodegen.toolchain import toolchain_available


def target_or_skip(name: str) -> Target:
    target = load_target(name)
    ok, why = toolchain_available(target)
    if not ok:
        pytest.skip(why)
    return target
