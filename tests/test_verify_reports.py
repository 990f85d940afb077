"""A wrong kernel is caught, and the report names the elements and the first layer that differ."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import dwscodegen.verify as verify_mod
from dwscodegen.importers import load_model
from dwscodegen.targets import load_target

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "mbv2_inverted_residual_s8.json"


def test_off_by_one_rounding_in_one_layer_is_localized(monkeypatch):
    real = verify_mod.generate_library

    def with_bug_in_dw(graph, target, backend, *rest):
        lib = real(graph, target, backend, *rest)
        c_name = f"{graph.name}.c"
        text = lib.files[c_name]
        # Break layer 1 only: its requantization gets an extra +1 before clamping.
        needle = "out[c] = dws_clamp_s8(dws_multiply_by_quantized_multiplier(acc, layer1_dw_multiplier[c], "
        assert text.count(needle) == 1
        text = text.replace(needle, "out[c] = dws_clamp_s8(1 + dws_multiply_by_quantized_multiplier(acc, "
                                    "layer1_dw_multiplier[c], ")
        return replace(lib, files={**lib.files, c_name: text})

    monkeypatch.setattr(verify_mod, "generate_library", with_bug_in_dw)
    # unfused: row-fused as one chain (its default plan), ops 0 and 1 have no trace of their own
    monkeypatch.setenv("DWSCODEGEN_NO_ROW_FUSION", "1")
    report = verify_mod.verify_graph(load_model(EXAMPLE), load_target("x86_64"), runs=2, seed=3)
    assert not report.ok
    (c,) = report.comparisons
    assert c.mismatches > 0 and c.details and "expected" in c.details[0]
    assert report.first_bad_layer.startswith("op 1 'dw' (DepthwiseConv2D) is the first layer that differs")


def test_a_difference_inside_a_row_fused_chain_names_the_chain(monkeypatch):
    real = verify_mod.generate_library

    def with_bug_in_fused_dw(graph, target, backend, *rest):
        lib = real(graph, target, backend, *rest)
        c_name = f"{graph.name}.c"
        needle = "layer1_dw_window_multiplier[c], "   # the dw's one-row instance inside the chain
        text = lib.files[c_name].replace(f"dws_clamp_s8(dws_multiply_by_quantized_multiplier(acc, {needle}",
                                         f"dws_clamp_s8(1 + dws_multiply_by_quantized_multiplier(acc, {needle}")
        assert text != lib.files[c_name]
        return replace(lib, files={**lib.files, c_name: text})

    monkeypatch.setattr(verify_mod, "generate_library", with_bug_in_fused_dw)
    report = verify_mod.verify_graph(load_model(EXAMPLE), load_target("x86_64"), runs=2, seed=3)
    # the whole block, its residual Add too, is one chain (the Add reads the block's input row by row)
    assert not report.ok and report.row_fused == {0: 3, 1: 3, 2: 3}
    assert report.first_bad_layer.startswith("op 3 'residual' (Add) is the first layer that differs "
                                             "(ops 0, 1, 2 run row-fused in its call, untraced)")


def test_correct_library_passes():
    report = verify_mod.verify_graph(load_model(EXAMPLE), load_target("x86_64"), runs=2, seed=3)
    assert report.ok and report.first_bad_layer is None
