"""Generated C (templates backend) against the NumPy reference on x86, over a matrix of layer configs.

Every case is compiled with -Wall -Wextra -Werror -std=c99, run natively on seeded inputs, and
compared: int8 bit-exact, float32 within tolerance.
"""
from __future__ import annotations

import pytest

from dwscodegen.targets import load_target
from dwscodegen.verify import verify_graph
from layers import ConvCase, add_graph, conv_graph

DW, CONV = "DepthwiseConv2D", "Conv2D"
MATRIX = [
    ConvCase(DW, (1, 8, 8, 8), (3, 3)),
    ConvCase(DW, (1, 8, 8, 8), (3, 3), stride=(2, 2), activation="relu6"),
    ConvCase(DW, (1, 7, 5, 3), (3, 3), activation="relu"),
    ConvCase(DW, (1, 7, 5, 3), (3, 3), padding="VALID", stride=(2, 1)),
    ConvCase(DW, (1, 9, 9, 4), (3, 3), dilation=(2, 2), activation="relu6"),
    ConvCase(DW, (1, 7, 5, 3), (3, 3), multiplier=2, stride=(2, 2)),
    ConvCase(DW, (1, 6, 6, 5), (5, 5), padding=(2, 1, 0, 3), activation="clamp"),
    ConvCase(DW, (1, 5, 5, 4), (3, 3), padding=(3, 0, 0, 3), bias=False, per_channel=False, in_zp=-128),
    ConvCase(DW, (1, 10, 4, 2), (4, 2), dilation=(2, 3), padding="SAME", multiplier=3),
    ConvCase(CONV, (1, 8, 8, 8), (1, 1), out_channels=16, activation="relu6"),
    ConvCase(CONV, (1, 9, 7, 6), (1, 1), out_channels=5, stride=(2, 2)),
    ConvCase(CONV, (1, 7, 5, 3), (3, 3), out_channels=4, stride=(2, 2), activation="relu"),
    ConvCase(CONV, (1, 49, 10, 1), (10, 4), out_channels=8, stride=(2, 2), activation="relu"),
    ConvCase(CONV, (1, 8, 8, 4), (3, 3), out_channels=6, dilation=(2, 2), padding="VALID", per_channel=False),
    ConvCase(CONV, (1, 6, 6, 3), (1, 1), out_channels=4, padding=(1, 0, 1, 0), activation="clamp"),
]


@pytest.fixture(scope="module")
def x86():
    return load_target("x86_64")


@pytest.mark.parametrize("dtype", ["int8", "float32"])
@pytest.mark.parametrize("case", MATRIX, ids=ConvCase.id)
def test_conv_layer(case, dtype, x86):
    graph = conv_graph(case, dtype, seed=MATRIX.index(case))
    report = verify_graph(graph, x86, runs=2, seed=1)
    assert report.ok, [c.summary() for c in report.comparisons] + [report.first_bad_layer]


@pytest.mark.parametrize("dtype", ["int8", "float32"])
@pytest.mark.parametrize("activation", ["none", "relu", "clamp"])
def test_add_layer(dtype, activation, x86):
    report = verify_graph(add_graph((1, 5, 7, 3), dtype, activation, seed=2), x86, runs=2, seed=1)
    assert report.ok, [c.summary() for c in report.comparisons]
