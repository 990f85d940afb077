"""SIGTERM or SIGHUP while `verify` runs the model under QEMU: the tool ends QEMU, removes its temporary
folders and exits 128 + the signal number (issue 14, "Signals and children"). A real QEMU run, in a real
child process: the signal handling is the thing under test."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .support.targets import target_or_skip

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "examples" / "mbv2_inverted_residual_s8.json"


def _children(pid: int) -> list[tuple[int, str]]:
    """(pid, command name) of pid's children, from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue      # ended while we looked
        comm, rest = stat[stat.index("(") + 1:stat.rindex(")")], stat[stat.rindex(")") + 2:].split()
        if int(rest[1]) == pid:
            found.append((int(entry.name), comm))
    return found


@pytest.mark.qemu
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_signal_during_a_qemu_verify_ends_qemu_and_cleans_up(tmp_path, signum):
    target_or_skip("cortex-m4")
    if not Path("/proc/self/stat").is_file():
        pytest.skip("needs /proc to find the QEMU child")
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = dict(os.environ, TMPDIR=str(temp), PYTHONPATH=str(ROOT))
    # 1000 inputs: QEMU runs for many seconds, so the signal surely arrives while it does
    proc = subprocess.Popen([sys.executable, "-m", "dwscodegen.cli", "verify", str(MODEL), "-t", "cortex-m4",
                             "--inputs", "1000"], env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        qemu = []
        while not qemu and proc.poll() is None:
            qemu = [pid for pid, comm in _children(proc.pid) if comm == "qemu-system-arm"]
            time.sleep(0.02)
        assert qemu, f"verify ended before QEMU started: {proc.communicate()}"
        proc.send_signal(signum)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    name = signal.Signals(signum).name
    assert proc.returncode == 128 + signum, (stdout, stderr)
    assert f"stopped by {name}" in stderr and "Traceback" not in stderr
    assert "PASS" not in stdout
    assert not Path(f"/proc/{qemu[0]}").exists(), "QEMU outlived the tool"
    assert list(temp.iterdir()) == [], "temporary files left behind"
    assert [p.name for p in tmp_path.iterdir()] == ["tmp"]
