"""The op table (dwscodegen/ops.py OPS): one entry per IR op type, and the stages that read it agree with it."""
from __future__ import annotations

import dataclasses

import pytest

from dwscodegen import ir
from dwscodegen.backends.templates.contexts import KERNELS as TEMPLATE_KERNELS
from dwscodegen.backends.tvm.backend import GLUE_KINDS, SPATIAL_KINDS
from dwscodegen.errors import DwsError
from dwscodegen.ops import CONV_TYPES, OPS, PER_IMAGE, layer_kind, op_macs
from dwscodegen.reference.ops import KERNELS as REFERENCE_KERNELS
from dwscodegen.validate import validate

from .support.layers import ConvCase, add_graph, conv_graph


def test_every_op_type_has_facts_and_every_stage():
    for op_type in ir.OP_TYPES:
        facts = OPS[op_type]
        assert dataclasses.is_dataclass(facts.attrs) and getattr(ir, facts.attrs.__name__) is facts.attrs
        assert 1 <= facts.inputs[0] <= facts.inputs[1]
        assert op_type in REFERENCE_KERNELS and op_type in TEMPLATE_KERNELS, op_type
        assert op_type in GLUE_KINDS or op_type in SPATIAL_KINDS or op_type in CONV_TYPES or op_type == "Add", op_type
    assert set(PER_IMAGE) <= set(CONV_TYPES)
    assert {t for t, f in OPS.items() if f.converts} == {"Quantize", "Dequantize"}


def test_macs_and_kind_come_from_the_table():
    graph = conv_graph(ConvCase("Conv2D", (1, 8, 8, 4), (1, 1), out_channels=6, padding="VALID"), "int8", seed=1)
    op = graph.ops[0]
    assert op_macs(graph, op) == 8 * 8 * 6 * 4 and layer_kind(graph, op) == "pointwise"
    graph = add_graph((1, 3, 3, 2), "float32", "none", seed=1)
    assert op_macs(graph, graph.ops[0]) == 0 and layer_kind(graph, graph.ops[0]) == "elementwise"


def test_validation_checks_arity_and_attrs_from_the_table():
    graph = add_graph((1, 3, 3, 2), "float32", "none", seed=1)
    graph.ops[0].inputs = graph.ops[0].inputs[:1]
    with pytest.raises(DwsError, match=r"\(Add\): expects 2 input\(s\), got 1"):
        validate(graph)
    graph = add_graph((1, 3, 3, 2), "float32", "none", seed=1)
    graph.ops[0].attrs = ir.PadAttrs()
    with pytest.raises(DwsError, match="attributes are PadAttrs, expected AddAttrs"):
        validate(graph)
    graph.ops[0].type = "Swish"
    with pytest.raises(DwsError, match="op type 'Swish' is not supported"):
        validate(graph)
