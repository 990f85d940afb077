"""Compare generated-code results with the reference: int8 bit-exact, float32 within tolerance."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FLOAT_RTOL = 1e-5   # max abs error allowed is FLOAT_RTOL * max(1, max |reference|)


@dataclass(frozen=True)
class Comparison:
    tensor: str
    ok: bool
    mismatches: int
    total: int
    max_abs_err: float
    tolerance: float
    details: tuple[str, ...]   # a few worst elements, "[0, 3, 4, 7]: got 17, expected 18"
    integer: bool = False

    def summary(self) -> str:
        kind = ("bit-exact" if self.max_abs_err == 0 else f"within {self.tolerance:g} LSB, max abs err {self.max_abs_err:g}"
                if self.integer else f"max abs err {self.max_abs_err:.3g} (tol {self.tolerance:.3g})")
        if self.ok:
            return f"'{self.tensor}': OK, {self.total} values, {kind}"
        return (f"'{self.tensor}': MISMATCH, {self.mismatches} of {self.total} values differ, "
                f"max abs err {self.max_abs_err:.6g}" + "".join(f"\n      {d}" for d in self.details))


def _position(index: tuple, runs_axis: bool) -> str:
    index = [int(i) for i in index]
    return f"run {index[0]} at {index[1:]}" if runs_axis else f"at {index}"


def compare(tensor: str, got: np.ndarray, expected: np.ndarray, worst: int = 5, runs_axis: bool = False,
            int_tolerance: int = 0, float_tolerance: float = 0.0) -> Comparison:
    """Compare one tensor; with runs_axis the first axis indexes the seeded input sets. Integers must be equal,
    or within `int_tolerance` where the reference itself rounds float arithmetic (onnxruntime's QDQ); floats
    within FLOAT_RTOL plus `float_tolerance` (the dequantized value of such an int8 tolerance)."""
    got = got.reshape(expected.shape)
    if expected.dtype.kind == "f":
        tolerance = FLOAT_RTOL * max(1.0, float(np.max(np.abs(expected), initial=0.0))) + float_tolerance
        diff = np.abs(got.astype(np.float64) - expected.astype(np.float64))
        diff = np.where(np.isnan(diff), np.inf, diff)
        bad = diff > tolerance
    else:
        tolerance = float(int_tolerance)
        diff = np.abs(got.astype(np.int64) - expected.astype(np.int64))
        bad = diff > int_tolerance
    order = np.argsort(-diff, axis=None, kind="stable")[:worst]
    details = tuple(f"{_position(np.unravel_index(i, expected.shape), runs_axis)}: got {got.flat[i]}, "
                    f"expected {expected.flat[i]}"
                    for i in order if bad.flat[i])
    return Comparison(tensor=tensor, ok=not bad.any(), mismatches=int(bad.sum()), total=expected.size,
                      max_abs_err=float(diff.max(initial=0.0)), tolerance=tolerance, details=details,
                      integer=expected.dtype.kind != "f")
