"""Checks shared by the SIMD variant tests (tests/test_simd_kernels.py, tests/test_simd_depthwise.py): which
kernel a layer gets, and that it is bit-exact under QEMU."""
from __future__ import annotations

from dwscodegen.backends.templates import generate_kernels, kernel_used, simd
from dwscodegen.verify import verify_graph


def expected_template(target, dsp: str | None, mve: str | None) -> str | None:
    """The expected template's name prefix on `target`: `mve` on MVE targets, `dsp` on DSP ones."""
    return mve if "mve" in target.features else dsp if "dsp" in target.features else None


def chosen_template(graph, target) -> str | None:
    chosen = kernel_used(graph, graph.ops[0], target)
    return None if chosen == simd.PORTABLE else f"{chosen}.c.j2"


def check_variant(graph, target, variant: str | None, seed: int = 0):
    """variant: the expected template's name prefix (None: the portable kernel); then bit-exact under QEMU."""
    chosen = chosen_template(graph, target)
    assert (chosen is None) if variant is None else (chosen or "").startswith(variant), (chosen, variant)
    source = "\n".join(k.source for k in generate_kernels(graph, target))
    marker = "MVE variant" if "mve" in target.features else "DSP variant"
    assert (marker in source) == (variant is not None)
    report = verify_graph(graph, target, runs=2, seed=seed, oracle="numpy")
    assert report.ok, [c.summary() for c in report.comparisons] + [report.first_bad_layer]
    return report
