"""Compile one C kernel with a stdin/stdout main around it and run it on NumPy arrays (kernel-level tests)."""
from __future__ import annotations

import subprocess

import numpy as np

CFLAGS = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic"]
NP_C = {np.dtype("float32"): "float", np.dtype("int8"): "int8_t", np.dtype("int32"): "int32_t"}


def compile_c(cc, src, obj, extra=()):
    r = subprocess.run([cc, *CFLAGS, *extra, "-c", str(src), "-o", str(obj)], capture_output=True, text=True)
    assert r.returncode == 0, f"{cc} failed:\n{r.stderr}\n--- source ---\n{src.read_text()}"



def run_kernel(tmp_path, c_src, name, args, out_index):
    """Compile `c_src` and a main that fread()s every argument from stdin (outputs pre-filled with
    garbage), calls `name`, and fwrite()s argument `out_index`."""
    proto = c_src[c_src.index(f"void {name}("):].split("{", 1)[0].strip() + ";"
    decls = "".join(f"static {NP_C[a.dtype]} a{i}[{a.size}];\n" for i, a in enumerate(args))
    reads = "".join(f"  if (fread(a{i}, sizeof a{i}, 1, stdin) != 1) return 1;\n" for i in range(len(args)))
    call = f"  {name}({', '.join(f'a{i}' for i in range(len(args)))});\n"
    main = (f"#include <stdio.h>\n#include <stdint.h>\n{proto}\n{decls}int main(void) {{\n{reads}{call}"
            f"  return fwrite(a{out_index}, sizeof a{out_index}, 1, stdout) == 1 ? 0 : 2;\n}}\n")
    (tmp_path / "kernel.c").write_text(c_src)
    (tmp_path / "main.c").write_text(main)
    compile_c("gcc", tmp_path / "kernel.c", tmp_path / "kernel.o", ["-O2"])
    compile_c("gcc", tmp_path / "main.c", tmp_path / "main.o", ["-O2"])
    subprocess.run(["gcc", str(tmp_path / "main.o"), str(tmp_path / "kernel.o"), "-o", str(tmp_path / "prog")],
                   check=True)
    r = subprocess.run([str(tmp_path / "prog")], input=b"".join(a.tobytes() for a in args), capture_output=True)
    assert r.returncode == 0
    out = args[out_index]
    return np.frombuffer(r.stdout, dtype=out.dtype).reshape(out.shape)


def garbage_like(shape, dtype):
    """Output buffer pre-filled with 0x5a bytes, so an element the kernel skips cannot pass."""
    return np.frombuffer(b"\x5a" * (int(np.prod(shape)) * np.dtype(dtype).itemsize), dtype).reshape(shape).copy()
