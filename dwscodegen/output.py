"""Write a generated library directory atomically.

Files go to a temporary sibling directory first; only a complete one replaces OUTDIR, by rename.
An existing OUTDIR is replaced only if it holds nothing but what an earlier run of this tool wrote
(MANIFEST and the files it lists), so neither a typo such as `-o ~` nor a file a user added to the
output directory is ever deleted. The new directory gets the mode the umask gives a mkdir, not
mkdtemp's private 0700.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from .errors import DwsError

MANIFEST = "dwscodegen.json"


def _written_by_us(outdir: Path) -> None:
    """Raise unless replacing outdir loses nothing dwscodegen did not write."""
    present = {p.name for p in outdir.iterdir()}
    if not present:
        return
    if MANIFEST not in present:
        raise DwsError(f"output directory '{outdir}' exists and was not written by dwscodegen "
                       f"(no {MANIFEST}); choose a new directory or remove it first")
    try:
        listed = json.loads((outdir / MANIFEST).read_text())["files"]
        if not isinstance(listed, list) or not all(isinstance(n, str) for n in listed):
            raise TypeError
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError):
        raise DwsError(f"output directory '{outdir}': {MANIFEST} is unreadable or lists no files, so what "
                       "dwscodegen wrote there is unknown; choose a new directory or remove it first") from None
    foreign = sorted(present - set(listed) - {MANIFEST})
    if foreign:
        shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        raise DwsError(f"output directory '{outdir}' holds files dwscodegen did not write ({shown}); replacing "
                       "the directory would delete them. Move them out or choose a new directory")


def _umask() -> int:
    mask = os.umask(0o022)   # the only portable way to read it is to set it
    os.umask(mask)
    return mask


def _remove_empty(dirs: list[Path]) -> None:
    for d in dirs:     # deepest first
        try:
            d.rmdir()
        except OSError:
            return


def check_output_dir(outdir: Path) -> None:
    """The checks write_output_dir makes before writing, for commands to make before long work."""
    outdir = Path(outdir)
    if outdir.exists() or outdir.is_symlink():
        if not outdir.is_dir():
            raise DwsError(f"output '{outdir}' exists and is not a directory")
        _written_by_us(outdir)


def write_output_dir(outdir: Path, files: dict[str, str], manifest: dict) -> None:
    outdir = Path(outdir)
    check_output_dir(outdir)
    parent = outdir.resolve().parent
    created = [d for d in (parent, *parent.parents) if not d.exists()]   # removed again on failure
    try:
        parent.mkdir(parents=True, exist_ok=True)   # only reached once generation has succeeded
        staging = Path(tempfile.mkdtemp(prefix=f".{outdir.name[:40]}.tmp-", dir=parent))
    except OSError as exc:
        _remove_empty(created)
        raise DwsError(f"cannot write '{outdir}': cannot create a directory in '{parent}': "
                       f"{exc.strerror or exc}") from None
    old = None
    try:
        os.chmod(staging, 0o777 & ~_umask())
        for name, text in {**files, MANIFEST: json.dumps(manifest, indent=2, sort_keys=True) + "\n"}.items():
            (staging / name).write_text(text)
        if outdir.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{outdir.name[:40]}.old-", dir=parent))
            os.rename(outdir, old / "previous")
        try:
            os.rename(staging, outdir)
        except BaseException:
            if old is not None and (old / "previous").exists():   # put the earlier output back first
                os.rename(old / "previous", outdir)
            raise
    except BaseException as exc:    # an OSError, or a signal (cli.common): leave nothing behind
        shutil.rmtree(staging, ignore_errors=True)
        if old is not None and not (old / "previous").exists():
            shutil.rmtree(old, ignore_errors=True)
        _remove_empty(created)
        if isinstance(exc, OSError):
            raise DwsError(f"cannot write '{outdir}': {exc.strerror or exc}") from None
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
