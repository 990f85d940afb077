"""Cortex-M build + QEMU run infrastructure: startup, semihosting, faults, timeouts, counting.

One small C program (PROBE) is built once per target and run in different modes via argv.
Cheap checks run on all five Cortex-M targets; timeout and instruction counting on M4 and M55.
"""
from __future__ import annotations

import dataclasses
import math
import time

import numpy as np
import pytest

from dwscodegen.errors import DwsError
from dwscodegen.runner import elf_sizes
from dwscodegen.runner.native import run_native
from dwscodegen.runner.qemu import FAULT_EXIT_CODE, run_qemu
from dwscodegen.targets import load_target
from dwscodegen.toolchain import compile_program, toolchain_available

CORTEX_M = ["cortex-m3", "cortex-m4", "cortex-m7", "cortex-m33", "cortex-m55"]
SOME_M = ["cortex-m4", "cortex-m55"]   # Armv7E-M + MPU, and Armv8.1-M + TrustZone + MVE
RUN_TIMEOUT = 30.0

PROBE = r"""
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__ARM_FEATURE_MVE)
#include <arm_mve.h>
#endif

static volatile int sink;
static volatile char bss_block[100000];   /* shows up in elf_sizes()["bss"] */

/* Each frame keeps its buffer alive (its address is passed down), so no tail-call tricks. */
static int recurse(volatile char *prev, int n)
{
    volatile char pad[256];
    pad[0] = (char)(prev[0] + 1);
    if (n == 0)
        return pad[0];
    return recurse(pad, n - 1) + pad[1];
}

__attribute__((noinline, used)) void dws_mark(void) { __asm__ volatile("" ::: "memory"); }

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "hello";
    if (strcmp(mode, "hello") == 0) {
        printf("hello from %s, argc=%d, argv[0]=%s\n", PROBE_TARGET, argc, argv[0]);
        return 0;
    }
    if (strcmp(mode, "exit") == 0)
        return atoi(argv[2]);
    if (strcmp(mode, "copy") == 0) {   /* copy argv[2] to argv[3] reversed, binary */
        FILE *in = fopen(argv[2], "rb"), *out;
        long n, i;
        unsigned char *buf;
        if (in == NULL) {
            printf("cannot open %s\n", argv[2]);
            return 3;
        }
        fseek(in, 0, SEEK_END);
        n = ftell(in);
        fseek(in, 0, SEEK_SET);
        buf = malloc((size_t)n);
        if (buf == NULL || fread(buf, 1, (size_t)n, in) != (size_t)n)
            return 4;
        fclose(in);
        out = fopen(argv[3], "wb");
        for (i = n - 1; i >= 0; i--)
            fputc(buf[i], out);
        fclose(out);
        printf("copied %ld bytes, argc=%d, last=%s\n", n, argc, argv[argc - 1]);
        return 0;
    }
    if (strcmp(mode, "float") == 0) {
        volatile float a = 2.0f, b = 0.5f;
        volatile double c = 2.0;
#if defined(__ARM_FP)
        printf("fpu=1\n");
#else
        printf("fpu=0\n");
#endif
        printf("f32 %.6f\n", (double)(expf(a) * sqrtf(b) + sinf(b)));
        printf("f64 %.12f\n", sqrt(c) * exp(c));
#if defined(__ARM_FEATURE_MVE)
        {
            int32_t x[4] = {1, 2, 3, 4};
            int32x4_t v = vld1q_s32(x);
            printf("mve=1 %d\n", (int)vaddvq_s32(vmulq_s32(v, v)));
        }
#else
        printf("mve=0\n");
#endif
        return 0;
    }
    if (strcmp(mode, "udf") == 0)
        __asm__ volatile("udf #0");
    if (strcmp(mode, "wild") == 0)
        sink = *(volatile int *)0x0A000000u;   /* unmapped on every board */
    if (strcmp(mode, "stack") == 0) {
        char c = 0;
        sink = recurse(&c, 1 << 30);
    }
    if (strcmp(mode, "div0") == 0) {
        volatile int zero = 0;
        sink = (sink + 1000) / zero;   /* not 1 / x, which gcc rewrites without a divide */
    }
    if (strcmp(mode, "spin") == 0)
        for (;;)
            sink++;
    if (strcmp(mode, "count") == 0) {   /* dws_mark(); n empty iterations; dws_mark(); */
        long i, n = atol(argv[2]);
        dws_mark();
        for (i = 0; i < n; i++)
            __asm__ volatile("");
        dws_mark();
        return 0;
    }
    bss_block[argc] = 1;
    printf("survived mode %s\n", mode);
    return 2;
}
"""


