"""Oracles nobody here wrote: the model's own framework run on the original file.

verify compares generated code with one of them when the model came from that framework's file,
and with the NumPy reference otherwise.
"""
