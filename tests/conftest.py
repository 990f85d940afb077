import sys
from pathlib import Path

# Test helpers (layers.py, oracles/) are imported as top-level modules.
sys.path.insert(0, str(Path(__file__).resolve().parent))
