"""The C API a firmware engineer integrates (issue 14): positional macros that survive a re-export, a caller-owned
arena, section macros, an #error on a core without the ISA, the layout stated, and warning-free C under the
strict flags on every target."""
from __future__ import annotations

import re
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from elftools.elf.elffile import ELFFile

from dwscodegen.backends import generate_library
from dwscodegen.errors import DwsError
from dwscodegen.importers import load_model
from dwscodegen.runner.native import run_native
from dwscodegen.targets import available_targets, load_target
from dwscodegen.toolchain import WARNING_FLAGS, compile_object, compile_program

from .support.targets import target_or_skip
from .support.tflite_builder import build_single_op_model, run_reference
from .support.tflite_cases import single_op

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
STRICT = {"-std=c99", "-pedantic", "-Wall", "-Wextra", "-Wconversion", "-Wsign-conversion", "-Werror"}

# A user's main.c: only the positional macros and the two run functions, nothing named after a tensor.
USER_MAIN = r"""
#include <stdio.h>
#include <string.h>

#include "fc.h"

static int8_t input[FC_INPUT0_SIZE];
static int8_t out_static[FC_OUTPUT0_SIZE];
static int8_t out_caller[FC_OUTPUT0_SIZE];
static int32_t arena[(FC_ARENA_BYTES + 3) / 4 + 1];   /* + 1: never a zero-length array */

int main(void)
{
    for (int i = 0; i < FC_INPUT0_SIZE; ++i) {
        input[i] = (int8_t)(i * 37 % 256 - 128);
    }
    if (FC_INPUTS != 1 || FC_OUTPUTS != 1) {
        return 3;
    }
    if (fc_run(input, out_static) != 0 || fc_run_with_arena(input, out_caller, arena) != 0) {
        return 1;
    }
    if (memcmp(out_static, out_caller, sizeof out_static) != 0) {
        return 2;
    }
    for (int i = 0; i < FC_OUTPUT0_SIZE; ++i) {
        const float real = FC_OUTPUT0_SCALE * (float)(out_static[i] - FC_OUTPUT0_ZERO_POINT);
        printf("%d %.9g\n", out_static[i], (double)real);
    }
    return 0;
}
"""


def _fc_tflite(path: Path, names: tuple[str, str]) -> Path:
    """The FULLY_CONNECTED case, its input and output named the way exporters do (renamed on re-export)."""
    op, inputs, outputs, options = single_op("FULLY_CONNECTED", "int8", np.random.default_rng(5))
    inputs = [replace(inputs[0], name=names[0]), *inputs[1:]]
    outputs = [replace(outputs[0], name=names[1])]
    path.write_bytes(build_single_op_model(op, inputs, outputs, options))
    return path


def _build_user_program(tmp_path: Path, model: Path, target_name: str) -> tuple[Path, object]:
    target = load_target(target_name)
    lib = generate_library(load_model(model), target)
    work = tmp_path / f"{model.stem}-{target_name}"
    work.mkdir()
    for name, text in lib.files.items():
        (work / name).write_text(text)
    (work / "main.c").write_text(USER_MAIN)
    exe = compile_program(target, [work / "fc.c", work / "main.c"], [work], work / "user")  # the strict flags
    return exe, lib


def _expected(model: Path) -> tuple[np.ndarray, float, int]:
    graph = load_model(model)
    x = ((np.arange(graph.tensor(graph.inputs[0]).size) * 37) % 256 - 128).astype(np.int8)
    (y,) = run_reference(model.read_bytes(), [x.reshape(graph.tensor(graph.inputs[0]).shape)])   # TFLite
    q = graph.tensor(graph.outputs[0]).quant
    return y.reshape(-1), float(np.float32(q.scale[0])), int(q.zero_point[0])


def _check_printed(stdout: str, model: Path) -> None:
    expected, scale, zero_point = _expected(model)
    rows = [line.split() for line in stdout.split("\n") if line.strip()]
    assert [int(q) for q, _ in rows] == expected.tolist()
    reals = np.array([float(r) for _, r in rows], np.float32)
    assert np.array_equal(reals, np.float32(scale) * (expected.astype(np.float32) - np.float32(zero_point)))


def test_user_main_with_positional_macros_runs_on_x86_across_a_reexport(tmp_path):
    pytest.importorskip("ai_edge_litert")
    for export, names in enumerate([("serving_default_keras_tensor_455:0", "StatefulPartitionedCall_1:0"),
                                    ("serving_default_keras_tensor_812:0", "StatefulPartitionedCall_7:0")]):
        folder = tmp_path / f"export{export}"
        folder.mkdir()
        model = _fc_tflite(folder / "fc.tflite", names)
        exe, lib = _build_user_program(folder, model, "x86_64")
        header = lib.files["fc.h"]
        assert f"'{names[0]}'" in header and "#define FC_INPUT0_SIZE 40" in header
        result = run_native(exe, [], exe.parent, timeout=60)
        assert result.returncode == 0, result.stderr
        _check_printed(result.stdout, model)


@pytest.mark.qemu
def test_user_main_links_and_runs_on_cortex_m4(tmp_path):
    pytest.importorskip("ai_edge_litert")
    target = target_or_skip("cortex-m4")
    from dwscodegen.runner.qemu import run_qemu
    model = _fc_tflite(tmp_path / "fc.tflite", ("serving_default_keras_tensor_455:0", "Identity:0"))
    exe, _ = _build_user_program(tmp_path, model, "cortex-m4")
    result = run_qemu(exe, target, [], exe.parent, timeout=60)
    assert result.returncode == 0, result.stderr
    _check_printed(result.stdout, model)


