"""Static activation arena: liveness-based placement so tensors with disjoint lifetimes share memory, and an
op's output may overlap the input that dies at it where the op's kernel allows (in-place execution).

Graph inputs and outputs live in the caller's buffers, constants in flash; only intermediate tensors
are placed (placement.py: where). Greedy first fit (lowest free offset), as TFLite Micro's greedy planner does, tried in a few
orders (largest first; last op first, which suits chains whose outputs trail their inputs); the smallest wins.

Overlap: a kernel that streams its output (Kernel.overlap, overlap.py) may have it start `lag` bytes or more
below an input whose last reader it is; the output may then extend over that input. Nothing else shares a
byte while both are live. DWSCODEGEN_DISJOINT_ARENA=1 turns overlapping off (the benchmarks' baseline).
Moves: where lags would add up along a chain, an output may be written below its input and moved (memmove)
to a place of its own after its producer; a move is kept only where it lowers the arena.
Row fusion (row_fusion.py): a fused chain's middle tensors are not placed at all; each one's window (its
reader's KH rows, one row for an element-wise reader) is an item live only while the chain runs (in its last
op's call); what its ops read (its input, the sides of its element-wise ops) lives until then. The chain's
output may overlap its input by the pipeline's own lag, unless an op of the chain reads that input as a side
too (a residual Add): a side keeps its bytes.
Scratch (Kernel.scratch: im2col patches, padded tiles): each op's is an item `<op name>@scratch` live only during
that op's call, clear of everything live then; a fused chain's kernels run one after another inside its last op's
call, so they share one item of the largest of their scratch, live in that call; nothing else is on the stack
but registers' spills and call frames (the footprint's stack bound).
The rule of the default plan: the lowest arena among the plans whose only extra instructions are row copies,
that is in place, moves (one memmove per moved tensor) and row fusions (the kept window rows copied once per
output row, no arithmetic recomputed); a fusion is kept only where it lowers the
arena (greedy, largest middle tensor first; a fusion is a chain of 2 or more layers, every middle tensor a
window; each set of chains is placed once). DWSCODEGEN_NO_ROW_FUSION=1 turns fusion off, DWSCODEGEN_ROW_FUSION_PAIRS=1 fuses pairs only (the
benchmarks' earlier plans). Fusions are offered only by a backend that can render them (backends/library.assemble's
row_kernels): both roads do, each rendering a fused layer's one-row graphs through its own kernels. The tvm
road's kernels declare no lags, so there nothing is in place or moved and the fusions alone lower the arena.
A library over the RAM budget (--ram) is refused with where the arena peaks (cli/fit.py). Under `--optimize
speed` the budget is spent instead (ram_budget.py): given an arena budget, the plan is the one with the fewest
estimated extra instructions within it (fastest_within: chains dropped or shortened from the lowest plan; the
unfused plan where it fits).
"""
from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field

from .ir import Graph
from .placement import ALIGN, align, end, with_moves
from .row_fusion import MOVE_PER_BYTE, RowFusion, extra_instructions, fused_lag, side_inputs

DISJOINT_ENV = "DWSCODEGEN_DISJOINT_ARENA"
NO_MOVES_ENV = "DWSCODEGEN_ARENA_NO_MOVES"
NO_FUSION_ENV = "DWSCODEGEN_NO_ROW_FUSION"
PAIRS_ONLY_ENV = "DWSCODEGEN_ROW_FUSION_PAIRS"


@dataclass(frozen=True)
class ArenaPlan:
    offsets: dict[str, int]   # tensor name -> byte offset in the arena
    size: int                 # bytes
    # output tensor -> (the input it overlaps, the kernel's lag in bytes): the in-place placements
    overlaps: dict[str, tuple[str, int]] = field(default_factory=dict)
    # output tensor -> where its producer writes it, when that is not its offset: the library moves it
    # there after the producer (the producer wrote it overlapping its input, `lag` below)
    moves: dict[str, int] = field(default_factory=dict)
    # the row fusions taken (row_fusion.py) and the offset of each one's window (RowFusion.window -> bytes)
    fusions: tuple[RowFusion, ...] = ()
    windows: dict[str, int] = field(default_factory=dict)
    # op index -> (offset, bytes) of the scratch its kernel (a fused chain: its kernels, under its last op) takes
    scratch: dict[int, tuple[int, int]] = field(default_factory=dict)

    def fused_middle(self, name: str) -> bool:
        return any(name in f.middles for f in self.fusions)

    def offset(self, name: str) -> int | None:
        return self.offsets.get(name)

    def window_middle(self, window: str) -> str | None:
        """The tensor whose rows a planned window holds (it has that tensor's dtype); None for a graph tensor."""
        return next((w.middle for f in self.fusions for w in f.windows if w.name == window), None)


