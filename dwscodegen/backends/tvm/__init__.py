"""The TVM road: TE computes (compute*.py), s_tir schedules from tunable knobs (knobs.py, schedules*.py),
lowered to plain C99 functions (lower.py); backend.py and glue.py wrap them as kernels.

Nothing here imports TVM at module level: importing the package costs nothing until kernels are generated.
"""
from .backend import SUPPORTED_OPS, generate_kernels, kernel_kind, schedule_kind

__all__ = ["SUPPORTED_OPS", "generate_kernels", "kernel_kind", "schedule_kind"]
