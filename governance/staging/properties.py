"""Java ``.properties`` parsing with line numbers, so every metadata problem can name its line.

Follows java.util.Properties.load(Reader): ``=``, ``:`` or whitespace separators, ``#``/``!`` comments,
backslash continuation lines (leading whitespace of the next line dropped), escapes ``\\t \\n \\r \\f \\uXXXX``
and escaped separators. Files are read as UTF-8 (Properties.load(InputStream) would garble non-ASCII
owner names as ISO-8859-1, a defect of the original tool).
"""

from __future__ import annotations

from dataclasses import dataclass

_ESCAPES = {"t": "\t", "n": "\n", "r": "\r", "f": "\f"}


class PropertiesSyntaxError(ValueError):
    def __init__(self, line: int, message: str):
        self.line = line
        super().__init__(message)


@dataclass(frozen=True)
class Property:
    key: str
    value: str
    line: int  # 1-based line where the logical line starts


def _logical_lines(text: str):
    """Yield (first physical line number, logical line) pairs, joining continuations."""
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        start = i + 1
        line = lines[i].lstrip(" \t\f")
        i += 1
        if not line or line[0] in "#!":
            continue
        while _ends_with_continuation(line) and i < len(lines):
            line = line[:-1] + lines[i].lstrip(" \t\f")
            i += 1
        if _ends_with_continuation(line):
            line = line[:-1]
        yield start, line


def _ends_with_continuation(line: str) -> bool:
    backslashes = len(line) - len(line.rstrip("\\"))
    return backslashes % 2 == 1


def _unescape(raw: str, line: int) -> str:
    out: list[str] = []
    i = 0
    while i < len(raw):
        ch = raw[i]
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        i += 1
        if i >= len(raw):
            break
        nxt = raw[i]
        if nxt == "u":
            digits = raw[i + 1 : i + 5]
            if len(digits) != 4 or any(c not in "0123456789abcdefABCDEF" for c in digits):
                raise PropertiesSyntaxError(line, f"malformed \\u escape: \\u{digits}")
            out.append(chr(int(digits, 16)))
            i += 5
            continue
        out.append(_ESCAPES.get(nxt, nxt))
        i += 1
    return "".join(out)


def _split_key_value(line: str) -> tuple[str, str]:
    i = 0
    while i < len(line):
        ch = line[i]
        if ch == "\\":
            i += 2
            continue
        if ch in "=: \t\f":
            break
        i += 1
    key = line[:i]
    rest = line[i:]
    # skip whitespace, then at most one = or :, then whitespace
    rest = rest.lstrip(" \t\f")
    if rest[:1] in ("=", ":"):
        rest = rest[1:].lstrip(" \t\f")
    return key, rest


def parse_properties(text: str) -> list[Property]:
    """Parse properties text into ordered entries (later duplicates are kept; the caller decides)."""
    if text.startswith("\ufeff"):
        text = text[1:]
    result = []
    for lineno, logical in _logical_lines(text):
        raw_key, raw_value = _split_key_value(logical)
        result.append(Property(_unescape(raw_key, lineno), _unescape(raw_value, lineno), lineno))
    return result