def scratch_item(graph: Graph, op_index: int) -> str:
    """The name the plan's pictures and tables give op's scratch."""
    return f"{graph.ops[op_index].name}@scratch"


@dataclass(frozen=True)
class ScratchNeeds:
    """The bytes of scratch each op's kernel takes (op index -> bytes, none listed for none), and `chain`: a fused
    chain's, the largest of its row kernels' (they run one at a time), from the backend's row kernels (without
    it, the largest of its ops' whole-layer kernels')."""
    ops: dict[int, int] = field(default_factory=dict)
    chain: Callable[[RowFusion], int] | None = None

    def of(self, fused: tuple[RowFusion, ...]) -> dict[int, int]:
        """op index -> scratch bytes in a plan running the `fused` chains (a chain's under its last op)."""
        out = {i: n for i, n in self.ops.items() if n and not any(i in f.ops for f in fused)}
        for f in fused:
            n = self.chain(f) if self.chain else max(self.ops.get(i, 0) for i in f.ops)
            if n:
                out[f.consumer] = n
        return out


def disjoint_forced() -> bool:
    return os.environ.get(DISJOINT_ENV, "").strip() not in ("", "0")


def moves_allowed() -> bool:
    return os.environ.get(NO_MOVES_ENV, "").strip() in ("", "0")


def fusion_allowed() -> bool:
    return os.environ.get(NO_FUSION_ENV, "").strip() in ("", "0") and not disjoint_forced()


def lifetimes(graph: Graph) -> dict[str, tuple[int, int]]:
    """First and last op index at which each intermediate tensor must hold its value."""
    span: dict[str, list[int]] = {}
    for op in graph.ops:
        for name in op.inputs:
            if name in span:
                span[name][1] = op.index
        out = op.outputs[0]
        if out not in graph.outputs:
            span[out] = [op.index, op.index]
    return {name: (a, b) for name, (a, b) in span.items()}


def in_place_pairs(graph: Graph, lags: dict[tuple[int, str], int]) -> dict[tuple[str, str], int]:
    """(input, output) -> aligned lag, for each declared lag whose input dies at that op and whose
    output is in the arena (an input read later, e.g. by a residual Add, keeps its bytes)."""
    live = lifetimes(graph)
    pairs = {}
    for op in graph.ops:
        out = op.outputs[0]
        for name in op.inputs:
            lag = lags.get((op.index, name))
            if lag is not None and name in live and out in live and name != out and live[name][1] == op.index:
                # at least ALIGN: the kernels keep `restrict` on their output (library._aliasable), which
                # makes an output pointer equal to an input pointer a compile error (-Werror=restrict)
                pairs[(name, out)] = max(ALIGN, align(lag))
    return pairs


def plan_arena(graph: Graph, lags: dict[tuple[int, str], int] | None = None, moves: bool | None = None,
               fusions: list[RowFusion] | None = None, scratch: ScratchNeeds | None = None,
               arena_budget: int | None = None) -> ArenaPlan:
    """lags: (op index, input tensor) -> bytes by which that op's output may trail the input (Kernel.overlap).
    moves: also try writing such outputs below their input and moving them back up (one memmove each) so the
    lags do not add up along a chain; kept only where that lowers the arena (default: unless
    DWSCODEGEN_ARENA_NO_MOVES=1, the benchmarks' in-place-only plan).
    fusions: the row fusions the backend can run (row_fusion.candidates: chains of 2 or more ops); each kept
    only where it lowers the arena (_fuse_greedily).
    scratch: the kernels' scratch, each planned live during its op's call.
    arena_budget: bytes the arena may take (--optimize speed): then the plan with the fewest extra instructions
    within it (fastest_within); the lowest plan where none is. Fastest of all, where it fits: every output apart
    from its inputs, so every kernel keeps `restrict` on its input (in place drops it; on KWS that costs 4-6 %
    more instructions in the in-place MVE and DSP conv kernels) and nothing is moved."""
    scratch = scratch or ScratchNeeds()
    if arena_budget is not None:
        apart = _plan_fused(graph, {}, False, (), scratch)
        if apart.size <= arena_budget:
            return apart
    unfused = _plan_fused(graph, lags or {}, moves, (), scratch)
    if os.environ.get(PAIRS_ONLY_ENV, "").strip() not in ("", "0"):
        fusions = [f for f in fusions or () if len(f.ops) == 2]
    if not fusions or not fusion_allowed():
        return unfused
    lowest = _fuse_greedily(graph, lags or {}, moves, fusions, unfused, scratch)
    if arena_budget is None or lowest.size > arena_budget:
        return lowest
    if unfused.size <= arena_budget:
        return unfused
    return fastest_within(graph, lags or {}, moves, fusions, lowest, arena_budget, scratch)


