"""The tuning database: append-only JSON lines, one measured candidate per line.

Appends are flushed and fsync'ed line by line, so a crash loses at most the line being written; a
torn last line is skipped when reading (and reported), never fatal. Reading it back gives the best
schedule per (layer key, target, backend), which `generate` and `verify` use.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from .errors import DwsError


def _read_lines(path: Path) -> list[str]:
    """The database's lines; json.dumps writes ASCII, so anything not UTF-8 is not a tuning database."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DwsError(f"cannot read tuning database {path}: {exc.strerror}") from None
    try:
        return data.decode("utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise DwsError(f"{path} is not a tuning database: byte {exc.start} is not text (a database is "
                       "the JSON lines `dwscodegen tune` writes)") from None


def schedule_id(schedule: dict) -> str:
    return json.dumps(schedule, sort_keys=True, separators=(",", ":"))


@dataclass
class TuningDB:
    path: Path
    records: list[dict]
    skipped_lines: int = 0

    @classmethod
    def open(cls, path: Path) -> "TuningDB":
        path = Path(path)
        records, skipped = [], 0
        if path.exists():
            for line in _read_lines(path):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    skipped += 1          # a line torn by a crash mid-write
                    continue
                if isinstance(record, dict) and {"key", "target", "backend", "schedule"} <= record.keys():
                    records.append(record)
                else:
                    skipped += 1
        return cls(path=path, records=records, skipped_lines=skipped)

    def of_model(self, model_hash: str) -> "TuningDB":
        """The records measured for one model (tuning.graph_hash); appends still go to append()."""
        return TuningDB(self.path, [r for r in self.records if r.get("model_hash") == model_hash], self.skipped_lines)

    def measured(self, key: str, target: str, backend: str) -> set[str]:
        return {schedule_id(r["schedule"]) for r in self.records
                if (r["key"], r["target"], r["backend"]) == (key, target, backend)}

    def append(self, record: dict) -> None:
        line = json.dumps(record, sort_keys=True) + "\n"
        try:
            with open(self.path, "a+b") as f:
                f.seek(0, os.SEEK_END)
                if f.tell():
                    f.seek(-1, os.SEEK_END)
                    if f.read(1) != b"\n":
                        line = "\n" + line     # end a line torn by a crash before appending
                f.write(line.encode())
                f.flush()
                os.fsync(f.fileno())
        except OSError as exc:
            raise DwsError(f"cannot append to tuning database {self.path}: {exc.strerror}") from None
        self.records.append(record)

    def best(self, key: str, target: str, backend: str) -> dict | None:
        ok = [r for r in self.records if (r["key"], r["target"], r["backend"]) == (key, target, backend)
              and r.get("ok") and r.get("cost") is not None]
        # On a tie the default schedule wins, then the order is deterministic.
        return min(ok, key=lambda r: (r["cost"], bool(r["schedule"]), schedule_id(r["schedule"])), default=None)
