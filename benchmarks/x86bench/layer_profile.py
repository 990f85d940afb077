"""Where a whole model's time goes on x86: the library benchmarks/x86_models.py timed, rebuilt with its layer
hook as a clock (one clock_gettime after each layer), run many times; the median time of each layer, summed
per op type and kernel (backends/templates' variant, or "portable")."""
from __future__ import annotations

import statistics
import subprocess
from collections import defaultdict
from pathlib import Path

from dwscodegen.backends.render import C_TYPES
from dwscodegen.backends.templates import kernel_used
from dwscodegen.ir import Graph

from .common import NotAvailable, one_line

MAIN = """#define _POSIX_C_SOURCE 199309L
#include <stddef.h>
#include <stdio.h>
#include <time.h>
#include "{name}.h"

{buffers}
static long long last, spent[{runs}][{layers}];
static int run;

static long long now_ns(void)
{{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}}

void dws_profile_hook(int layer, const void *output, size_t bytes);
void dws_profile_hook(int layer, const void *output, size_t bytes)
{{
    (void)output;
    (void)bytes;
    const long long t = now_ns();
    if (layer >= 0) {{
        spent[run][layer] = t - last;
    }}
    last = now_ns();
}}

int main(void)
{{
    for (run = 0; run < {runs}; ++run) {{
        {name}_run({args});
    }}
    for (run = 0; run < {runs}; ++run) {{
        for (int layer = 0; layer < {layers}; ++layer) {{
            printf("%d %d %lld\\n", run, layer, spent[run][layer]);
        }}
    }}
    return 0;
}}
"""


def layer_times(graph: Graph, target, libdir: Path, runs: int = 200) -> dict[int, float]:
    """op index -> median ns over `runs` runs (after as many warm-up runs) of the library in libdir."""
    tensors = [graph.tensor(n) for n in (*graph.inputs, *graph.outputs)]
    buffers = "\n".join(f"static {C_TYPES[t.dtype]} buffer{i}[{t.size}];" for i, t in enumerate(tensors))
    source = libdir / "profile_main.c"
    source.write_text(MAIN.format(name=graph.name, buffers=buffers, runs=2 * runs, layers=len(graph.ops),
                                  args=", ".join(f"buffer{i}" for i in range(len(tensors)))))
    exe = libdir / "profile"
    cmd = [target.cc, *target.cflags, "-DDWS_LAYER_HOOK=dws_profile_hook", f"-I{libdir}",
           str(libdir / f"{graph.name}.c"), str(source), "-o", str(exe), "-lm"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise NotAvailable(f"profiling build failed: {one_line(proc.stderr)}")
    out = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout
    samples: dict[int, list[int]] = defaultdict(list)
    for line in out.splitlines():
        r, layer, ns = map(int, line.split())
        if r >= runs:                       # the first half warms up
            samples[layer].append(ns)
    return {layer: statistics.median(v) for layer, v in samples.items()}


def shares(graph: Graph, target, times: dict[int, float]) -> list[dict]:
    """Time per (op type, kernel), largest first: [{op, kernel, ns, share, layers}]."""
    total = sum(times.values()) or 1.0
    groups: dict[tuple[str, str], list] = defaultdict(lambda: [0.0, 0])
    for op in graph.ops:
        g = groups[op.type, kernel_used(graph, op, target)]
        g[0] += times.get(op.index, 0.0)
        g[1] += 1
    return [dict(op=op, kernel=kernel, ns=ns, share=ns / total, layers=n)
            for (op, kernel), (ns, n) in sorted(groups.items(), key=lambda kv: -kv[1][0])]


def summary(rows: list[dict], top: int = 3) -> str:
    return ", ".join(f"{r['share']:.0%} {r['op']} ({r['kernel']}, {r['layers']} layers)" for r in rows[:top])
