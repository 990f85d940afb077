"""Running the CLI in-process and checking that a refused command left everything as it was."""
from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from click.testing import CliRunner, Result

from dwscodegen.cli import main

EXAMPLES = Path(__file__).resolve().parent.parent.parent / "examples"
BASE = "mbv1_ds_block_s8"


def invoke(*args) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args])


def copy_example(folder: Path, base: str = BASE) -> tuple[Path, dict]:
    """The example's JSON and npz copied into folder; returns the JSON path and its document."""
    for suffix in (".json", ".npz"):
        shutil.copy(EXAMPLES / f"{base}{suffix}", folder / f"{base}{suffix}")
    return folder / f"{base}.json", json.loads((EXAMPLES / f"{base}.json").read_text())


def tree(root: Path) -> dict[str, bytes | None]:
    """Every path under root with its bytes (None for a folder): what 'nothing changed' compares."""
    return {str(p.relative_to(root)): None if p.is_dir() else p.read_bytes()
            for p in sorted(Path(root).rglob("*")) if not p.is_symlink()}


def assert_refused(result: Result, *fragments: str) -> None:
    """A user error: exit 1, one 'Error:' line naming what is wrong, no traceback."""
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output and "Error: " in result.output, result.output
    for fragment in fragments:
        assert fragment in result.output, (fragment, result.output)


class Untouched:
    """`with Untouched(folder, temp):` asserts on exit that the folders hold exactly what they held
    before (an earlier output intact, nothing left behind); temp becomes tempfile's directory."""

    def __init__(self, *folders: Path, temp: Path | None = None):
        self.folders = folders
        self.temp = temp

    def __enter__(self):
        if self.temp is not None:
            self.temp.mkdir(exist_ok=True)
            self.saved, tempfile.tempdir = tempfile.tempdir, str(self.temp)
        self.before = [tree(f) for f in self.folders]
        return self

    def __exit__(self, *exc):
        if self.temp is not None:
            tempfile.tempdir = self.saved
        if exc[0] is None:
            assert [tree(f) for f in self.folders] == self.before, "a refused command changed files"
            if self.temp is not None:
                assert list(self.temp.iterdir()) == [], f"left in the temp folder: {list(self.temp.iterdir())}"
        return False
