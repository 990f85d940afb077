"""Generated C a person would keep (issue 14): the SIMD prelude once per file, a blank line or a comment before
every function, each kernel's banner naming its variant; the layout pass (backends/c_layout.py) changes only
whitespace and leaves every line indented by its brace depth, over the layer matrix and the glue ops on every
target and both backends (generation only, plus a strict compile of a few)."""
from __future__ import annotations

import re
import shutil
import tempfile
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest

from dwscodegen.backends import generate_library
from dwscodegen.backends.c_layout import layout_c
from dwscodegen.backends.library import assemble
from dwscodegen.backends.render import c_affine, c_index, c_plus
from dwscodegen.importers import load_model
from dwscodegen.targets import load_target
from dwscodegen.toolchain import compile_object

from .support.layers import MATRIX, add_graph, conv_graph
from .support.targets import target_or_skip
from .support.tflite_builder import build_single_op_model
from .support.tflite_cases import OPS, RNG_SEED, single_op

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


# ---------------------------------------------------------------------------------------------------------------
# The layout pass over the layer matrix and the glue ops
# ---------------------------------------------------------------------------------------------------------------

TARGETS = ["x86_64", "x86_64-v3", "x86_64-v4", "cortex-m3", "cortex-m4", "cortex-m55"]
# C tokens; a comment is one token with its whitespace runs collapsed (the pass moves comment lines only as a whole)
TOKEN = re.compile(r"/\*.*?\*/|//[^\n]*|\"(?:[^\"\\\n]|\\.)*\"|'(?:[^'\\\n]|\\.)*'|[A-Za-z_]\w*|\.?\d(?:[\w.]|[eEpP][+-])*"
                   r"|<<=|>>=|->|\+\+|--|<<|>>|<=|>=|==|!=|&&|\|\||[-+*/%&|^!=<>]=|##|\S", re.S)
STRICT = ("-std=c99", "-pedantic", "-Wall", "-Wextra", "-Wconversion", "-Wsign-conversion", "-Werror")
# A loop with constant bounds: begin, `<` or `<=`, end, and the step of `+= step` (none: ++)
CONSTANT_LOOP = re.compile(r"for \((?:int )?(\w+) = (-?\d+); \1 (<=?) (-?\d+); (?:\+\+\1|\1\+\+|\1 \+= (\d+))")
# Loops of one a kernel keeps on purpose: the MVE depthwise regions' row and column loops (written straight, gcc
# compiles the channel loop inside them to about 1 % more instructions on M55; see the template).
KEPT_UNIT_LOOPS = {"depthwise_conv2d_s8_mve_8c": ("oy", "ox")}
# The x86 im2col patch keeps its border loop over kernel rows when there is one (templates/kernels/_avx.j2).
KEPT_UNIT_LOOPS.update({variant: ("ky",) for variant in (
    "conv2d_s8_avx2_im2col_6x16", "conv2d_s8_avx2_im2col_8x8", "conv2d_s8_avx512vnni_im2col_16x16",
    "conv2d_s8_avx512vnni_im2col_4x64", "conv2d_f32_avx2_im2col_6x16", "conv2d_f32_avx512_im2col_14x16",
    "conv2d_f32_avx512_im2col_6x64", "conv2d_hybrid_f32_avx2_im2col_6x16", "conv2d_hybrid_f32_avx2_im2col_8x8",
    "conv2d_hybrid_f32_avx512vnni_im2col_16x16", "conv2d_hybrid_f32_avx512vnni_im2col_4x64")})
TIMES_ONE = re.compile(r"\* 1\b(?![.\d])|(?<![\w.])1 \*(?!=)")
PLUS_ZERO = re.compile(r"[+-] 0\b(?![.\dxX])")
DIVIDED_BY_ONE = re.compile(r"/ 1\b(?![.\d])")
DOUBLE_PARENS = re.compile(r"\(\(\w+\)\)")                     # `f((b))`: a cast's parentheses left without the cast
EMPTY_BODY = re.compile(r"\)\s*\{\s*\}|^\s*\{\n\s*\}", re.M)   # a loop, `if` or bare block with nothing inside
EXAMPLE_MODELS = sorted(EXAMPLES.glob("*.json")) + sorted(EXAMPLES.glob("*.onnx")) + [
    path for path in [Path(__file__).resolve().parent.parent.parent / "shared" / "models" / "kws_ref_model.tflite"]
    if path.is_file()]


def _tokens(text: str) -> list[str]:
    return [re.sub(r"\s+", " ", t) if t.startswith(("/*", "//")) else t for t in TOKEN.findall(text)]