def _target(name):
    target = load_target(name)
    ok, why = toolchain_available(target)
    if not ok:
        pytest.skip(why)
    return target


@pytest.fixture(scope="module")
def probe(tmp_path_factory):
    """name -> (target, elf, workdir); each target's probe is compiled once per module."""
    built = {}

    def get(name):
        if name not in built:
            target = _target(name)
            work = tmp_path_factory.mktemp(name)
            src = work / "probe.c"
            src.write_text(PROBE)
            elf = compile_program(target, [src], [], work / "probe.elf",
                                  defines={"PROBE_TARGET": f'"{name}"'})
            built[name] = (target, elf, work)
        return built[name]
    return get


def _run(probe, name, *args, timeout=RUN_TIMEOUT, **kw):
    target, elf, work = probe(name)
    return run_qemu(elf, target, list(args), work, timeout, **kw)


# ---------- cheap checks, every Cortex-M target ----------

@pytest.mark.qemu
@pytest.mark.parametrize("name", CORTEX_M)
def test_hello_printf_reaches_stdout(probe, name):
    r = _run(probe, name, "hello")
    assert r.returncode == 0, r.stderr
    assert f"hello from {name}, argc=2, argv[0]=probe.elf" in r.stdout


@pytest.mark.qemu
@pytest.mark.parametrize("name", CORTEX_M)
def test_argv_and_host_files(probe, name):
    _, _, work = probe(name)
    data = bytes(range(256)) * 5 + b"\r\n\x1a\x00"      # binary: no newline or EOF translation
    (work / f"in-{name}.bin").write_bytes(data)
    r = _run(probe, name, "copy", f"in-{name}.bin", f"out-{name}.bin", "x,y=1")   # relative to cwd
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"copied {len(data)} bytes, argc=5, last=x,y=1" in r.stdout
    assert (work / f"out-{name}.bin").read_bytes() == data[::-1]


@pytest.mark.qemu
@pytest.mark.parametrize("name", CORTEX_M)
def test_exit_code_propagates(probe, name):
    assert _run(probe, name, "exit", "0").returncode == 0
    assert _run(probe, name, "exit", "42").returncode == 42


@pytest.mark.qemu
@pytest.mark.parametrize("name", CORTEX_M)
def test_float_math_and_fpu_flags(probe, name):
    target = probe(name)[0]
    r = _run(probe, name, "float")
    assert r.returncode == 0, r.stderr
    lines = dict(line.split(" ", 1) if " " in line else (line, "") for line in r.stdout.splitlines())
    # the build really targets the FPU/MVE the target claims (and startup.c enabled them,
    # or the first FP/MVE instruction would have faulted)
    assert f"fpu={int('fpu' in target.features)}" in r.stdout
    assert f"mve={int('mve' in target.features)}" in r.stdout
    f32 = np.float32
    expect32 = float(f32(math.exp(2.0)) * f32(math.sqrt(0.5)) + f32(math.sin(0.5)))
    assert float(lines["f32"]) == pytest.approx(expect32, rel=1e-6)
    assert float(lines["f64"]) == pytest.approx(math.sqrt(2.0) * math.exp(2.0), rel=1e-12)
    if "mve" in target.features:
        assert "mve=1 30" in r.stdout


@pytest.mark.qemu
@pytest.mark.parametrize("name", CORTEX_M)
@pytest.mark.parametrize("mode,why", [("udf", "undefined instruction"),
                                      ("wild", "address"),
                                      ("stack", "stack overflow"),
                                      ("div0", "division by zero")])
def test_guest_fault_exits_with_message(probe, name, mode, why):
    start = time.monotonic()
    r = _run(probe, name, mode, timeout=10.0)
    assert time.monotonic() - start < 10.0
    assert r.returncode == FAULT_EXIT_CODE, (r.returncode, r.stdout, r.stderr)
    assert "*** FAULT:" in r.stderr and why in r.stderr, r.stderr
    assert "survived" not in r.stdout


