"""Lower a scheduled TVM (0.27) PrimFunc to ONE plain C99 function with typed pointer parameters.

TVM 0.27 has no unpacked C API any more (no microTVM/CRT/AOT): `tvm.compile` for the `c` target
always wraps the kernel in the packed FFI convention (DLTensor args, TVM runtime headers).  We
therefore run the s_tir lowering pipeline ourselves, *without* AnnotateEntryFunc / SplitHostDevice /
MakePackedAPI, bind each buffer parameter to a typed pointer parameter by hand (what MakePackedAPI
would otherwise do through DLTensor), run the host finalisation passes, print with the registered
`target.build.c` code generator, and cut the one function definition out of its output.

TVM is imported lazily inside functions: the rest of the package must not pay for (or need) it.
"""
from __future__ import annotations

import re

from ...errors import DwsError

_C_NOT_CALLS = {"if", "for", "while", "switch", "return", "sizeof"}
_TVM_LEFTOVER = re.compile(r"TVM|tvm|DLTensor|DLDataType|DLDevice")


def _s_tir_passes(calls: bool):
    """The default s_tir pipeline (tvm/s_tir/pipeline.py) minus GPU-only passes and minus the
    packed-API tail (AnnotateEntryFunc, SplitHostDevice, MakePackedAPI, ...).  With `calls` (the
    function calls micro-kernels with pointers into its temporaries) without StorageRewrite: it may
    share one allocation between temporaries of different element types and leave the calls'
    tvm_access_ptr typed for the old one."""
    from tvm import s_tir, tirx
    passes = [
        s_tir.transform.CanonicalizeLoop(),
        s_tir.transform.LowerInitBlock(),
        s_tir.transform.PlanAndUpdateBufferAllocationLocation(),
        s_tir.transform.ConvertBlocksToOpaque(),
        # Shrinks compute_at'ed intermediates to their live tile (e.g. acc[1]).
        s_tir.transform.CompactBufferAllocation(),
        s_tir.transform.LowerMatchBuffer(),
        s_tir.transform.StmtSimplify(),
        s_tir.transform.LowerOpaqueBlock(),
        tirx.transform.FlattenBuffer(),
        tirx.transform.NarrowDataType(32),
        s_tir.transform.LoopPartition(),
        # enable_vectorize=False turns any vectorized loop back into a serial one: the C code
        # generator would otherwise print OpenCL-style float4, which is not C.
        tirx.transform.VectorizeLoop(False),
        tirx.transform.StorageRewrite(),
        s_tir.transform.HoistIfThenElse(),
        tirx.transform.UnrollLoop(),
        s_tir.transform.RenormalizeSplitPattern(),
        tirx.transform.StmtSimplify(),
        tirx.transform.RemoveNoOp(),
        s_tir.transform.RewriteUnsafeSelect(),
        tirx.transform.CommonSubexprElim(),
        tirx.transform.VerifyMemory(),
    ]
    return [p for p in passes if not (calls and p.info.name == "tirx.StorageRewrite")]


def _written_params(func) -> set[int]:
    """Indices of the parameters some block writes (-> non-const pointers). Read from the s_tir
    blocks' write regions, before lowering erases them; without blocks, nothing is made const."""
    from tvm import s_tir
    try:
        sch = s_tir.Schedule(func)
        blocks = [sch.get(b) for b in sch.get_child_blocks(sch.get_sblock("root"))]
    except Exception:  # no s_tir blocks (already lowered): stay safe, make nothing const
        return set(range(len(func.params)))
    written = [region.source for block in blocks for region in block.writes]
    return {i for i, p in enumerate(func.params) if any(w.same_as(p) for w in written)}


def _bind_pointer_params(func, name: str):
    """Replace each BufferType parameter by a typed pointer `T*` and declare the buffer on it.

    In TVM 0.27 buffers are Vars of BufferType and params carry that type; the C code generator
    has no C type for it.  MakePackedAPI binds them to DLTensor->data; we bind them to a plain
    pointer parameter instead (the old MakeUnpackedAPI, which no longer exists)."""
    from tvm.tirx.stmt import DeclBuffer, SeqStmt

    import tvm
    from tvm import tirx

    params, decls = [], []
    for p in func.params:
        if not tirx.is_buffer_var(p):
            params.append(p)  # scalar parameter: printed as-is
            continue
        ptr = tirx.Var(p.name, tvm.ir.PointerType(tvm.ir.PrimType(p.dtype)))
        params.append(ptr)
        decls.append(DeclBuffer(p, data=ptr))
    new = tirx.PrimFunc(params, SeqStmt(decls + [func.body]), ret_type=func.ret_type, attrs=func.attrs)
    return new.with_attr("global_symbol", name)


def _function_definition(src: str, name: str) -> tuple[list[str], str]:
    """Cut `TVM_DLL void name(params) { ... }` out of the generated translation unit.
    Returns the parameter declarations as printed and the body (between the outer braces)."""
    m = re.search(r"^(?:TVM_DLL )?void " + re.escape(name) + r"\(([^)]*)\) \{\n", src, re.M)
    if m is None:
        raise DwsError(f"TVM C codegen output has no definition of void {name}(...)")
    depth, i = 1, m.end()
    while depth:  # brace matching is safe: the generated body has no string/char literals
        c = src[i]
        depth += (c == "{") - (c == "}")
        i += 1
    params = [p.strip() for p in m.group(1).split(",") if p.strip()]
    return params, src[m.end():i - 1]


