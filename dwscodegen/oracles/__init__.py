"""Oracles nobody here wrote: the model's own framework run on the original file.

verify compares generated code with one of them when the model came from that framework's file,
and with the NumPy reference otherwise. Each framework runs in a child process (isolation.py,
worker.py), so that its crashes are errors; what an oracle computed otherwise than its label says
comes back as notes (isolation.OracleValues), which verify reports.
"""
