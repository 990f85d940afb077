"""Which tuning records `generate --db` / `verify --db` use, and an account of every other one.

A record applies when it was measured for this model (its content hash, tuning.graph_hash), on this
target, for this backend. Everything else is counted by the reason it was left out, so the CLI can say
it loudly; a database of which nothing applies, or one tuned for the other backend only, is an error,
not a silent run with default schedules.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from .errors import DwsError
from .ir import Graph, Op
from .targets import load_target
from .tuning import candidates, graph_hash, layer_key
from .tuning_db import TuningDB


@dataclass
class Selection:
    schedules: dict[int, dict] = field(default_factory=dict)   # op index -> schedule, for the tuned layers
    tunable: list[Op] = field(default_factory=list)             # layers with more than one candidate
    default_best: list[Op] = field(default_factory=list)        # measured; the default schedule won
    not_applicable: list[Op] = field(default_factory=list)      # best variant does not fit this layer's constants
    missing: list[Op] = field(default_factory=list)             # tunable, no measurement in the database
    ignored: Counter = field(default_factory=Counter)           # reason -> records left out
    records: list[dict] = field(default_factory=list)           # the records that apply (flash_budget's costs)
    used_records: int = 0

    def summary(self, backend: str, target: str) -> str:
        text = (f"tuned schedules for {len(self.schedules)} of {len(self.tunable)} tunable layers "
                f"({backend} backend, {target}, {self.used_records} records)")
        if self.default_best:
            text += f"; default measured best for {len(self.default_best)}"
        if self.not_applicable:
            text += f"; default kept for {_names(self.not_applicable)} (the best variant does not apply to its weights)"
        if self.missing:
            text += f"; not measured: {_names(self.missing)}"
        return text

    def ignored_summary(self) -> str | None:
        if not self.ignored:
            return None
        parts = [f"{n} {reason}" for reason, n in sorted(self.ignored.items(), key=lambda kv: (-kv[1], kv[0]))]
        return f"ignored {sum(self.ignored.values())} records: " + "; ".join(parts)


def _names(ops: list[Op], limit: int = 4) -> str:
    shown = ", ".join(f"'{op.name}'" for op in ops[:limit])
    return shown + (f" and {len(ops) - limit} more" if len(ops) > limit else "")


def _why_not(record: dict, model_hash: str, target: str, backend: str) -> str | None:
    if "model_hash" not in record or "tuned_for" not in record:
        return "written by an older dwscodegen (no model hash; re-run `tune`)"
    if record["model_hash"] != model_hash:
        return f"of another model ({record.get('model', '?')}, hash {record['model_hash']})"
    if record["target"] != target:
        return f"for target {record['target']}"
    if record["backend"] != backend:
        if record["tuned_for"] == backend:
            return f"of the {record['backend']} reference loop (what tune compares with)"
        return f"for the {record['backend']} backend"
    return None


def select_schedules(graph: Graph, db: TuningDB, target: str, backend: str) -> Selection:
    model_hash = graph_hash(graph)
    sel = Selection()
    applicable = []
    for record in db.records:
        why = _why_not(record, model_hash, target, backend)
        if why is None:
            applicable.append(record)
        else:
            sel.ignored[why] += 1
    if db.skipped_lines:
        sel.ignored["unreadable lines (an interrupted write)"] += db.skipped_lines
    tuned_for = {r["tuned_for"] for r in db.records if r.get("model_hash") == model_hash and r.get("target") == target}
    if backend not in tuned_for:
        found = "; ".join(f"{n} {why}" for why, n in sel.ignored.items()) or "no records"
        if tuned_for:
            hint = (f"it was tuned for the {'/'.join(sorted(tuned_for))} backend: use --backend {min(tuned_for)}, "
                    f"or `tune --backend {backend}`")
        else:
            hint = f"run `dwscodegen tune -t {target} --backend {backend}`"
        raise DwsError(f"tuning database {db.path} has no {backend}-backend records for {graph.name} on {target} "
                       f"({found}); {hint}")
    sel.used_records = len(applicable)
    sel.records = applicable
    mine = TuningDB(db.path, applicable)
    tgt = load_target(target)
    choices = None
    if backend == "templates":
        from .backends.templates import kernel_choices
        choices = lambda op: kernel_choices(graph, op, tgt)  # noqa: E731
    for op in graph.ops:
        if not (len(choices(op)) > 1 if choices else len(candidates(graph, op, backend, 2, target=tgt)) > 1):
            continue            # nothing to choose (templates: the portable kernel only): not a tunable layer
        sel.tunable.append(op)
        best = mine.best(layer_key(graph, op), target, backend)
        if best is None:
            sel.missing.append(op)
        elif not best["schedule"]:
            sel.default_best.append(op)
        elif choices is not None and best["schedule"].get("kernel") not in choices(op):
            sel.not_applicable.append(op)
        else:
            sel.schedules[op.index] = best["schedule"]
    return sel


def best_schedules(graph: Graph, db: TuningDB, target: str, backend: str) -> dict[int, dict]:
    """Op index -> best recorded schedule of this model's layers (select_schedules says what else it found)."""
    return select_schedules(graph, db, target, backend).schedules