def test_header_states_layout_target_flags_and_alignment():
    lib = generate_library(load_model(EXAMPLES / "mbv1_ds_block_s8.json"), load_target("cortex-m4"))
    header = lib.files["mbv1_ds_block_s8.h"]
    assert "Layout: tensors are row-major NHWC" in header
    assert "Target: cortex-m4" in header and "-mcpu=cortex-m4" in header and "Needs the Arm DSP extension" in header
    assert "int8_t buffers may sit at\n * any address" in header
    assert "#define MBV1_DS_BLOCK_S8_ARENA_ALIGNMENT 4" in header
    assert "#define MBV1_DS_BLOCK_S8_INPUT0_ZERO_POINT (-2)" in header       # parenthesized: safe in `x-ZP`
    assert "#define MBV1_DS_BLOCK_S8_INPUT_SIZE MBV1_DS_BLOCK_S8_INPUT0_SIZE" in header   # the name-derived alias
    assert "DWS_ARENA_SECTION" in header and "DWS_WEIGHTS_SECTION" in header and "_run_with_arena" in header
    onnx = generate_library(load_model(EXAMPLES / "mbv2_small.onnx"), load_target("x86_64")).files["mbv2_small.h"]
    assert "The ONNX model is NCHW" in onnx
    assert re.search(r"Input 0 'input': float32 \[1, (\d+), (\d+), 3\] \(ONNX \[1, 3, \1, \2\]\)", onnx)
    assert "float buffers need float's alignment (4 bytes)" in onnx and "Portable C99" in onnx


def test_error_on_a_core_without_the_isa(tmp_path):
    m3 = load_target("cortex-m3")
    if shutil.which(m3.cc) is None:
        pytest.skip(f"needs {m3.cc}")
    lib = generate_library(load_model(EXAMPLES / "mbv1_ds_block_s8.json"), load_target("cortex-m4"))
    for name, text in lib.files.items():
        (tmp_path / name).write_text(text)
    with pytest.raises(DwsError) as err:
        compile_object(m3, tmp_path / "mbv1_ds_block_s8.c", tmp_path / "x.o")
    first_error = next(line for line in str(err.value).splitlines() if "error:" in line)
    assert "#error" in first_error and "generated for cortex-m4 and needs the Arm DSP extension" in first_error


def _sections(obj: Path) -> dict[str, int]:
    with open(obj, "rb") as f:
        return {s.name: s["sh_size"] for s in ELFFile(f).iter_sections()}


def _symbols(obj: Path) -> set[str]:
    with open(obj, "rb") as f:
        return {s.name for s in ELFFile(f).get_section_by_name(".symtab").iter_symbols()}


def test_section_macros_and_a_library_without_static_arena(tmp_path):
    lib = generate_library(load_model(EXAMPLES / "mbv1_ds_block_s8.json"), load_target("x86_64"))
    for name, text in lib.files.items():
        (tmp_path / name).write_text(text)
    source, x86 = tmp_path / "mbv1_ds_block_s8.c", load_target("x86_64")
    placed = compile_object(x86, source, tmp_path / "placed.o", (
        "-DDWS_ARENA_SECTION=__attribute__((section(\".dws_arena\")))",
        "-DDWS_WEIGHTS_SECTION=__attribute__((section(\".dws_weights\")))"))
    sections = _sections(placed)
    assert sections[".dws_arena"] == lib.arena_bytes
    assert lib.const_bytes <= sections[".dws_weights"] < lib.const_bytes + 64    # every weight array, some padding
    bare = compile_object(x86, source, tmp_path / "bare.o", ("-DMBV1_DS_BLOCK_S8_NO_STATIC_ARENA",))
    assert sum(size for name, size in _sections(bare).items() if name.startswith(".bss")) == 0
    assert "mbv1_ds_block_s8_run" not in _symbols(bare) and "mbv1_ds_block_s8_run_with_arena" in _symbols(bare)


def test_toolchain_compiles_with_the_strict_flags():
    assert STRICT <= set(WARNING_FLAGS)


MODELS = ["mbv1_ds_block_s8.json", "mbv2_inverted_residual_f32.json", "dscnn_block_s8.json", "mbv2_small_qdq.onnx"]


def _strict_matrix(backends):
    for target in available_targets():
        for backend in backends:
            yield pytest.param(target, backend, id=f"{target}-{backend}")


@pytest.mark.parametrize("target, backend", list(_strict_matrix(["templates"])) + [
    pytest.param("x86_64", "tvm", id="x86_64-tvm"), pytest.param("cortex-m4", "tvm", id="cortex-m4-tvm")])
def test_warning_free_under_strict_flags(tmp_path, target, backend):
    _compile_strict(tmp_path, target, backend)


@pytest.mark.slow
@pytest.mark.parametrize("target, backend", list(_strict_matrix(["tvm"])))
def test_warning_free_under_strict_flags_tvm_every_target(tmp_path, target, backend):
    _compile_strict(tmp_path, target, backend)


def _compile_strict(tmp_path: Path, target_name: str, backend: str) -> None:
    if backend == "tvm":
        pytest.importorskip("tvm")
    target = load_target(target_name)
    if shutil.which(target.cc) is None:
        pytest.skip(f"needs {target.cc}")
    for model in MODELS:
        lib = generate_library(load_model(EXAMPLES / model), target, backend)
        work = tmp_path / Path(model).stem
        work.mkdir()
        for name, text in lib.files.items():
            (work / name).write_text(text)
        compile_object(target, work / f"{lib.name}.c", work / "lib.o")     # -Werror: any warning fails
