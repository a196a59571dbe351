"""XLSX exports (``openpyxl``): one sheet, one header row, then one row per record, typed as a spreadsheet
reads it: numbers as numbers, datetimes and dates as dates (Excel has no time zones: times are written in
UTC, which the header says), text as text.

openpyxl stores any string that starts with ``=`` as a formula, and a spreadsheet runs ``+``, ``-`` and ``@``
ones too, so every text cell goes through ``spreadsheet_cell`` (OWASP: a leading ``'``) and is typed as a
string; nothing a record holds can become a formula.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from pathlib import Path

from governance.safe_output import spreadsheet_cell

DATETIME_FORMAT = "yyyy-mm-dd hh:mm:ss.000"
DATE_FORMAT = "yyyy-mm-dd"


def write_xlsx(path: Path, rows: Iterable[Mapping], fields: Sequence[str], *, sheet: str,
               headers: Mapping[str, str] | None = None) -> None:
    """``rows`` as an XLSX workbook at ``path``; ``headers`` renames columns (e.g. ``registeredTime (UTC)``)."""
    from openpyxl import Workbook

    book = Workbook()
    ws = book.active
    ws.title = sheet
    ws.append([(headers or {}).get(f, f) for f in fields])
    for row in rows:
        ws.append([_cell(row.get(f)) for f in fields])
        for cell in ws[ws.max_row]:
            if isinstance(cell.value, datetime):
                cell.number_format = DATETIME_FORMAT
            elif isinstance(cell.value, date):
                cell.number_format = DATE_FORMAT
            elif isinstance(cell.value, str):
                cell.data_type = "s"  # never a formula, whatever it starts with
    ws.freeze_panes = "A2"
    book.save(path)


def _cell(value: object) -> object:
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None)  # Excel has no time zones: UTC, as the header says
    if isinstance(value, (date, int, float)) or value is None:
        return value
    return spreadsheet_cell(str(value))
