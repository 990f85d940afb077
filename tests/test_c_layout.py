"""Generated C a person would keep (issue 14): the SIMD prelude once per file, a blank line or a comment before
every function, each kernel's banner naming its variant."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from dwscodegen.backends import generate_library
from dwscodegen.importers import load_model
from dwscodegen.targets import load_target

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
FUNCTION = re.compile(r"^(?:static (?:inline )?)?(?:void|int|int8_t|int32_t|uint32_t|float|int16x8_t|int32x4_t)"
                      r" \w+\(.*\)$")


def _c(model: str, target: str, backend: str = "templates") -> str:
    lib = generate_library(load_model(EXAMPLES / model), load_target(target), backend)
    return lib.files[f"{lib.name}.c"]


@pytest.mark.parametrize("target", ["x86_64", "cortex-m4", "cortex-m55"])
@pytest.mark.parametrize("backend", ["templates", "tvm"])
def test_layout(target, backend):
    if backend == "tvm":
        pytest.importorskip("tvm")
    text = _c("dscnn_block_s8.json", target, backend)
    lines = text.split("\n")
    includes = [line for line in lines if line.startswith("#include")]
    assert len(includes) == len(set(includes)), includes               # every header once
    first_code = next(i for i, line in enumerate(lines) if FUNCTION.match(line))
    assert all(lines.index(inc) < first_code for inc in includes)      # and at the top
    assert "_HELPERS" not in text                                       # helpers once, so no guard left
    for name in ("dws_load32", "dws_smmlar"):
        assert len(re.findall(rf"^static inline \w+ {name}\(", text, re.M)) <= 1
    for i, line in enumerate(lines):
        if FUNCTION.match(line):
            assert lines[i - 1] == "" or lines[i - 1].endswith("*/"), f"line {i + 1} {line!r} follows {lines[i - 1]!r}"
    assert "\n\n\n" not in text


@pytest.mark.parametrize("target, dw_kernel", [("x86_64", "depthwise_conv2d_s8 (portable)"),
                                               ("cortex-m4", "depthwise_conv2d_s8_dsp_4c"),
                                               ("cortex-m55", "depthwise_conv2d_s8_mve_8c")])
def test_each_banner_names_its_variant(target, dw_kernel):
    text = _c("dscnn_block_s8.json", target)
    graph = load_model(EXAMPLES / "dscnn_block_s8.json")
    for op in graph.ops:
        assert re.search(rf"^ \* {re.escape(op.where())}, kernel \w+", text, re.M), op.where()
    assert f"'dw2' (DepthwiseConv2D), kernel {dw_kernel}" in text


def _column_zero_inside_functions(text: str) -> list[str]:
    """Lines inside a function body (brace depth > 0) that start at column 0, other than the function's own
    closing brace and preprocessor lines: what a Jinja whitespace trim leaves behind."""
    bad, depth = [], 0
    for number, line in enumerate(text.split("\n"), 1):
        stripped = line.strip()
        if depth > 0 and line and not line[0].isspace() and not line.startswith("#"):
            if not (stripped == "}" and depth == 1) and not stripped.startswith(("}", "*", "/*")):
                bad.append(f"{number}: {line}")
            elif stripped.startswith("}") and depth > 1:
                bad.append(f"{number}: {line}")
        if not stripped.startswith(("/*", "*", "//")):
            depth += line.count("{") - line.count("}")
    return bad


# the portable kernels (x86_64) and the register-tiled ones (cortex-m3); the DSP and MVE variants still carry a few
# column-0 lines from whitespace trims (listed in issue 14's note)
@pytest.mark.parametrize("target", ["x86_64", "cortex-m3"])
@pytest.mark.parametrize("model", sorted(p.name for p in EXAMPLES.glob("*.json")))
def test_no_column_zero_code_inside_functions_and_no_unit_loops(model, target):
    text = _c(model, target)
    assert not _column_zero_inside_functions(text)
    assert not re.findall(r"for \(int \w+ = 0; \w+ < 1; \+\+\w+\)", text)      # a loop of one is written out
