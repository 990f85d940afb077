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
    giving ((i0 * size1 + i1) * size2 + i2) * scale. An index of None is 0 (a loop of one, left out), and a
    factor of 1 is not written."""
    acc = None                                      # C text so far, None for 0
    for index, size in dims:
        if acc is not None and size != 1:
            acc = f"{_grouped(acc)} * {size}"
        if index is not None:
            acc = str(index) if acc is None else f"{acc} + {index}"
    if acc is None:
        return "0"
    return acc if scale == 1 else f"{_grouped(acc)} * {scale}"


def c_plus(base: str, offset: str) -> str:
    """`base + offset`, or `base` for an offset of "0" (c_index's zero)."""
    return base if offset == "0" else f"{base} + {offset}"


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


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True, autoescape=False)
    env.filters.update(plus_term=plus_term, c_float=c_float, c_int=c_int, c_array=c_array_body, c_type=C_TYPES.__getitem__,
                       reindent=reindent, c_index=c_index, c_plus=c_plus)
    return env


def render(template: str, **context) -> str:
    return environment().get_template(template).render(**context)
