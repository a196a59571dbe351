"""Java ``.properties`` parsing with line numbers, so every metadata problem can name its line.

Follows java.util.Properties.load(Reader): ``=``, ``:`` or whitespace separators, ``#``/``!`` comments,
backslash continuation lines (leading whitespace of the next line dropped), escapes ``\\t \\n \\r \\f \\uXXXX``
and escaped separators. Lines end only at ``\n``, ``\r`` or ``\r\n``, as in Java (Python's ``splitlines`` would
also split at NEL, U+2028, form feed and others, which Java keeps as text). ``metadata.txt`` is read as
UTF-8; the legacy ``modelMetadata.txt`` the original framework read with Properties.load(InputStream), i.e.
ISO-8859-1 (see ``validate``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_LINE_END = re.compile(r"\r\n|\r|\n")  # exactly java.util.Properties' line terminators
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
    lines = _LINE_END.split(text)
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
