"""The QEMU boards' memory: constants larger than the old 4 MiB (M4) and 8 MiB (M55) code regions run, and a
program larger than a board's memory is a clear error with the sizes, not the linker's raw message."""
from __future__ import annotations

import pytest

from dwscodegen.errors import DwsError
from dwscodegen.runner.qemu import run_qemu
from dwscodegen.toolchain import board_overflow, board_regions, compile_program

from .support.targets import target_or_skip

MIB = 1024 * 1024

# A constant table of `mib` MiB (initialised, so it is stored in full), its rows' first bytes summed at run time.
WEIGHTS = r"""
#include <stdio.h>
#define BYTES ({mib} * 1024 * 1024)
#define PAGE 4096
static const unsigned char weights[BYTES / PAGE][PAGE] = {{ {rows} }};
int main(void)
{{
    unsigned long sum = 0;
    for (int i = 0; i < BYTES / PAGE; ++i) {{
        sum += weights[i][0];
    }}
    printf("sum %lu\n", sum);
    return 0;
}}
"""


def _weights_program(tmp_path, mib: int):
    rows = ", ".join("{" + str(1 + i % 200) + "}" for i in range(mib * MIB // 4096))
    src = tmp_path / "weights.c"
    src.write_text(WEIGHTS.format(mib=mib, rows=rows))
    return src, sum(1 + i % 200 for i in range(mib * MIB // 4096))


@pytest.mark.parametrize("target_name, mib", [("cortex-m4", 11), ("cortex-m55", 12)])
def test_constants_larger_than_the_old_code_region_run(tmp_path, target_name, mib):
    """M4: 11 MiB of constants (its SSRAM1 code region holds 4 MiB; constants live in the PSRAM). M55: 12 MiB
    (the QSPI ROM held 8 MiB; code and constants live in the DDR)."""
    target = target_or_skip(target_name)
    src, expected = _weights_program(tmp_path, mib)
    elf = compile_program(target, [src], [], tmp_path / "weights.elf")
    result = run_qemu(elf, target, [], tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"sum {expected}"


def test_a_program_larger_than_the_board_is_a_clear_error(tmp_path):
    target = target_or_skip("cortex-m4")
    src, _ = _weights_program(tmp_path, 13)
    with pytest.raises(DwsError) as err:
        compile_program(target, [src], [], tmp_path / "weights.elf")
    message = str(err.value)
    assert "does not fit the memory of QEMU board mps2-an386" in message and "mps2-an386.ld" in message
    assert "region CONST (constants) needs 13,6" in message and f"holds {12 * MIB:,} B" in message
    assert "verify on cortex-m55" in message and "overflowed" not in message


def test_linker_overflow_messages_are_read_with_the_board_sizes():
    target = target_or_skip("cortex-m4")
    assert board_regions(target)["CONST"] == 12 * MIB and board_regions(target)["BOOT"] == 4 * MIB
    text = ("ld: prog.elf section `.bss' will not fit in region `RAM'\n"
            "ld: region `RAM' overflowed by 1000 bytes\ncollect2: error: ld returned 1 exit status\n")
    message = board_overflow(target, text)
    assert f"region RAM (variables, the arena) needs {4 * MIB + 1000:,} B but holds {4 * MIB:,} B" in message
    assert board_overflow(target, "ld: undefined reference to `foo'") is None
