"""Relative paths that cannot leave their folder.

A manifest entry, a registry key read back from a listing, or a file name a target writes comes from data
that someone else may have written. Each is accepted only as a plain relative POSIX path: no absolute part,
no ``..`` or ``.`` segment, no empty segment (``a//b``, which ``Path`` silently turns into ``a/b`` while a
string join keeps it), no backslash (a separator elsewhere), no NUL or control character. Anything else is
refused rather than normalised, so one spelling names one file everywhere.
"""

from __future__ import annotations

import re

CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def path_problem(path: object) -> str | None:
    """Why ``path`` is not a plain relative POSIX path, or None when it is one."""
    if not isinstance(path, str):
        return f"is not a string ({type(path).__name__})"
    if not path:
        return "is empty"
    if CONTROL.search(path):
        return "contains a NUL or control character"
    if "\\" in path:
        return "contains a backslash"
    if path.startswith("/"):
        return "is absolute"
    parts = path.split("/")
    if "" in parts:
        return "has an empty segment (// or a trailing /)"
    if ".." in parts:
        return "climbs out with .."
    if "." in parts:
        return "has a . segment"
    return None


def segment_problem(name: object) -> str | None:
    """Why ``name`` is not one plain path segment (a model name, a version, a listed folder), or None."""
    problem = path_problem(name)
    if problem is None and "/" in str(name):
        return "contains a /"
    return problem
