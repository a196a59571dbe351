"""Record values made safe for each place modelgov shows them: spreadsheets (CSV), terminals, Markdown.

Whatever Atlas holds is shown: owners, descriptions and failure reasons come from staged repos, and anyone
with Atlas access can write any text into a record. Shown as it is, such a value can act instead of being
read: ``=HYPERLINK(...)`` runs as a formula when a CSV opens in a spreadsheet, ``ESC[2J`` clears the
terminal (or rewrites what was printed before it), ``[/bold]`` is rich markup (and crashed the tables),
``![x](http://...)`` fetches a tracker when Prefect renders an artifact. Each helper here keeps the value
readable and makes it inert for one channel; JSON output stays exact and never goes through them.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    from rich.text import Text

# OWASP "CSV injection": a cell starting with one of these is a formula (or DDE) to a spreadsheet
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# a spreadsheet strips these before it looks at the first character, so they do not protect a formula
_IGNORED_LEAD = ' "'

# C0, DEL, C1 (ESC, CSI ...); Unicode's bidirectional overrides/isolates and line separators, which
# reorder or break what a terminal shows ("Trojan Source") without being visible themselves
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_SHORT = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}
# the characters that start an inline construct in CommonMark/GFM (links, images, emphasis, code, HTML,
# entities, strikethrough, table cells) and the backslash that escapes them
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>&|~!#])")
_PLAIN_CODE = re.compile(r"[A-Za-z0-9.:/@_-]*")


def spreadsheet_cell(value: object) -> object:
    """``value`` as a CSV cell a spreadsheet reads as text: a string that would start a formula (also behind
    leading spaces or a double quote) gets a leading ``'`` (OWASP); numbers and None stay as they are, so
    ``-1`` written from an int is still the number -1."""
    if isinstance(value, str) and value.lstrip(_IGNORED_LEAD).startswith(FORMULA_START):
        return "'" + value
    return value


def write_csv(out: IO[str], rows: Iterable[Mapping], fields: Sequence[str]) -> None:
    """The one CSV writer: a header, then ``rows`` with every cell neutralised and every text cell quoted
    (a CR inside a value cannot end the row; Python's writer leaves a bare CR unquoted otherwise)."""
    writer = csv.DictWriter(out, fieldnames=list(fields), extrasaction="ignore", lineterminator="\n",
                            quoting=csv.QUOTE_NONNUMERIC)
    writer.writeheader()
    writer.writerows({k: spreadsheet_cell("" if v is None else v) for k, v in row.items()} for row in rows)


def terminal_text(value: object) -> str:
    """``value`` as one line of plain terminal text: every control character shown escaped (``\\x1b``,
    ``\\n``, ``\\u202e``), so a record can neither move the cursor, clear the screen, recolour the output nor
    fake a line of its own. None is the empty string."""
    if value is None:
        return ""
    return _CONTROL.sub(_escaped, str(value))


def plain(value: object) -> Text:
    """``value`` as a rich ``Text`` for tables and trees: rich never parses markup (``[/bold]``) or emoji
    codes in a Text, and its control characters are escaped as in ``terminal_text``."""
    from rich.text import Text

    return Text(terminal_text(value))


def markdown_text(value: object) -> str:
    """``value`` as inline Markdown that renders as exactly its text: no links, images, HTML, emphasis, code
    or extra table cells; control characters escaped as in ``terminal_text``, newlines included."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", terminal_text(value))


def markdown_code(value: object) -> str:
    """``value`` in a code span when it is a plain identifier (a sha256, a guid); anything else as
    ``markdown_text``: a code span does not honour backslash escapes, so a backtick would end it."""
    text = terminal_text(value)
    return f"`{text}`" if text and _PLAIN_CODE.fullmatch(text) else markdown_text(text)


def markdown_block(value: object) -> str:
    """``value`` (several lines, e.g. pretty JSON) as a fenced code block shown exactly as text: the fence is
    longer than any run of backticks in it, so the value cannot close the block; control characters other
    than newlines are escaped as in ``terminal_text``."""
    text = "\n".join(terminal_text(line) for line in str("" if value is None else value).split("\n"))
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}\n{text}\n{fence}"


def _escaped(match: re.Match[str]) -> str:
    char = match.group()
    if char in _SHORT:
        return _SHORT[char]
    return f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}"
