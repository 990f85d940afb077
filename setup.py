"""Everything is declared in pyproject.toml; this only adds the data the package needs at run time.

templates/ (C templates, bare-metal startup and linker scripts), targets/ (target files) and tools/ (the
QEMU plugin's source) live beside the package in the repository; a wheel carries them inside the package as
dwscodegen/data/, where dwscodegen/paths.py looks first.
"""
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

DATA_DIRS = ("templates", "targets", "tools")
BUILT = {".so", ".o", ".pyc"}     # build products (the QEMU plugin is built on first use), not sources


class BuildPyWithData(build_py):
    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return                   # an editable install reads them from the checkout
        here = Path(__file__).resolve().parent
        for name in DATA_DIRS:
            for src in sorted((here / name).rglob("*")):
                if src.is_file() and src.suffix not in BUILT and "__pycache__" not in src.parts:
                    dest = Path(self.build_lib) / "dwscodegen" / "data" / src.relative_to(here)
                    self.mkpath(str(dest.parent))
                    self.copy_file(str(src), str(dest))


setup(cmdclass={"build_py": BuildPyWithData})