@lru_cache(maxsize=1)
def _graphs() -> tuple:
    """(name, graph) for the layer matrix in both dtypes, Add, and one single-op model per TFLite operator."""
    graphs = [(f"{case.id()}-{dtype}", conv_graph(case, dtype)) for case in MATRIX for dtype in ("int8", "float32")]
    graphs.append(("add-int8", add_graph((1, 4, 5, 6), "int8")))
    folder = Path(tempfile.mkdtemp(prefix="dws_layout_"))
    for op in OPS:
        for dtype in ("int8", "float32"):
            name, inputs, outputs, options = single_op(op, dtype, np.random.default_rng(RNG_SEED))
            path = folder / f"{op.lower()}_{dtype}.tflite"
            path.write_bytes(build_single_op_model(name, inputs, outputs, options))
            graphs.append((path.stem, load_model(path)))
    shutil.rmtree(folder)
    return tuple(graphs)


@lru_cache(maxsize=None)
def _kernels(target: str, backend: str) -> tuple:
    """(name, graph, kernels) per graph of _graphs(), generated once for the tests below."""
    if backend == "tvm":
        pytest.importorskip("tvm")
        from dwscodegen.backends.tvm import generate_kernels
    else:
        from dwscodegen.backends.templates import generate_kernels
    return tuple((name, graph, generate_kernels(graph, load_target(target))) for name, graph in _graphs())


# tvm on the other targets takes a minute each on a loaded 2-core machine: the slow matrix
MATRIX_RUNS = [pytest.param(t, "templates", id=f"{t}-templates") for t in TARGETS] + [
    pytest.param(t, "tvm", id=f"{t}-tvm", marks=[pytest.mark.tvm] + ([] if t in ("x86_64", "cortex-m55")
                                                                      else [pytest.mark.slow])) for t in TARGETS]


def _brace_errors(text: str) -> list[str]:
    """Lines not indented by brace depth, checked independently of the pass: the line after one ending in `{`
    (a block or an initialiser) is indented one level more, and a `}` line sits at its opener's line's indent.
    Also: code at column 0 inside a brace (what a Jinja whitespace trim leaves), tabs, and odd indents."""
    errors, openers, in_comment = [], [], False
    lines = text.split("\n")
    for number, line in enumerate(lines, 1):
        body = line.lstrip(" ")
        indent = len(line) - len(body)
        where = f"line {number}: {line!r}"
        if "\t" in line[:indent + 1]:
            errors.append(f"tab in the indent, {where}")
        if in_comment or not body or body.startswith("#"):
            in_comment = (in_comment or body.startswith("/*")) and "*/" not in body
            continue
        previous = lines[number - 2].rstrip() if number > 1 else ""
        code = _tokens(line)
        if body.startswith("}"):
            if not openers:
                errors.append(f"unmatched, {where}")
            elif indent != (openers[-1] or 0):
                errors.append(f"closing brace at {indent}, its block opened at {openers[-1]}, {where}")
        elif previous.endswith("{") and not previous.lstrip().startswith(("/*", "*", "#")) \
                and indent != len(previous) - len(previous.lstrip(" ")) + 4 and 'extern "C"' not in previous:
            errors.append(f"not one level inside the brace above, {where}")
        if any(o is not None for o in openers) and indent == 0 and not body.startswith(("}", "/*", "*")):
            errors.append(f"column 0 inside a brace, {where}")
        if indent % 4 and not body.startswith("*"):
            # only a continuation aligned after an open parenthesis may sit between levels
            if not re.search(r"\($|,$|[(,] *$", previous) and "(" not in previous:
                errors.append(f"indent {indent} is not a multiple of 4, {where}")
        for token in code:
            if token == "{":
                openers.append(None if 'extern "C"' in line else indent)   # extern "C" does not indent
            elif token == "}" and openers:
                openers.pop()
        in_comment = body.startswith("/*") and "*/" not in body
    return errors


def _separation_errors(text: str) -> list[str]:
    """One blank line before every function definition (or before the comment or #if that introduces it); never
    two."""
    lines = text.split("\n")
    errors = [f"two blank lines before line {i + 1}" for i in range(1, len(lines)) if lines[i] == lines[i - 1] == ""]
    for i, line in enumerate(lines):
        if FUNCTION.match(line) and i + 1 < len(lines) and lines[i + 1] == "{":
            j = i - 1
            while j >= 0 and (lines[j].endswith("*/") or lines[j].startswith("#")):   # its comment, an #ifdef
                if lines[j].endswith("*/"):
                    while j > 0 and not lines[j].startswith("/*"):
                        j -= 1
                j -= 1
            if j >= 0 and lines[j] != "":
                errors.append(f"function at line {i + 1} {line!r} follows {lines[j]!r}")
    return errors