def _signature_param(decl: str, const: bool) -> str:
    """`float* in` -> `const float *restrict in` (noalias holds: TE buffers never alias)."""
    m = re.fullmatch(r"(\w+)\s*\*\s*(\w+)", decl)
    if m is None:
        return decl  # scalar parameter
    return f"{'const ' if const else ''}{m.group(1)} *restrict {m.group(2)}"


def _check_temporaries(mod, name: str, max_stack_bytes: int) -> None:
    """Reject big temporaries before LowerTVMBuiltin sees them: above 1 KiB it would emit
    TVMBackendAllocWorkspace (and, without MakePackedAPI's device attrs, fails outright); below,
    they would become stack arrays, too big for a Cortex-M stack."""
    from tvm.s_tir.analysis import calculate_allocated_bytes
    sizes = {scope: int(n) for scope, n in calculate_allocated_bytes(mod)[name].items()}
    if sum(sizes.values()) > max_stack_bytes:
        raise DwsError(
            f"{name}: temporaries need {sizes} bytes (limit {max_stack_bytes}); compute_inline them "
            "(padding), compute_at them deeper, or pass the scratch buffer as an explicit parameter")


def _lower_to_codegen_source(func, name: str, target_kind: str, max_stack_bytes: int,
                             outputs: tuple[int, ...], calls: bool) -> tuple[str, set[int]]:
    import tvm
    from tvm import tirx

    written = _written_params(func) | set(outputs)
    target = tvm.target.Target({"kind": target_kind})
    mod = tvm.IRModule({name: func.with_attr("global_symbol", name)})
    mod = tirx.transform.BindTarget(target)(mod)
    with tvm.transform.PassContext(opt_level=3):
        mod = tvm.transform.Sequential(_s_tir_passes(calls))(mod)
        _check_temporaries(mod, name, max_stack_bytes)
        mod = tvm.IRModule({name: _bind_pointer_params(mod[name], name)})
        # Host finalisation (tvm/s_tir/pipeline.py finalize_host_passes): LowerTVMBuiltin turns
        # big/dynamic allocations into TVMBackendAllocWorkspace (rejected later), LowerIntrin
        # expands intrinsics and floordiv/floormod into plain C arithmetic.
        # With `calls`, no LowerTVMBuiltin: it would put temporaries of 1 KiB and more into TVM
        # workspaces, and such a function holds none of the builtins it lowers (_check_temporaries
        # has bounded the stack).
        host = [tirx.transform.LowerIntrin()] if calls else [tirx.transform.LowerTVMBuiltin(),
                                                             tirx.transform.LowerIntrin()]
        mod = tvm.transform.Sequential(host)(mod)
    build = tvm.get_global_func("target.build." + target_kind)
    return build(mod, target).inspect_source(), written


def prim_func_to_c(func, name: str, target_kind: str = "c", *, with_includes: bool = True,
                   max_stack_bytes: int = 256, outputs: tuple[int, ...] = (), calls: bool = False) -> str:
    """Lower a scheduled PrimFunc (te.create_prim_func + s_tir.Schedule) to the source of ONE plain
    C99 function `void <name>(const float *restrict in, ..., float *restrict out)`.

    Parameters keep the PrimFunc parameter order; buffers become typed pointers, `const` when no
    block writes them, all `restrict`.  The return type is `void`.  The TVM preamble, TVM headers,
    packed wrappers, TVM_DLL and C++ guards are dropped.  With `with_includes` the text starts with
    the standard headers the body needs (<stdint.h>, and <stdbool.h>/<math.h> only when used), so
    it compiles on its own with `gcc -std=c99 -Wall -Wextra -Werror -c` and arm-none-eabi-gcc.

    `outputs` names parameters the caller knows are written, in addition to those inferred from the
    blocks' write regions (a schedule such as loop_partition can leave writes in opaque blocks that
    declare no regions). Only target_kind "c" prints C.  Raises DwsError when the result would still need the TVM
    runtime (workspace allocation, packed calls) or holds a stack temporary > max_stack_bytes.
    """
    if not re.fullmatch(r"[A-Za-z_]\w*", name):
        raise DwsError(f"{name!r} is not a C identifier")
    if target_kind != "c":
        raise DwsError(f"target_kind {target_kind!r}: only 'c' emits C source")
    src, written = _lower_to_codegen_source(func, name, target_kind, max_stack_bytes, tuple(outputs), calls)
    decls, body = _function_definition(src, name)

    leftover = _TVM_LEFTOVER.search(body)
    if leftover:
        line = body[:leftover.start()].count("\n")
        raise DwsError(f"{name}: lowered C still needs the TVM runtime ({body.splitlines()[line].strip()!r}); "
                       "temporaries must be inlined, kept small or passed as scratch parameters")

    params = [_signature_param(d, i not in written) for i, d in enumerate(decls)]
    # A parameter the schedule never touches would trip -Wunused-parameter.
    unused = [d.split()[-1] for d in decls if not re.search(r"\b%s\b" % re.escape(d.split()[-1]), body)]
    body = "".join(f"  (void){u};\n" for u in unused) + body
    text = f"void {name}({', '.join(params)}) {{\n{body}}}\n"
    if not with_includes:
        return text
    headers = ["stdint.h"]
    if re.search(r"\b(bool|true|false)\b", body):
        headers.append("stdbool.h")
    if any(f not in _C_NOT_CALLS for f in re.findall(r"\b([A-Za-z_]\w*)\s*\(", body)):
        headers.append("math.h")
    return "".join(f"#include <{h}>\n" for h in headers) + "\n" + text
