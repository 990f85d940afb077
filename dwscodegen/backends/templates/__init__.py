"""The templates road: Jinja C kernels (templates/kernels/) specialised per layer (contexts.py), with
per-target SIMD variants (simd/)."""
from .generate import generate_kernels, kernel_choices, kernel_constants, kernel_options, kernel_requant_mode, kernel_used

__all__ = ["generate_kernels", "kernel_choices", "kernel_constants", "kernel_options", "kernel_requant_mode",
           "kernel_used"]