@pytest.mark.parametrize("target, backend", MATRIX_RUNS)
def test_layout_pass_changes_only_whitespace(target, backend):
    """Every kernel's token stream and its non-blank lines (but for their indent) are the same after the pass,
    and the pass is idempotent."""
    for name, _, kernels in _kernels(target, backend):
        for kernel in kernels:
            laid_out = layout_c(kernel.source)
            assert _tokens(laid_out) == _tokens(kernel.source), (name, kernel.fn)
            assert ([line.lstrip() for line in laid_out.split("\n") if line.strip()]
                    == [line.lstrip() for line in kernel.source.split("\n") if line.strip()]), (name, kernel.fn)
            assert layout_c(laid_out) == laid_out, (name, kernel.fn)


@pytest.mark.parametrize("target, backend", MATRIX_RUNS)
def test_every_line_indented_by_brace_depth(target, backend):
    for name, graph, kernels in _kernels(target, backend):
        lib = assemble(graph, kernels, backend, load_target(target))
        for file_name, text in lib.files.items():
            assert not _brace_errors(text)[:5], (name, file_name)
            assert not _separation_errors(text)[:5], (name, file_name)


def _one_trip(loop: re.Match) -> bool:
    begin, end, step = int(loop.group(2)), int(loop.group(4)), int(loop.group(5) or 1)
    return -(-(end - begin + (loop.group(3) == "<=")) // step) <= 1


def _degenerate(name: str, kernels) -> list[tuple]:
    """(graph, kernel variant, what) for each loop of one, `* 1`, `+ 0`, `/ 1`, `((x))` and empty body in the
    kernels' code (comments left out)."""
    found = []
    for kernel in kernels:
        variant = re.search(r"kernel (\w+)", kernel.source).group(1)
        code = "\n".join(line for line in kernel.source.split("\n")
                         if not line.lstrip().startswith(("/*", "* ", "*/", "//")) and line.strip() != "*")
        found += [(name, variant, m.group()) for m in CONSTANT_LOOP.finditer(code)
                  if _one_trip(m) and m.group(1) not in KEPT_UNIT_LOOPS.get(variant, ())]
        found += [(name, variant, line.strip()) for line in code.split("\n")
                  if TIMES_ONE.search(line) or PLUS_ZERO.search(line) or DIVIDED_BY_ONE.search(line)
                  or DOUBLE_PARENS.search(line)]
        found += [(name, variant, "empty body: " + m.group()) for m in EMPTY_BODY.finditer(layout_c(code))]
    return found


@pytest.mark.parametrize("target", TARGETS)
def test_kernels_fold_unit_loops_and_identity_arithmetic(target):
    """The portable, glue, Cortex-M SIMD (DSP, MVE, tiled) and x86 AVX2 / AVX-512 templates write a loop of one
    as its body and leave out `* 1`, `+ 0` and `/ 1` (stride, dilation, padding or a first offset of 1 or 0),
    over the layer matrix in both dtypes and the glue ops."""
    found = [hit for name, _, kernels in _kernels(target, "templates") for hit in _degenerate(name, kernels)]
    assert not found, found[:10]


@pytest.mark.parametrize("target", TARGETS)
def test_example_models_fold_unit_loops_and_identity_arithmetic(target):
    """The same over the example graphs (JSON, ONNX) and the KWS model: their shapes reach kernels and regions the
    matrix does not (16-channel AVX2 depthwise, one-row and one-pixel regions, single-vector channel loops, 1x1
    squeeze layers); and every line of their libraries indented by its brace depth."""
    from dwscodegen.backends.templates import generate_kernels
    chosen = load_target(target)
    found, misplaced = [], []
    for path in EXAMPLE_MODELS:
        graph = load_model(path)
        kernels = generate_kernels(graph, chosen)
        found += _degenerate(path.name, kernels)
        for file_name, text in assemble(graph, kernels, "templates", chosen).files.items():
            misplaced += [(path.name, file_name, error) for error in _brace_errors(text)[:3]]
    assert not found, found[:10]
    assert not misplaced, misplaced[:5]


@pytest.mark.parametrize("target", TARGETS)
def test_laid_out_libraries_compile_under_strict_flags(tmp_path, target):
    """A few of them: a depthwise, a conv, and the glue ops' softmax and pad, in int8 and float32."""
    chosen = target_or_skip(target)
    picked = {MATRIX[2].id() + "-int8", MATRIX[11].id() + "-float32", "softmax_int8", "pad_float32", "mean_int8"}
    for name, graph in _graphs():
        if name not in picked:
            continue
        lib = generate_library(graph, chosen, "templates")
        work = tmp_path / name
        work.mkdir()
        for file_name, text in lib.files.items():
            (work / file_name).write_text(text)
        compile_object(chosen, work / f"{lib.name}.c", work / "lib.o", STRICT)


def test_layout_of_the_constructs_generated_c_uses():
    """What a template or TVM's printer may emit: #pragma, labels, switch/case, #if/#else both opening a brace,
    extern "C", braces inside strings and comments, aligned and unaligned continuations, a multi-line macro."""
    source = """\
#ifdef __cplusplus
extern "C" {
#endif
static const int8_t table[2][3] = {
{1, 2, 3},
      {4, 5, 6},
};
static void f(const int8_t *restrict input,
              int8_t *restrict output, int n)
{
/* a comment with a { brace
 * and a second line */
const char *s = "{ not a brace (";
int total = n +
n;
#pragma GCC unroll 4
      for (int i = 0; i < n; ++i) {
    switch (i) {
    case 0:
    output[i] = (int8_t)call(input[i],
        s[0]);
    break;
        default:
    output[i] = '}';
    }
    }
#if DWS_X
    if (n > 1) {
#else
    if (n > 2) {
#endif
    goto done;
    }
done:
    (void)total;
}
#define TWICE(x) \\
    ((x) + \\
     (x))
#ifdef __cplusplus
}
#endif
"""
    expected = """\
#ifdef __cplusplus
extern "C" {
#endif
static const int8_t table[2][3] = {
    {1, 2, 3},
    {4, 5, 6},
};

static void f(const int8_t *restrict input,
              int8_t *restrict output, int n)
{
    /* a comment with a { brace
     * and a second line */
    const char *s = "{ not a brace (";
    int total = n +
        n;
#pragma GCC unroll 4
    for (int i = 0; i < n; ++i) {
        switch (i) {
        case 0:
            output[i] = (int8_t)call(input[i],
                s[0]);
            break;
        default:
            output[i] = '}';
        }
    }
#if DWS_X
    if (n > 1) {
#else
    if (n > 2) {
#endif
        goto done;
    }
done:
    (void)total;
}

#define TWICE(x) \\
    ((x) + \\
     (x))
#ifdef __cplusplus
}
#endif
"""
    assert layout_c(source) == expected
    assert layout_c(expected) == expected


def test_c_index_leaves_out_loops_of_one_and_factors_of_one():
    assert c_index([("n", 2), ("oy", 5), ("ox", 7)], 16) == "((n * 5 + oy) * 7 + ox) * 16"
    assert c_index([(None, 1), ("oy", 5), ("ox", 7)], 16) == "(oy * 7 + ox) * 16"
    assert c_index([(None, 1), (None, 1), ("ox", 7)], 1) == "ox"
    assert c_index([("iy0 + ky", 1), ("ix0 + kx", 10)], 1) == "(iy0 + ky) * 10 + ix0 + kx"
    assert c_index([(None, 1)], 8) == "0" and c_plus("input", "0") == "input"


def test_c_affine_and_constant_indices_fold():
    """Strides, dilations and paddings of 1 or 0, and loops of one whose index is a constant (c_affine, int
    indices in c_index) leave no `* 1`, `+ 0` or constant-times-constant behind."""
    assert c_affine("oy", 1, 0) == "oy" and c_affine("oy", 2, -1) == "oy * 2 - 1"
    assert c_affine("pixel - oy * 4", 2, 0) == "(pixel - oy * 4) * 2"
    assert c_affine(None, 2, -3) == -3 and c_affine(4, 2, -1) == 7
    assert c_index([(c_affine("oy", 1, -1), 1), (c_affine("ox", 1, -1), 8)], 8) == "((oy - 1) * 8 + ox - 1) * 8"
    assert c_index([(-1, 1), (c_affine("ox", 1, -1), 8)], 8) == "(ox - 9) * 8"
    assert c_index([("oy", 1), (0, 8)], 8) == "oy * 64"
    assert c_index([(c_affine("oy", 1, -1), 1), (0, 5)], 64) == "(oy - 1) * 320"
    assert c_index([(2, 1), (3, 5)], 4) == "52"
    assert c_plus("w", 0) == "w" and c_plus("w", 12) == "w + 12" and c_plus("in", -8) == "in - 8"