@pytest.mark.qemu
@pytest.mark.parametrize("name", CORTEX_M)
def test_elf_sizes(probe, name):
    target, elf, _ = probe(name)
    sizes = elf_sizes(elf)
    assert sizes["text"] > 1000 and sizes["rodata"] > 0
    assert sizes["bss"] >= 100000
    lo, hi = sizes["stack_range"]
    assert hi - lo == sizes["stack"] > 64 * 1024


# ---------- slower or deeper checks on M4 and M55 ----------

@pytest.mark.qemu
@pytest.mark.parametrize("name", SOME_M)
def test_infinite_loop_times_out_naming_target(probe, name):
    target = probe(name)[0]
    start = time.monotonic()
    with pytest.raises(DwsError, match=rf"on {name} \({target.qemu_machine}\) did not finish within 1.5 s"):
        _run(probe, name, "spin", timeout=1.5)
    assert time.monotonic() - start < 10.0


@pytest.mark.qemu
@pytest.mark.parametrize("name", SOME_M)
def test_instruction_counts_exact_and_linear(probe, name):
    n = 1000

    def between_marks(iterations):
        r = _run(probe, name, "count", str(iterations), count_marker="dws_mark")
        assert r.returncode == 0, r.stderr
        assert len(r.marker_counts) == 2 and r.insn_total > r.marker_counts[1] > r.marker_counts[0]
        return r, r.marker_counts[1] - r.marker_counts[0]

    r1, d1 = between_marks(n)
    r1_again, d1_again = between_marks(n)
    assert (r1.marker_counts, r1.insn_total) == (r1_again.marker_counts, r1_again.insn_total)
    _, d2 = between_marks(2 * n)
    _, d3 = between_marks(3 * n)
    per_iteration, rest = divmod(d2 - d1, n)
    assert rest == 0 and per_iteration >= 1
    assert d3 - d2 == d2 - d1                    # linear in the loop length
    assert d1 - n * per_iteration < 20           # only a few instructions outside the loop


@pytest.mark.qemu
def test_count_marker_must_exist(probe):
    with pytest.raises(DwsError, match="no function 'no_such_marker'"):
        _run(probe, "cortex-m4", "hello", count_marker="no_such_marker")


@pytest.mark.qemu
def test_compiler_error_reports_stderr_and_command(tmp_path):
    target = _target("cortex-m4")
    src = tmp_path / "bad.c"
    src.write_text("int main(void) { int unused; return 0; }\n")
    with pytest.raises(DwsError) as exc:
        compile_program(target, [src], [], tmp_path / "bad.elf")
    msg = str(exc.value)
    assert "cortex-m4" in msg and "unused" in msg and "-Werror" in msg and "-mcpu=cortex-m4" in msg


# ---------- no toolchain needed ----------

def test_missing_compiler_names_target_and_install_hint(tmp_path):
    target = dataclasses.replace(load_target("cortex-m4"), cc="no-such-arm-gcc")
    ok, why = toolchain_available(target)
    assert not ok and "cortex-m4" in why and "no-such-arm-gcc" in why and "apt-get install" in why
    with pytest.raises(DwsError, match="cortex-m4.*no-such-arm-gcc.*apt-get install"):
        compile_program(target, [tmp_path / "x.c"], [], tmp_path / "x.elf")


def test_native_runner(tmp_path):
    target = _target("x86_64")
    src = tmp_path / "p.c"
    src.write_text('#include <stdio.h>\n#include <stdlib.h>\n'
                   'int main(int argc, char **argv) { printf("n=%d\\n", argc);'
                   ' if (argc > 2) for (;;) {} return argc > 1 ? atoi(argv[1]) : 0; }\n')
    exe = compile_program(target, [src], [], tmp_path / "p")
    r = run_native(exe, ["7"], tmp_path, 10.0)
    assert (r.returncode, r.stdout, r.marker_counts) == (7, "n=2\n", [])
    with pytest.raises(DwsError, match="did not finish within 0.5 s"):
        run_native(exe, ["0", "spin"], tmp_path, 0.5)
