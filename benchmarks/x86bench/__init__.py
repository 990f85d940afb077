"""The x86 layer benchmark's parts (driver: benchmarks/x86_layers.py)."""
