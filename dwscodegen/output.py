"""Write a generated library directory atomically.

Files go to a temporary sibling directory first; only a complete one replaces OUTDIR, by rename.
An existing OUTDIR is replaced only if an earlier run of this tool wrote it (it holds MANIFEST), so a
typo such as `-o ~` can never wipe a user's own directory.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from .errors import DwsError

MANIFEST = "dwscodegen.json"


def write_output_dir(outdir: Path, files: dict[str, str], manifest: dict) -> None:
    outdir = Path(outdir)
    if outdir.exists():
        if not outdir.is_dir():
            raise DwsError(f"output '{outdir}' exists and is not a directory")
        if any(outdir.iterdir()) and not (outdir / MANIFEST).is_file():
            raise DwsError(f"output directory '{outdir}' exists and was not written by dwscodegen "
                           f"(no {MANIFEST}); choose a new directory or remove it first")
    parent = outdir.resolve().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)   # only reached once generation has succeeded
    except OSError as exc:
        raise DwsError(f"cannot create '{parent}': {exc.strerror}") from None
    staging = Path(tempfile.mkdtemp(prefix=f".{outdir.name}.tmp-", dir=parent))
    try:
        for name, text in {**files, MANIFEST: json.dumps(manifest, indent=2, sort_keys=True) + "\n"}.items():
            (staging / name).write_text(text)
        old = None
        if outdir.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{outdir.name}.old-", dir=parent))
            os.rename(outdir, old / "previous")
        try:
            os.rename(staging, outdir)
        except OSError:
            if old is not None:     # put the earlier output back before reporting
                os.rename(old / "previous", outdir)
            raise
        if old is not None:
            shutil.rmtree(old)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise DwsError(f"cannot write '{outdir}': {exc}") from None
