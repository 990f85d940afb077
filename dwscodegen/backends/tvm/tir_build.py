"""Build s_tir PrimFuncs from block specs with TVM's IRBuilder, and the tensor intrinsics that tensorize
matches against those blocks.

The tensorized kernels (simd_gemm.py, simd_depthwise.py) need what TE cannot express: several blocks writing
disjoint parts of one output buffer (pixel and channel tails, depthwise border regions, each with its own
code), and a reduction whose initial value is the bias.  A kernel is a list of Blocks at the root, each over
its own rectangular domain, in the order they run; the schedule then tiles and tensorizes them.

A tensor intrinsic (TVM's s_tir.TensorIntrin) is a description and an implementation over the same operand
buffers: the description is one Block over the tile (the same expression helpers build it as the kernel's
block, so tensorize's structural match holds), the implementation a call of a C micro-kernel with pointers
to the operands (the micro-kernels are emitted into the kernel's source, simd.py).

TVM is imported inside the functions: importing this module costs nothing.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable


@dataclass(frozen=True)
class Axis:
    """A block axis over [0, extent): its var indexes temporaries as is (compute_at solves a producer's domain
    from such plain accesses); a part of the output adds its origin where it indexes the parameters."""
    name: str
    extent: int
    reduce: bool = False


@dataclass(frozen=True)
class Buf:
    name: str
    shape: tuple[int, ...]
    dtype: str
    strided: bool = False       # intrinsic operands: the outer dimensions' strides are free (a tile of a bigger buffer)


@dataclass(frozen=True)
class Block:
    """`buffer[index(v)] = value(b, v)` over the axes' domain (v: axis name -> block var, b: name -> buffer);
    with `init`, a reduction whose first value is init(b, v)."""
    name: str
    axes: tuple[Axis, ...]
    buffer: str
    index: Callable
    value: Callable
    init: Callable | None = None
    loops: tuple[str, ...] = field(default=())   # loop variable names (default: the axis names)
    reads: Callable | None = None   # explicit read regions (b, v) -> [b[name][index], ...]; default: inferred


def _block(T, block: Block, bufs: dict, units: str = "full") -> None:
    """Emit `block` in its own loop nest.  units: what a unit axis gets: "full" a loop and a block var (a kernel's
    blocks); for intrinsic descriptions, which must look like what tensorize finds, "loop" a loop but no block var
    (blockize moves unit vars to the outer block), "none" neither (compute_at creates no unit loops)."""
    from tvm import tirx
    from tvm.script.ir_builder import IRBuilder
    names = block.loops or tuple(a.name for a in block.axes)
    looped = [i for i, a in enumerate(block.axes) if units != "none" or a.extent > 1]
    with T.grid(*[block.axes[i].extent for i in looped]) as loops:
        loops = [loops] if isinstance(loops, tirx.Var) else list(loops)
        for i, loop in zip(looped, loops):
            IRBuilder.name(names[i], loop)
        with T.sblock(block.name):
            v = {}
            for i, a in enumerate(block.axes):
                if a.extent == 1 and units != "full":
                    v[a.name] = tirx.const(0, "int32")
                    continue
                kind = T.axis.reduce if a.reduce else T.axis.spatial
                v[a.name] = kind(a.extent, loops[looped.index(i)])
                IRBuilder.name(f"v_{a.name}", v[a.name])
            target = bufs[block.buffer]
            if block.reads is not None:
                T.reads(*block.reads(bufs, v))
                T.writes(target[tuple(block.index(v))])
            if block.init is not None:
                with T.init():
                    T.buffer_store(target, block.init(bufs, v), block.index(v))
            T.buffer_store(target, block.value(bufs, v), block.index(v))


def prim_func(params: list[Buf], temps: list[Buf], blocks: list[Block]):
    """The PrimFunc of `blocks` over the parameter buffers (in order: the C function's parameters) and the
    temporaries (allocated at the root block)."""
    from tvm.script.ir_builder import IRBuilder
    from tvm.script.ir_builder import tirx as T
    with IRBuilder() as ib:
        with T.prim_func(s_tir=True):
            T.func_name("main")
            bufs = {p.name: T.arg(p.name, T.buffer(p.shape, p.dtype, layout=None)) for p in params}
            T.func_attr({"tirx.noalias": True})
            with T.sblock("root"):
                for t in temps:
                    bufs[t.name] = T.sblock_alloc_buffer(t.shape, t.dtype, layout=None)
                    IRBuilder.name(t.name, bufs[t.name])
                for block in blocks:
                    _block(T, block, bufs)
    return ib.get()


def _operand_buffers(T, operands: list[Buf]) -> dict:
    bufs = {}
    for op in operands:
        strides = None
        if op.strided:
            strides = [T.int32() for _ in op.shape[:-1]] + [1]
        bufs[op.name] = T.arg(op.name, T.buffer(op.shape, op.dtype, strides=strides, offset_factor=1, layout=None))
    return bufs


def _intrin_desc(operands: list[Buf], block: Block, units: str):
    """The root block reads and writes whole operands, in the order the inner block accesses them (tensorize
    compares these lists with the blockized block's)."""
    from tvm import s_tir
    from tvm.script.ir_builder import IRBuilder
    from tvm.script.ir_builder import tirx as T
    order = None
    for _ in range(2):
        with IRBuilder() as ib:
            with T.prim_func(s_tir=True):
                bufs = _operand_buffers(T, operands)
                with T.sblock("root"):
                    if order is not None:
                        whole = lambda b: b[tuple(slice(0, n) for n in b.shape)]  # noqa: E731
                        T.reads(*[whole(bufs[name]) for name in order[0]])
                        T.writes(*[whole(bufs[name]) for name in order[1]])
                    _block(T, block, bufs, units)
        func = ib.get()
        sch = s_tir.Schedule(func)
        inner = sch.get(sch.get_sblock(block.name))
        names = {p.name: op.name for p, op in zip(func.params, operands)}
        order = ([names[r.source.name] for r in inner.reads], [names[r.source.name] for r in inner.writes])
    return func


def _intrin_impl(operands: list[Buf], desc, call: Callable):
    """The root block keeps the description's access regions (the call hides its accesses in pointers)."""
    from tvm.script.ir_builder import IRBuilder
    from tvm.script.ir_builder import tirx as T
    root = desc.body.block
    with IRBuilder() as ib:
        with T.prim_func(s_tir=True):
            bufs = _operand_buffers(T, operands)
            def region(r):
                buf = next(bufs[op.name] for p, op in zip(desc.params, operands) if p.same_as(r.source))
                return buf[tuple(slice(x.min, x.min + x.extent) for x in r.region)]
            with T.sblock("root"):
                T.reads(*[region(r) for r in root.reads])
                T.writes(*[region(r) for r in root.writes])
                T.evaluate(call(bufs))
    return ib.get()


def register_intrin(name: str, operands: list[Buf], block: Block, function: str, args: Callable,
                    in_place: bool = False) -> str:
    """Register the tensor intrinsic `name`: `block` over the operand buffers, implemented by the C call
    `function(args(b)...)` (b: name -> operand buffer; pointer arguments from access_ptr).  in_place: the
    blocks it replaces keep their unit loops (not moved by compute_at).  Returns `name`."""
    from tvm import s_tir, tirx
    desc = _intrin_desc(operands, block, "loop" if in_place else "none")
    impl = _intrin_impl(operands, desc, lambda b: tirx.call_extern("void", function, *args(b)))
    s_tir.TensorIntrin.register(name, desc, impl, override=True)
    return name


class MicroKernels:
    """The micro-kernels a schedule tensorizes with, each once however many loops use it (their C is emitted
    once per kernel)."""

    def __init__(self):
        self._by_name: dict[str, dict] = {}

    def use(self, entry: dict) -> str:
        """Record `entry` (an intrinsic of simd_gemm / simd_depthwise / simd_glue); its registered name."""
        self._by_name.setdefault(entry["name"], entry)
        return entry["intrin"]

    def entries(self) -> list[dict]:
        return list(self._by_name.values())
