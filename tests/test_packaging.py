"""A built wheel works on its own (issue 14, "Packaging"): templates/, targets/ and tools/ ship inside it, so
an installed dwscodegen generates and verifies from any folder. Builds the wheel from a copy of the source
(pip's isolated build), installs it into a fresh venv and runs the installed command there."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from dwscodegen.targets import load_target
from dwscodegen.toolchain import toolchain_available

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "mbv1_ds_block_s8"


def _run(cmd, cwd, env, timeout=600):
    result = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"$ {' '.join(map(str, cmd))}\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.mark.slow
def test_wheel_installs_and_runs_from_another_folder(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}    # the worktree must not be importable
    src = tmp_path / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info", "out",
                                                            "__pycache__", "*.so", ".ruff_cache", ".pytest_cache"))
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", tmp_path / "dist", src], tmp_path, env)
    (wheel,) = (tmp_path / "dist").glob("dwscodegen-*.whl")
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", venv], tmp_path, env)
    _run([venv / "bin" / "python", "-m", "pip", "install", "--no-deps", "--no-index", wheel], tmp_path, env)
    # The dependencies (numpy, jinja2, ...) come from this interpreter's site-packages: a path line in a .pth
    # adds the folder without running its .pth files, so this checkout's editable install stays out.
    site = _run([venv / "bin" / "python", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                tmp_path, env).strip()
    (Path(site) / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for suffix in (".json", ".npz"):
        shutil.copy(EXAMPLE.with_suffix(suffix), elsewhere)
    where = _run([venv / "bin" / "python", "-c", "import dwscodegen.paths as p; print(p.TEMPLATES_DIR)"],
                 elsewhere, env).strip()
    assert where.startswith(site) and where.endswith("dwscodegen/data/templates")
    tool = venv / "bin" / "dwscodegen"
    out = _run([tool, "generate", "mbv1_ds_block_s8.json", "-t", "x86_64", "-o", "lib"], elsewhere, env)
    assert "wrote lib/" in out and (elsewhere / "lib" / "mbv1_ds_block_s8.h").is_file()
    assert "PASS" in _run([tool, "verify", "mbv1_ds_block_s8.json", "-t", "x86_64"], elsewhere, env)
    if toolchain_available(load_target("cortex-m4"))[0]:     # the bare-metal templates and the QEMU plugin too
        qemu = _run([tool, "verify", "mbv1_ds_block_s8.json", "-t", "cortex-m4", "--inputs", "1"], elsewhere, env)
        assert "PASS" in qemu and "executed instructions" in qemu
