"""Where the project's data directories live (templates/, targets/, tools/).

In a source checkout (and an editable install) they sit beside the package; a built wheel ships them inside
it, as dwscodegen/data/ (setup.py's build step copies them there), so an installed dwscodegen finds them
wherever it runs from.
"""
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
SHIPPED = PACKAGE / "data"          # an installed wheel
CHECKOUT = PACKAGE.parent           # a source checkout
DATA_DIRS = ("templates", "targets", "tools")


def _data_dir(name: str) -> Path:
    shipped = SHIPPED / name
    return shipped if shipped.is_dir() else CHECKOUT / name


TEMPLATES_DIR = _data_dir("templates")
TARGETS_DIR = _data_dir("targets")
TOOLS_DIR = _data_dir("tools")
