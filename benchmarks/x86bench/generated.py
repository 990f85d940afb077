"""dwscodegen's generated C for one layer (templates or tvm backend), built and timed by the harness."""
from __future__ import annotations

import re
from pathlib import Path

from dwscodegen.errors import DwsError
from dwscodegen.ir import Graph
from dwscodegen.runner.native import run_native
from dwscodegen.toolchain import compile_program
from dwscodegen.verify import HOOK, verify_graph

from .common import NotAvailable, one_line, runs_for


class GeneratedC:
    """verify_graph builds and checks the one-layer library (and gives a first timing); the timed
    harness is then rebuilt from the same sources with DWS_TIMING=N and re-run once per round."""

    def __init__(self, lg: Graph, target, backend: str, args, workdir: Path):
        self.work = workdir / backend
        pilot = args.repeats or 20
        try:
            report = verify_graph(lg, target, backend, runs=1, seed=args.seed, oracle="numpy",
                                  build_dir=self.work, timing_repeats=pilot)
        except DwsError as exc:
            raise NotAvailable(one_line(str(exc))) from None
        if not report.ok:
            raise NotAvailable("wrong result: " + one_line(report.comparisons[0].summary()))
        if report.ns_per_run is None:
            raise NotAvailable("the harness printed no timing")
        self.runs = runs_for(report.ns_per_run, args.batch_ms, args.repeats)
        self.target = target
        sources = [self.work / f"{lg.name}.c", self.work / "harness_main.c"]
        self.exe = compile_program(target, sources, [self.work], self.work / "harness_timed",
                                   defines={"DWS_LAYER_HOOK": HOOK, "DWS_TIMING": str(self.runs)})
        self.info = dict(runs_per_batch=self.runs, check="ok (verify_graph against the NumPy reference)")

    def sample(self) -> float:
        result = run_native(self.exe, ["1"], self.work, timeout=600)
        found = re.search(r"^dws_timing_ns (\d+)$", result.stdout, re.M)
        if result.returncode != 0 or not found:
            raise NotAvailable(f"timed harness failed (exit {result.returncode}): "
                               + one_line(result.stderr + result.stdout))
        return float(found.group(1))