def fusions_cost(graph: Graph, plan: ArenaPlan) -> int:
    """Estimated instructions its row fusions add (row_fusion.extra_instructions)."""
    return sum(extra_instructions(graph, f) for f in plan.fusions)


def plan_cost(graph: Graph, plan: ArenaPlan) -> int:
    """Estimated instructions the plan adds to the kernels': its fusions' and its moves' (a word copy each)."""
    return fusions_cost(graph, plan) + int(MOVE_PER_BYTE * sum(graph.tensor(y).nbytes for y in plan.moves))


def fastest_within(graph: Graph, lags: dict[tuple[int, str], int], moves: bool | None, fusions: list[RowFusion],
                   lowest: ArenaPlan, budget: int, scratch: ScratchNeeds) -> ArenaPlan:
    """From the lowest plan (which fits `budget`), step by step the cheapest change that still fits: a kept
    chain dropped, or replaced by a chain sharing an op with it (a sub-chain, or one shifted; offered: clear of
    the other chains). A step's cost (plan_cost) counts the moves its placement needs besides its chains, so
    steps are placed in order of their chains' cost, a lower bound, until that bound reaches the best found.
    Each step lowers the cost, so the walk ends; it trades row moves and calls for the RAM the budget leaves."""
    best = lowest
    while True:
        steps = []
        for f in best.fusions:
            others = tuple(g for g in best.fusions if g != f)
            steps.append(others)
            steps += [(*others, g) for g in fusions
                      if g != f and set(g.ops) & set(f.ops) and not any(set(g.ops) & set(h.ops) for h in others)]
        found, cost = None, plan_cost(graph, best)
        for bound, i in sorted((sum(extra_instructions(graph, g) for g in step), i) for i, step in enumerate(steps)):
            if bound >= cost:
                break
            trial = _plan_fused(graph, lags, moves, steps[i], scratch)
            if trial.size <= budget and plan_cost(graph, trial) < cost:
                found, cost = trial, plan_cost(graph, trial)
        if found is None:
            return best
        best = found


def _fuse_greedily(graph: Graph, lags: dict[tuple[int, str], int], moves: bool | None,
                   fusions: list[RowFusion], best: ArenaPlan, scratch: ScratchNeeds) -> ArenaPlan:
    """Middle tensors largest first: of the chains that would not store it (and share no op with a chain kept
    before) the one giving the lowest arena, kept if that is lower than without it (a longer chain stores
    fewer middles but keeps its input and more windows live at once: only the trial tells; on a tie the
    shorter). Taking the first chain that helps instead ends higher: on MobileNetV1 a 12-layer chain
    (17,664 B) would shut out the 8-layer one (14,208 B). Then each kept chain is offered its extensions
    (a chain holding it, clear of the others), kept where the arena drops again; where one is, the peak may have
    moved, and the middles are offered again (without lags, on the tvm road, MobileNetV2's first chains leave
    the peak where no single further chain lowered it: 36,864 B after one round, 16,128 B after the next)."""
    def clear(f: RowFusion, kept: tuple[RowFusion, ...]) -> bool:
        return not any(set(f.ops) & set(g.ops) for g in kept)

    # A set of chains is placed once, whichever phase asks, and with every move it may take: dropping the moves
    # the arena does not need (one placement per move) is left to the plan chosen.
    tried: dict[frozenset[RowFusion], ArenaPlan] = {}

    def trial(fused: tuple[RowFusion, ...]) -> ArenaPlan:
        if frozenset(fused) not in tried:
            tried[frozenset(fused)] = _plan_fused(graph, lags, moves, fused, scratch, settle=False)
        return tried[frozenset(fused)]

    unfused, best = best, trial(())
    made_by = {w.middle: w.producer for f in fusions for w in f.windows}
    while True:
        for middle in sorted(made_by, key=lambda m: (-graph.tensor(m).nbytes, made_by[m])):
            if best.fused_middle(middle):
                continue
            trials = [trial((*best.fusions, f))
                      for f in sorted(fusions, key=lambda f: (len(f.ops), f.producer))
                      if middle in f.middles and clear(f, best.fusions)]
            lowest = min(trials, key=lambda p: p.size, default=best)
            if lowest.size < best.size:
                best = lowest
        extended = best
        for g in extended.fusions:
            others = tuple(h for h in extended.fusions if h != g)
            for f in sorted(fusions, key=lambda f: (-len(f.ops), f.producer)):
                if set(g.ops) < set(f.ops) and clear(f, others) and g in extended.fusions:
                    longer = trial((*others, f))
                    if longer.size < extended.size:
                        extended = longer
                        break
        if extended is best:
            break
        # an extension moved the peak: the middles whose trials found no gain before are offered again (without
        # in-place lags, the tvm road's case: on MobileNetV2 its arena ends at 16,128 B instead of 36,864 B)
        best = extended
    if not best.fusions:
        return unfused
    chosen = _plan_fused(graph, lags, moves, best.fusions, scratch)
    return chosen if chosen.size < unfused.size else unfused


