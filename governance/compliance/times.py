"""Times as compliance reads them: ISO 8601 in, ISO 8601 with offset and milliseconds out.

Atlas stores ``date`` attributes as epoch milliseconds, so every boundary is compared in milliseconds;
printing milliseconds keeps ``history --at`` reproducible from what ``history`` shows.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

from governance.errors import ConfigError

_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def parse_moment(text: str, *, option: str, end_of_day: bool = False) -> datetime:
    """An ISO date or datetime from the command line; a value without offset is UTC.

    A bare date means the start of that day, or with ``end_of_day`` the start of the next day (so
    ``--until 2026-12-01`` includes all of 1 December).
    """
    value = text.strip()
    try:
        if _DATE_ONLY.match(value):
            moment = datetime.combine(date.fromisoformat(value), datetime.min.time(), UTC)
            return moment + timedelta(days=1) if end_of_day else moment
        moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError as exc:
        raise ConfigError(f"{option} {text!r}: not an ISO date or datetime (e.g. 2026-12-01 or "
                          f"2026-12-01T09:30:00.250+01:00)") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def to_millis(moment: datetime) -> int:
    """Epoch milliseconds, as Atlas stores dates (exact: no float rounding)."""
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return delta.days * 86_400_000 + delta.seconds * 1000 + delta.microseconds // 1000


def iso(millis: int | None) -> str | None:
    """ISO 8601 UTC with milliseconds and offset, or None for an unset date."""
    if millis in (None, "", 0):
        return None
    moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=int(millis))
    return moment.isoformat(timespec="milliseconds")
