"""Both code generation roads as a pytest parameter; the tvm one skips with a reason where apache-tvm is absent."""
from __future__ import annotations

import importlib.util

import pytest

BACKENDS = ["templates", pytest.param("tvm", marks=[pytest.mark.tvm, pytest.mark.skipif(
    importlib.util.find_spec("tvm") is None, reason="apache-tvm not installed")])]
