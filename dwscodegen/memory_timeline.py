"""The arena plan as data and as a picture: each intermediate tensor's offset, size and lifetime (op indices),
the input it overlaps in place (and the kernel's lag), where a moved output was first written; the row-fused
chains' windows (scratch live only during the fused chain, which runs in its last op's call); the kernels'
scratch (`<op name>@scratch`, live only during its op's call; a fused chain's under its last op); the peak.

`inspect --json` carries `timeline(...)`; `inspect --memory-plot FILE.png` draws it.
"""
from __future__ import annotations

from pathlib import Path

from .ir import Graph
from .planner import ArenaPlan, lifetimes, scratch_item


def timeline(graph: Graph, plan: ArenaPlan) -> dict:
    """{"arena_bytes", "peak": {"op", "bytes"}, "tensors": [{name, offset, bytes, first, last, overlaps,
    lag, written_at}], "fusions": [{producer, consumer, middle, middle_bytes, window, window_offset,
    window_bytes, window_rows, chain}], "scratch": [{name, op, chain, offset, bytes}]}: one fusion entry per window, producer/consumer = the ops its middle tensor runs
    between, chain = the fused ops (the window is live during all of them, in the last one's call); one scratch
    entry per op whose kernel takes scratch (op: its index; chain: the fused ops sharing it, else [op]);
    peak = the op whose live tensors (windows and scratch too) reach highest in the arena."""
    live = lifetimes(graph)
    tensors = []
    for name in sorted(plan.offsets, key=lambda n: (live[n][0], plan.offsets[n], n)):
        over = plan.overlaps.get(name)
        tensors.append(dict(name=name, offset=plan.offsets[name], bytes=graph.tensor(name).nbytes,
                            first=live[name][0], last=live[name][1], overlaps=over[0] if over else None,
                            lag=over[1] if over else None, written_at=plan.moves.get(name)))
    fusions = [dict(producer=w.producer, consumer=w.reader, middle=w.middle,
                    middle_bytes=graph.tensor(w.middle).nbytes, window=w.name, window_offset=plan.windows[w.name],
                    window_bytes=w.nbytes, window_rows=w.rows, chain=list(f.ops))
               for f in plan.fusions for w in f.windows]
    chains = {f.consumer: list(f.ops) for f in plan.fusions}
    scratch = [dict(name=scratch_item(graph, i), op=i, chain=chains.get(i, [i]), offset=at, bytes=n)
               for i, (at, n) in plan.scratch.items()]
    top = {op.index: max([_top(t, op.index) for t in tensors if t["first"] <= op.index <= t["last"]]
                         + [w["window_offset"] + w["window_bytes"] for w in fusions if w["chain"][-1] == op.index]
                         + [w["offset"] + w["bytes"] for w in scratch if w["op"] == op.index],
                         default=0)
           for op in graph.ops}
    peak = max(top, key=lambda i: (top[i], -i), default=0)
    return dict(arena_bytes=plan.size, peak=dict(op=peak, bytes=top.get(peak, 0)), tensors=tensors,
                fusions=fusions, scratch=scratch)


def peak_note(graph: Graph, plan: ArenaPlan) -> str:
    """Where the arena peaks and what is live there, for a RAM error."""
    doc = timeline(graph, plan)
    op = graph.ops[doc["peak"]["op"]] if graph.ops else None
    if op is None:
        return "no intermediate tensors"
    live = sorted((t for t in doc["tensors"] if t["first"] <= op.index <= t["last"]), key=lambda t: -t["bytes"])
    held = [f"'{t['name']}' {t['bytes']:,} B" for t in live[:3]]
    held += [f"the row window of '{w['middle']}' {w['window_bytes']:,} B" for w in doc["fusions"]
             if w["chain"][-1] == op.index]
    held += [f"the scratch of its kernel{'s' if len(w['chain']) > 1 else ''} {w['bytes']:,} B" for w in doc["scratch"]
             if w["op"] == op.index]
    return f"the arena ({plan.size:,} B) peaks at {op.where()}, holding {', '.join(held) or 'nothing'}"


def _top(t: dict, op: int) -> int:
    at = t["written_at"] if t["written_at"] is not None and op == t["first"] else t["offset"]
    return at + t["bytes"]


def plot(graph: Graph, plan: ArenaPlan, path: Path) -> None:
    """Boxes over (op index, arena offset), one per tensor (hatched where written before its move), in-place
    pairs joined by their overlap, the peak marked."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    doc = timeline(graph, plan)
    fig, ax = plt.subplots(figsize=(max(6.0, 0.25 * len(graph.ops) + 3), 5))
    colors = plt.get_cmap("tab20").colors
    for i, t in enumerate(doc["tensors"]):
        color = colors[i % len(colors)]
        start = t["first"] + (0.5 if t["written_at"] is not None else 0)
        ax.add_patch(plt.Rectangle((start - 0.4, t["offset"]), t["last"] - start + 0.8, t["bytes"],
                                   facecolor=color, edgecolor="black", linewidth=0.5, alpha=0.7))
        if t["written_at"] is not None:
            ax.add_patch(plt.Rectangle((t["first"] - 0.4, t["written_at"]), 0.8, t["bytes"], facecolor="none",
                                       edgecolor=color, hatch="//", linewidth=0.8))
    for w in doc["fusions"]:   # a window: scratch of the fused chain, cross-hatched, over all its ops
        first, last = w["chain"][0], w["chain"][-1]
        ax.add_patch(plt.Rectangle((first - 0.4, w["window_offset"]), last - first + 0.8,
                                   w["window_bytes"], facecolor="lightgrey", edgecolor="black", hatch="xx",
                                   linewidth=0.5))
    for w in doc["scratch"]:   # a kernel's scratch: live during its call (a fused chain's: the chain's ops)
        first, last = w["chain"][0], w["chain"][-1]
        ax.add_patch(plt.Rectangle((first - 0.4, w["offset"]), last - first + 0.8, w["bytes"], facecolor="white",
                                   edgecolor="black", hatch="..", linewidth=0.5))
        ax.annotate(w["name"], (last + 0.45, w["offset"]), fontsize=6, rotation=90, va="bottom")
    ax.axhline(doc["peak"]["bytes"], color="red", linestyle="--", linewidth=1)
    ax.annotate(f"peak {doc['peak']['bytes']:,} B at op {doc['peak']['op']}", (doc["peak"]["op"], doc["peak"]["bytes"]),
                xytext=(4, 4), textcoords="offset points", color="red")
    ax.set_xlim(-1, len(graph.ops))
    ax.set_ylim(0, max(plan.size, 1) * 1.08)
    ax.set_xlabel("op index")
    ax.set_ylabel("arena offset (bytes)")
    ax.set_title(f"{graph.name}: arena {plan.size:,} B, {len(plan.overlaps)} in place, {len(plan.moves)} moved, "
                 f"{len(plan.fusions)} row-fused, {len(plan.scratch)} with scratch")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
