"""Generated C against the NumPy reference on x86, over the layer matrix, for both backends.

Every case is compiled with -Wall -Wextra -Werror -std=c99, run natively on seeded inputs, and
compared: int8 bit-exact, float32 within tolerance.
"""
from __future__ import annotations


import pytest

from dwscodegen.targets import load_target
from dwscodegen.verify import verify_graph

from .support.backends import BACKENDS
from .support.layers import ConvCase, MATRIX, add_graph, assert_verified, conv_graph



@pytest.fixture(scope="module")
def x86():
    return load_target("x86_64")


_check = assert_verified


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", ["int8", "float32"])
@pytest.mark.parametrize("case", MATRIX, ids=ConvCase.id)
def test_conv_layer(case, dtype, backend, x86):
    graph = conv_graph(case, dtype, seed=MATRIX.index(case))
    _check(verify_graph(graph, x86, backend=backend, runs=2, seed=1))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", ["int8", "float32"])
@pytest.mark.parametrize("activation", ["none", "relu", "clamp"])
def test_add_layer(dtype, activation, backend, x86):
    _check(verify_graph(add_graph((1, 5, 7, 3), dtype, activation, seed=2), x86, backend=backend, runs=2, seed=1))
