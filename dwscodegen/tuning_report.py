"""Running tuning jobs (in-process, a process pool, or a dask.distributed cluster) and reporting them."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from .errors import DwsError
from .ir import Graph
from .tuning import REFERENCE, REFERENCE_SCHEDULE, layer_key
from .tuning_db import TuningDB, schedule_id


@dataclass(frozen=True)
class LayerRow:
    layers: str           # op names sharing the key
    key: str
    reference: float | None
    default: float | None
    tuned: float | None
    trials: int
    rejected: int

    def speedup(self, base: float | None) -> str:
        return f"{base / self.tuned:.2f}x" if base and self.tuned else "-"


def layer_rows(graph: Graph, db: TuningDB, target: str, backend: str) -> list[LayerRow]:
    rows, seen = [], {}
    for op in graph.ops:
        seen.setdefault(layer_key(graph, op), []).append(op.name)
    for key, names in seen.items():
        mine = [r for r in db.records if (r["key"], r["target"], r["backend"]) == (key, target, backend)]
        ref = next((r for r in db.records if (r["key"], r["target"], r["backend"]) == (key, target, REFERENCE)
                    and schedule_id(r["schedule"]) == schedule_id(REFERENCE_SCHEDULE) and r.get("ok")), None)
        default = next((r["cost"] for r in mine if r["schedule"] == {} and r.get("ok")), None)
        best = db.best(key, target, backend)
        rows.append(LayerRow(", ".join(names), key, ref["cost"] if ref else None, default,
                             best["cost"] if best else None, len(mine), sum(1 for r in mine if not r.get("ok"))))
    return rows


def format_table(rows: Iterable[LayerRow], unit: str) -> str:
    lines = ["| layer(s) | reference C loop | default | tuned | vs reference | vs default | trials (rejected) |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    fmt = lambda v: f"{v:,.0f}" if v is not None else "-"  # noqa: E731
    for r in rows:
        lines.append(f"| {r.layers} | {fmt(r.reference)} | {fmt(r.default)} | {fmt(r.tuned)} | "
                     f"{r.speedup(r.reference)} | {r.speedup(r.default)} | {r.trials} ({r.rejected}) |")
    return "\n".join(lines) + f"\n\ncosts in {unit}"


def tuning_curves(graph: Graph, db: TuningDB, target: str, backend: str) -> dict[str, list[float]]:
    """Per distinct layer (labelled by its first op): best cost so far / the default schedule's, per trial.

    Trial 1 is the default schedule, so every curve starts at 1.0 and any drop is a real gain over what
    `generate` does without tuning (the portable reference loop, slower than the default on SIMD targets,
    is a later trial of the templates backend and cannot pull the start down).
    """
    names: dict[str, list[str]] = {}
    for op in graph.ops:
        names.setdefault(layer_key(graph, op), []).append(op.name)
    curves = {}
    for key, ops in names.items():
        mine = [r for r in db.records
                if (r["key"], r["target"], r["backend"]) == (key, target, backend) and r.get("ok")]
        default = next((r for r in mine if r["schedule"] == {}), None)
        if default is None:
            continue
        best, curve = default["cost"], [1.0]
        for r in mine:            # in the order they were measured
            if r is not default:
                best = min(best, r["cost"])
                curve.append(best / default["cost"])
        curves[ops[0] + (f" (+{len(ops) - 1})" if len(ops) > 1 else "")] = curve
    return curves


def tuning_figure(graph: Graph, db: TuningDB, target: str, backend: str):
    """The matplotlib figure of tuning_curves: integer trial ticks, the legend beside the axes, not on the data."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(9, 4.5))
    for label, curve in tuning_curves(graph, db, target, backend).items():
        ax.plot(range(1, len(curve) + 1), curve, marker=".", label=label)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("trials (1 = default schedule)")
    ax.set_ylabel("best cost so far / default schedule")
    ax.set_title(f"{graph.name} on {target} ({backend} backend)")
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    fig.tight_layout()
    return fig


def plot_curves(graph: Graph, db: TuningDB, target: str, backend: str, path: Path) -> Path:
    import matplotlib.pyplot as plt
    fig = tuning_figure(graph, db, target, backend)
    try:
        fig.savefig(path, dpi=120)
    except OSError as exc:
        raise DwsError(f"cannot write the tuning curves to {path}: {exc.strerror or exc}") from None
    finally:
        plt.close(fig)
    return path