class _Items:
    """The graph's tensors plus the planned scratch items (windows, kernels' scratch), as far as the placement
    sees them."""

    def __init__(self, graph: Graph, scratch: dict[str, int]):
        self.graph, self.scratch = graph, scratch

    def tensor(self, name: str):
        if name in self.scratch:
            return _Scratch(self.scratch[name])
        return self.graph.tensor(name)


@dataclass(frozen=True)
class _Scratch:
    nbytes: int


def _plan_fused(graph: Graph, lags: dict[tuple[int, str], int], moves: bool | None,
                fused: tuple[RowFusion, ...], needs: ScratchNeeds, settle: bool = True) -> ArenaPlan:
    """The plan with the row fusions `fused` and the kernels' scratch `needs`; settle: drop the moves the arena
    does not need."""
    live = {n: (2 * a, 2 * b) for n, (a, b) in lifetimes(graph).items()}   # half steps: moves run between ops
    pairs = {} if disjoint_forced() else in_place_pairs(graph, lags)
    scratch = {}
    for f in fused:
        # the whole chain runs in its last op's step: what its ops read lives until then, its windows only then
        for middle in f.middles:
            del live[middle]
        pairs = {xy: lag for xy, lag in pairs.items() if not set(f.middles) & set(xy)}
        for name in {n for i in f.ops for n in graph.ops[i].inputs}:
            if name in live:
                live[name] = (live[name][0], max(live[name][1], 2 * f.consumer))
        # a side's rows are read at the rows of the op reading it, not as the chain's own lag says: the chain's
        # output keeps clear of it (and of the chain's input when that is a side too)
        x, y = f.input, graph.ops[f.consumer].outputs[0]
        read = set(side_inputs(graph, f))
        pairs = {xy: lag for xy, lag in pairs.items() if not (xy[0] in read and xy[1] == y)}
        if x in live and y in live and live[x][1] == 2 * f.consumer and x not in read:   # x dies in the pipeline
            pairs[(x, y)] = align(fused_lag(graph, f))
        for w in f.windows:
            scratch[w.name] = align(w.nbytes)
            live[w.name] = (2 * f.consumer, 2 * f.consumer)
    calls = {f"{i}@scratch": (i, n) for i, n in needs.of(fused).items()}   # not a tensor name: those have no '@'
    for item, (i, n) in calls.items():
        scratch[item] = align(n)
        live[item] = (2 * i, 2 * i)
    items = _Items(graph, scratch)
    best = with_moves(items, live, pairs, set())
    if moves_allowed() if moves is None else moves:
        movable = sorted((lag, y) for (_, y), lag in pairs.items() if lag > ALIGN)
        trial = with_moves(items, live, pairs, {y for _, y in movable})
        if trial[0] < best[0]:
            best = trial
            for _, y in movable if settle else ():   # each move costs a memmove: drop those the arena does not need
                fewer = with_moves(items, live, pairs, set(best[2]) - {y})
                if fewer[0] <= best[0]:
                    best = fewer
    plan = _plan(items, best[1], pairs, best[2])
    offsets = {n: o for n, o in plan.offsets.items() if n not in scratch}
    windows = {n: o for n, o in plan.offsets.items() if n in scratch and n not in calls}
    return ArenaPlan(offsets=offsets, size=plan.size, overlaps=plan.overlaps, moves=plan.moves,
                     fusions=tuple(sorted(fused, key=lambda f: f.producer)), windows=windows,
                     scratch={i: (plan.offsets[item], n) for item, (i, n) in sorted(calls.items(), key=lambda c: c[1])})


def _plan(graph: Graph, offsets: dict[str, int], pairs: dict[tuple[str, str], int],
          moves: dict[str, int]) -> ArenaPlan:
    made = {**offsets, **moves}
    overlaps = {}
    for (x, y), lag in sorted(pairs.items()):
        if made[y] < offsets[x] + graph.tensor(x).nbytes and offsets[x] < made[y] + graph.tensor(y).nbytes:
            overlaps[y] = (x, lag)
    size = max(end(graph, offsets, {}), end(graph, moves, {}))
    return ArenaPlan(offsets=dict(sorted(offsets.items())), size=align(size), overlaps=overlaps,
                     moves=dict(sorted(moves.items())))
