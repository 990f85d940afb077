"""From a scheduled PrimFunc to the C text of one kernel function, with the checks the library relies on:
no headers beyond <stdint.h>, bounded stack temporaries, and no stale value reused by TVM's C printer."""
from __future__ import annotations

import re

from ...errors import DwsError

MAX_STACK_BYTES = 256


_SSA_NAME = re.compile(r"\bv_(?:_\d+)?\b")


_SSA_DEF = re.compile(r"^\s*[\w ]+ (v_(?:_\d+)?) = (.*);$")


_STORE = re.compile(r"^\s*(\w+)\[[^\]]*\] = ")


def stale_ssa_use(body: str) -> str | None:
    """The first line of TVM-emitted C that reuses a stale cached value, or None.

    TVM's C code generator prints each min/max operand once as `T v_N = <text>;` and reuses v_N
    wherever the same <text> is printed again in a scope where v_N is visible, without checking
    whether a buffer the text reads was stored to in between (a scalar temporary rewritten by the
    next unrolled copy).  Flags any use of v_N after a store to a buffer its definition reads, and
    any use inside a loop that starts after the definition and stores to such a buffer."""
    lines = body.splitlines()
    written = {m.group(1) for line in lines if (m := _STORE.match(line))}
    defs: dict[str, list] = {}                   # name -> [buffers read (temporaries only), stale]
    for line in lines:
        d = _SSA_DEF.match(line)
        used = _SSA_NAME.findall(d.group(2) if d else line)
        if any(defs.get(n, [set(), False])[1] for n in used):
            return line.strip()
        if d:
            reads = set(re.findall(r"\b(\w+)\[", d.group(2))) & written
            for n in used:
                reads |= defs.get(n, [set()])[0]
            defs[d.group(1)] = [reads, False]
            continue
        store = _STORE.match(line)
        for entry in defs.values():
            if entry[0] and ((store and store.group(1) in entry[0]) or re.match(r"\s*for \(", line)):
                entry[1] = True
    return None


def lower_kernel(func, name: str, where: str, max_stack_bytes: int = MAX_STACK_BYTES, calls: bool = False,
                 attributes: str = "") -> str:
    """`func` lowered to one `static` C function `name`, checked for what the library cannot take.
    calls: `func` calls micro-kernels (a tensorized kernel, lower.prim_func_to_c); attributes: text before
    the definition."""
    from .lower import prim_func_to_c
    try:
        # Every kernel's output is its last parameter (te.create_prim_func order).
        text = prim_func_to_c(func, name, with_includes=False, max_stack_bytes=max_stack_bytes,
                              outputs=(len(func.params) - 1,), calls=calls)
    except DwsError as exc:
        raise DwsError(f"{where}: {exc}") from None
    if re.search(r"\b(bool|true|false)\b|#include", text):
        raise DwsError(f"{where}: TVM emitted C that needs headers beyond <stdint.h>")
    stale = stale_ssa_use(text)
    if stale:
        raise DwsError(f"{where}: this schedule makes TVM's C code generator reuse a stale cached value "
                       f"({stale!r}); choose other schedule parameters")
    return f"{attributes}static {text}"
