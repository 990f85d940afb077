"""Fingerprint the generated C of every example and the KWS models, both backends, several targets.

Restructuring commits must change no generated C: run this before and after and diff the two listings.
    python scripts/c_snapshot.py > before.txt   ...   python scripts/c_snapshot.py | diff before.txt -
"""
from __future__ import annotations

import hashlib
import sys
from pathlib import Path

from dwscodegen.backends import generate_library
from dwscodegen.importers import load_model
from dwscodegen.targets import load_target

ROOT = Path(__file__).resolve().parent.parent
MODELS = sorted((ROOT / "examples").glob("*.json")) + sorted((ROOT / "examples").glob("*.onnx")) + [
    ROOT.parent / "shared" / "models" / n for n in ("kws_ref_model.tflite", "kws_ref_model_float32.tflite")]
TARGETS = ("x86_64", "cortex-m3", "cortex-m4", "cortex-m55")
BACKENDS = ("templates", "tvm")


def main() -> int:
    for model in MODELS:
        if not model.exists():
            print(f"# missing {model.name}", file=sys.stderr)
            continue
        graph = load_model(model)
        for target in TARGETS:
            for backend in BACKENDS:
                lib = generate_library(graph, load_target(target), backend)
                for name, text in sorted(lib.files.items()):
                    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
                    print(f"{model.name} {target} {backend} {name} {digest}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
