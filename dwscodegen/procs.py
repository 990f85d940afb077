"""Child processes (compilers, QEMU, the native harness) that never outlive the run that started them.

Each child gets its own session, hence its own process group: a terminal's Ctrl-C or hangup reaches this
process only, and whatever interrupts the wait (a timeout, a signal the CLI turned into an exception,
KeyboardInterrupt) ends the child's whole group, gcc's cc1/as/collect2 included. SIGTERM goes first, so
gcc deletes its temporary files and QEMU exits cleanly; SIGKILL follows if the group outlives a grace period.
"""
from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path

GRACE_SECONDS = 2.0


def run(cmd: list[str], cwd: Path | None = None, timeout: float | None = None) -> subprocess.CompletedProcess:
    """Like subprocess.run(cmd, capture_output=True, text=True, stdin=DEVNULL): raises OSError if cmd
    cannot start and subprocess.TimeoutExpired after `timeout` seconds, with the child's group ended."""
    with subprocess.Popen(cmd, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, errors="replace", start_new_session=True) as proc:
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except BaseException:
            end_group(proc)
            raise
    return subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:    # a member changed its credentials; it still exists
        return True
    return True


def end_group(proc: subprocess.Popen) -> None:
    """SIGTERM to the child's process group, SIGKILL to what is left after the grace period; reaps the child."""
    pgid = proc.pid             # start_new_session: the child leads its own group
    try:
        try:
            os.killpg(pgid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + GRACE_SECONDS
        while time.monotonic() < deadline:
            if proc.poll() is not None and not _group_alive(pgid):
                return
            time.sleep(0.02)
    finally:
        if _group_alive(pgid):
            try:
                os.killpg(pgid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        proc.wait()


class Terminated(BaseException):
    """SIGTERM or SIGHUP arrived. A BaseException, like KeyboardInterrupt, so that no `except Exception` on
    the way swallows it: it unwinds through every `with TemporaryDirectory()` and every child's wait."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum
        self.name = signal.Signals(signum).name


STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


def _raise_terminated(signum, frame):
    signal.signal(signum, signal.SIG_IGN)   # once: a second signal must not interrupt the cleanup
    raise Terminated(signum)


def _raise_exit(signum, frame):
    signal.signal(signum, signal.SIG_IGN)
    raise SystemExit(128 + signum)          # a pool worker's quiet exit, after the same unwinding


def install_stop_handlers() -> dict:
    """Turn SIGTERM/SIGHUP into Terminated (main thread only); returns the handlers to restore."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    return {s: signal.signal(s, _raise_terminated) for s in STOP_SIGNALS}


def install_worker_stop_handlers() -> None:
    """Pool worker initializer: Pool.terminate()'s SIGTERM unwinds the worker (ending its QEMU) and exits."""
    for s in STOP_SIGNALS:
        signal.signal(s, _raise_exit)


def restore_handlers(previous: dict) -> None:
    for s, handler in previous.items():
        signal.signal(s, handler)
