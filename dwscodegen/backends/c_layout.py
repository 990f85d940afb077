"""The layout pass every generated C file goes through: each line re-indented by its brace depth, one blank line
between top-level definitions, never two blank lines in a row.

Templates are written for a reader of the template (Jinja blocks indented, macros reused at several depths), so
the C they produce is indented by accident; this pass owns the C's indentation instead. It changes nothing but
leading whitespace and blank lines (tests/test_c_layout.py compares token streams):
- 4 spaces per open brace; `extern "C" {` does not indent;
- a line inside open parentheses or brackets stays aligned just after the innermost one if it was aligned
  there, and is indented one level past its statement otherwise; a statement continued on the next line
  (outside parentheses) is indented one more level;
- `case`, `default` and goto labels one level out, so the statements under them sit at the block's level;
- preprocessor lines at column 0, their backslash-continued lines untouched; #if / #else branches each start
  from the depth at the #if (so a brace opened in both does not count twice);
- comment lines keep their place relative to the comment's first line (` * ` lines one column past `/*`);
  braces and parentheses inside comments, strings and character constants do not count.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

INDENT = 4
# What the scanner stops at: comment and literal starts, brackets.
_TOKEN = re.compile(r"//|/\*|[\"'{}()\[\]]")
_LITERAL_END = {'"': re.compile(r'(?:[^"\\\n]|\\.)*"'), "'": re.compile(r"(?:[^'\\\n]|\\.)*'")}
_COMMENT_END = re.compile(r"\*/")
_LABEL = re.compile(r"(?:case\b[^:]*|default\s*|(?!default\b)[A-Za-z_]\w*):(?!:)")
_AGGREGATE = re.compile(r"\b(?:struct|union|enum)\b")
_EXTERN_C = re.compile(r'\bextern\s+"C"\s*$')
_CONDITIONAL = re.compile(r"#\s*(if|ifdef|ifndef|elif|else|endif)\b")
# A top-level function definition or declaration starts here (after `};` of an array it gets a blank line).
_FUNCTION_START = re.compile(r"(?:(?:static|extern|inline|const|[A-Z_]+)\s+)*[A-Za-z_][\w ]*?[\s*]\w+\(")


@dataclass(frozen=True)
class _Open:
    char: str           # "{", "(" or "["
    kind: str           # braces: "block" | "list" (initialiser, struct, enum) | "extern"
    column: int         # output column of the bracket
    source_column: int  # its column in the input
    indent: int         # output indent of the line that opened it


@dataclass
class _State:
    opens: list[_Open] = field(default_factory=list)
    last: str = ""              # last character of code seen (outside comments), "" before any
    in_comment: bool = False
    comment_column: int = 0     # output column of the open comment's "/*"
    comment_shift: int = 0      # output minus input column of that "/*"

    def copy(self) -> _State:
        return _State(list(self.opens), self.last, self.in_comment, self.comment_column, self.comment_shift)

    def level(self, closing: bool) -> int:
        braces = [o for o in self.opens if o.char == "{" and o.kind != "extern"]
        if closing and self.opens and self.opens[-1].char == "{" and self.opens[-1].kind != "extern":
            return len(braces) - 1
        return len(braces)


def _indent(state: _State, body: str, source_indent: int) -> int:
    """Output indent of the code line `body` (input indent `source_indent`) in `state`."""
    top = state.opens[-1] if state.opens else None
    if top is not None and top.char != "{":
        if body[0] in ")]":
            return top.indent
        if source_indent == top.source_column + 1:
            return top.column + 1
        return top.indent + INDENT
    base = state.level(closing=body[0] == "}") * INDENT
    if body[0] in "{}" or (top is not None and top.kind == "list"):
        return base
    if _LABEL.match(body) and top is not None:
        return max(0, base - INDENT)
    if state.last and state.last not in ";{}:":
        return base + INDENT        # the previous line's statement goes on
    return base


def _brace_kind(state: _State, code: str, before: str) -> str:
    """What a "{" opens, from the code before it on its line and the last code character before it."""
    if _EXTERN_C.search(code):
        return "extern"
    enclosing = state.opens[-1] if state.opens else None
    if (before and before in "=,(") or (before == "{" and enclosing is not None and enclosing.kind == "list"):
        return "list"
    return "list" if _AGGREGATE.search(code) else "block"


def _scan(state: _State, body: str, indent: int, source_indent: int, brackets: bool = True) -> list[int]:
    """Advance `state` over one line's text `body` (placed at output column `indent`; a preprocessor line
    without `brackets`); returns what each top-level brace this line closes ended (1 a function body,
    2 an initialiser or aggregate), for the blank-line rule."""
    closed: list[int] = []
    pos = 0
    if state.in_comment:
        end = _COMMENT_END.search(body)
        if end is None:
            return closed
        state.in_comment = False
        pos = end.end()
    code_start, code_end = pos, len(body)
    while True:
        m = _TOKEN.search(body, pos)
        if m is None:
            break
        token, start = m.group(), m.start()
        code = body[code_start:start]
        if token == "//":
            code_end = start
            break
        if token == "/*":
            end = _COMMENT_END.search(body, m.end())
            if end is None:
                state.in_comment = True
                state.comment_column = indent + start
                state.comment_shift = indent - source_indent
                code_end = start
                break
            pos = end.end()
            continue
        if token in _LITERAL_END:
            end = _LITERAL_END[token].match(body, m.end())
            pos = end.end() if end else len(body)
            continue
        pos = m.end()
        if not brackets:
            continue
        if token in "{([":
            code = _strip_comments(code).rstrip()
            kind = _brace_kind(state, code, code[-1] if code else state.last) if token == "{" else ""
            state.opens.append(_Open(token, kind, indent + start, source_indent + start, indent))
        elif state.opens:
            opened = state.opens.pop()
            if token == "}" and opened.kind != "extern" and state.level(closing=False) == 0:
                closed.append(1 if opened.kind == "block" else 2)
        state.last = token
    tail = _strip_comments(body[code_start:code_end]).rstrip()
    if tail and brackets:
        state.last = tail[-1]
    return closed


def _strip_comments(code: str) -> str:
    """`code` without its complete /* */ comments (literals left alone; only the last character matters)."""
    return re.sub(r"/\*.*?\*/", " ", code) if "/*" in code else code


def layout_c(text: str) -> str:
    """`text` (a C source or header) laid out: see the module docstring."""
    state = _State()
    conditionals: list[list] = []   # per open #if: [state at the #if, state at the end of its first branch]
    lines: list[str] = []
    ends: dict[int, int] = {}       # output line index -> 1 after a function body, 2 after a top-level `};`
    continued = False
    for line in text.split("\n"):
        body = line.lstrip(" \t")
        source_indent = len(line) - len(body)
        if continued:
            lines.append(line)
            continued = line.endswith("\\")
            continue
        if not body:
            if lines and lines[-1] == "":
                continue
            lines.append("")
            continue
        if state.in_comment:
            column = state.comment_column + 1 if body.startswith("*") else max(0, source_indent + state.comment_shift)
            lines.append(" " * column + body)
            _scan(state, body, column, source_indent)
        elif body.startswith("#"):
            lines.append(body)
            _conditional(state, conditionals, body)
            _scan(state, body, 0, source_indent, brackets=False)
        else:
            column = _indent(state, body, source_indent)
            lines.append(" " * column + body)
            for kind in _scan(state, body, column, source_indent):
                ends[len(lines) - 1] = kind
        continued = line.endswith("\\")
    return "\n".join(_separate_definitions(lines, ends))


def _conditional(state: _State, conditionals: list[list], body: str) -> None:
    """#if / #elif / #else / #endif: every branch starts from the state at its #if; after #endif the first
    branch's end state holds (the branches of generated code open and close the same braces)."""
    m = _CONDITIONAL.match(body)
    if m is None:
        return
    directive = m.group(1)
    if directive.startswith("if"):
        conditionals.append([state.copy(), None])
    elif not conditionals:
        return
    elif directive in ("elif", "else"):
        entry = conditionals[-1]
        if entry[1] is None:
            entry[1] = state.copy()
        _restore(state, entry[0])
    else:
        start, first = conditionals.pop()
        if first is not None:
            _restore(state, first)


def _restore(state: _State, saved: _State) -> None:
    state.opens, state.last = list(saved.opens), saved.last


def _separate_definitions(lines: list[str], ends: dict[int, int]) -> list[str]:
    """One blank line after each function body, and after a top-level initialiser followed by a function or a
    comment; consecutive arrays stay together. Blank-line runs are already single."""
    out: list[str] = []
    for i, line in enumerate(lines):
        out.append(line)
        kind = ends.get(i)
        if kind is None or i + 1 >= len(lines):
            continue
        following = lines[i + 1]
        if following == "" or following.startswith(("#endif", "#else", "#elif", "}")):
            continue
        if kind == 1 or following.startswith("/*") or _FUNCTION_START.match(following):
            out.append("")
    return out
