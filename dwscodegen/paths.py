"""Where the project's data directories live (templates/, targets/, tools/)."""
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES_DIR = ROOT / "templates"
TARGETS_DIR = ROOT / "targets"
TOOLS_DIR = ROOT / "tools"
