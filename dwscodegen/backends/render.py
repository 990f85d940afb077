"""The Jinja environment for C templates, and deterministic C literal formatting."""
from __future__ import annotations

import re
import textwrap
from functools import lru_cache

import jinja2
import numpy as np

from ..paths import TEMPLATES_DIR

C_TYPES = {"float32": "float", "int8": "int8_t", "int32": "int32_t"}


def c_float(value) -> str:
    """Shortest float32 literal that reads back to the same float (deterministic, exact)."""
    v = np.float32(value)
    if not np.isfinite(v):
        raise ValueError(f"non-finite constant {v}")
    text = np.format_float_scientific(v, unique=True, trim="-", exp_digits=2)
    mantissa, exponent = text.split("e")
    exponent = int(exponent)
    if -4 <= exponent < 8:
        text = np.format_float_positional(v, unique=True, trim="-")
    if "." not in text and "e" not in text:
        text += ".0"
    return text + "f"


def c_int(value) -> str:
    v = int(value)
    # INT32_MIN cannot be written as a plain literal in C.
    return "(-2147483647 - 1)" if v == -(1 << 31) else str(v)


def plus_term(value) -> str:
    """' + 5', ' - 22' or '' for 0: how a person writes adding a constant."""
    v = int(value)
    return f" + {v}" if v > 0 else f" - {-v}" if v < 0 else ""


def c_index(dims, scale: int = 1) -> str:
    """A row-major offset as a person writes it: `dims` lists (index, size) from the outermost dimension in,
    giving ((i0 * size1 + i1) * size2 + i2) * scale. An index of None is 0 (a loop of one, left out), an int
    index is a constant (folded with the constants around it), and a factor of 1 is not written."""
    acc = 0                                         # C text so far, or an int while every part is constant
    for index, size in dims:
        if size != 1:
            acc = acc * size if isinstance(acc, int) else _times(acc, size)
        if index is None:
            continue
        if isinstance(index, int):
            acc = acc + index if isinstance(acc, int) else _plus_constant(acc, index)
        else:
            acc = _plus_constant(str(index), acc) if isinstance(acc, int) else f"{acc} + {index}"
    if isinstance(acc, int):
        return str(acc * scale)
    return acc if scale == 1 else _times(acc, scale)


def c_affine(index, factor: int = 1, offset: int = 0):
    """`index * factor + offset` as a person writes it: no `* 1`, no `+ 0`; an int (or None, 0) index folds to
    an int, which c_index and c_plus fold further."""
    if index is None or isinstance(index, int):
        return (index or 0) * factor + offset
    term = str(index) if factor == 1 else f"{_grouped(str(index))} * {factor}"
    return term + plus_term(offset)


def c_plus(base: str, offset) -> str:
    """`base + offset`, `base - n` for a negative constant, or `base` for an offset of 0 (c_index's zero)."""
    text = str(offset)
    if text == "0":
        return str(base)
    if text.startswith("-") and text[1:].isdigit():
        return f"{base} - {text[1:]}"
    return f"{base} + {text}"


def _times(expr: str, factor: int) -> str:
    """`expr * factor`, a product of a name (or a parenthesised sum) and a constant folded (`oy * 8` times 8 is
    `oy * 64`, `(oy - 1) * 5` times 64 is `(oy - 1) * 320`)."""
    product = re.fullmatch(r"(\w+|\([^()]*\)) \* (\d+)", expr)
    if product:
        return f"{product.group(1)} * {int(product.group(2)) * factor}"
    return f"{_grouped(expr)} * {factor}"


def _plus_constant(expr: str, value: int) -> str:
    """`expr + value` with a constant `expr` ends in folded into value (`ox - 1` plus -8 is `ox - 9`)."""
    term = re.fullmatch(r"(.+) ([+-]) (\d+)", expr)
    if term and "?" not in term.group(1):
        expr, value = term.group(1), value + (int(term.group(3)) if term.group(2) == "+" else -int(term.group(3)))
    return expr + plus_term(value)


def _grouped(expr: str) -> str:
    return f"({expr})" if " + " in expr or " - " in expr else expr


def c_array_body(values, per_line: int = 16, indent: str = "    ") -> str:
    """Array initialiser rows of `per_line` values each."""
    flat = np.asarray(values).reshape(-1)
    fmt = c_float if flat.dtype.kind == "f" else c_int
    items = [fmt(v) for v in flat]
    rows = [", ".join(items[i:i + per_line]) for i in range(0, len(items), per_line)]
    return ",\n".join(indent + r for r in rows)


def reindent(text: str, spaces: int) -> str:
    """`text` with its common indentation replaced by `spaces` and no trailing newline (macros written for a
    loop body, reused at the top of a function)."""
    return textwrap.indent(textwrap.dedent(text), " " * spaces).rstrip("\n")


def c_identifier(text: str) -> str:
    ident = re.sub(r"\W", "_", text)
    return ident if re.match(r"[A-Za-z_]", ident) else "_" + ident


def comment_safe(text: str) -> str:
    """A user's name inside a /* */ comment: no comment start or end, no trigraph (-std=c99 has them), no
    control characters."""
    text = re.sub(r"[\x00-\x1f\x7f]", "?", text)
    return re.sub(r"\?(?=\?)", "? ", text.replace("*/", "* /").replace("/*", "/ *"))


SCRATCH_TYPES = {"int8_t": 1, "int16_t": 2, "int32_t": 4, "float": 4}
SCRATCH_ALIGN = 16   # each view of a kernel's scratch starts at a multiple of this (the arena's ALIGN)


def scratch_view(k: dict, ctype: str, name: str, dims) -> str:
    """A template's scratch buffer `ctype name[dims...]` (Kernel.scratch says which buffers are scratch) as a
    view into the kernel's `void *restrict scratch` parameter, after the views declared before it (each
    SCRATCH_ALIGN-aligned); recorded in the kernel's context (`scratch_views`: name -> offset, bytes, alignment),
    which is where Kernel.scratch comes from. The C reads as the array did: `name[i][j]`."""
    views = k.setdefault("scratch_views", {})
    dims = [int(d) for d in dims]
    if name not in views:
        offset = max((_align_to(o + n, SCRATCH_ALIGN) for o, n, _ in views.values()), default=0)
        views[name] = (offset, SCRATCH_TYPES[ctype] * int(np.prod(dims)), SCRATCH_TYPES[ctype])
    offset = views[name][0]
    inner = "".join(f"[{d}]" for d in dims[1:])
    pointer = f"(*const {name}){inner}" if inner else f"*const {name}"
    if offset == 0:
        return f"{ctype} {pointer} = scratch;"
    cast = f"({ctype} (*){inner})" if inner else f"({ctype} *)"
    return f"{ctype} {pointer} = {cast}((unsigned char *)scratch + {offset});"


def scratch_of(k: dict) -> tuple[int, int]:
    """(bytes, alignment) of the scratch a rendered kernel's views take (0, 1 for none)."""
    views = k.get("scratch_views", {}).values()
    return (max((o + n for o, n, _ in views), default=0), max((a for _, _, a in views), default=1))


def _align_to(n: int, align: int) -> int:
    return (n + align - 1) // align * align


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True, autoescape=False)
    env.filters.update(plus_term=plus_term, c_float=c_float, c_int=c_int, c_array=c_array_body, c_type=C_TYPES.__getitem__,
                       reindent=reindent, c_index=c_index, c_plus=c_plus,
                       c_affine=c_affine)
    env.globals.update(scratch_view=scratch_view)
    return env


def render(template: str, **context) -> str:
    return environment().get_template(template).render(**context)
