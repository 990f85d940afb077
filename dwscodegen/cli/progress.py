"""Progress on stderr for long work, without noise for short work.

`Stages`: generate and verify name the stage they are in (generating C, compiling, running, the oracle)
once it has lasted STAGE_AFTER seconds, and repeat it every HEARTBEAT seconds while it lasts, so a large
model is never silent for long and a small one prints nothing extra. DWSCODEGEN_PROGRESS_AFTER=0 names
every stage at once (what the tests use).

`Counter`: tune's measurements; click's bar on a terminal, periodic lines in a log.
"""
from __future__ import annotations

import math
import os
import sys
import threading
import time

import click

STAGE_AFTER = 2.0
HEARTBEAT = 10.0
LINE_EVERY = 30.0      # seconds between a log's progress lines at the latest


def _after() -> float:
    try:
        return float(os.environ.get("DWSCODEGEN_PROGRESS_AFTER", STAGE_AFTER))
    except ValueError:
        return STAGE_AFTER


class Stages:
    """`with Stages() as progress: progress("compiling for cortex-m4")`; a callable, so library code
    (verify_graph) takes it as a plain callback."""

    def __init__(self):
        self.after = _after()
        self.label: str | None = None
        self.started = 0.0
        self.shown = 0.0             # when the label was last printed (0: not yet)
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True)

    def __call__(self, label: str | None) -> None:
        """Enter the stage `label` (None: no stage, e.g. while printing the results)."""
        with self.lock:
            self.label, self.started, self.shown = label, time.monotonic(), 0.0
            if label is not None and self.after <= 0:
                self._show(self.started)

    def _show(self, now: float) -> None:
        elapsed = now - self.started
        suffix = f" (still, {elapsed:.0f} s)" if self.shown else ""
        click.echo(f"  ... {self.label}{suffix}", err=True)
        self.shown = now

    def _watch(self) -> None:
        while not self.stop.wait(0.25):
            with self.lock:
                if self.label is None:
                    continue
                now = time.monotonic()
                due = self.started + self.after if not self.shown else self.shown + HEARTBEAT
                if now >= due:
                    self._show(now)

    def __enter__(self) -> "Stages":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> bool:
        self.stop.set()
        self.thread.join()
        return False


class Counter:
    """Completed-of-total for tune: click's progress bar on a terminal; otherwise a line at every tenth
    and at least every LINE_EVERY seconds, so a CI log shows the run is alive."""

    def __init__(self, total: int, label: str):
        self.total, self.label, self.done = total, label, 0
        self.tty = sys.stdout.isatty()
        self.bar = click.progressbar(length=total, label=label, show_pos=True) if self.tty else None
        self.step = max(1, math.ceil(total / 10))
        self.last_line = time.monotonic()

    def __enter__(self) -> "Counter":
        if self.bar is not None:
            self.bar.__enter__()
        return self

    def update(self) -> None:
        self.done += 1
        if self.bar is not None:
            self.bar.update(1)
            return
        now = time.monotonic()
        if self.done % self.step == 0 or self.done == self.total or now - self.last_line >= LINE_EVERY:
            click.echo(f"{self.label}: {self.done}/{self.total} ({100 * self.done // max(self.total, 1)} %)")
            self.last_line = now

    def __exit__(self, *exc) -> bool:
        if self.bar is not None:
            return self.bar.__exit__(*exc)
        return False
