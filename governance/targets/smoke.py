"""Compare a smoke-test answer with the owner's ``examples/response.json``, tolerating float noise.

The expected response is a pattern: every key it names must match, keys it leaves out (request ids,
timestamps, the server's model_version) are ignored; lists must have the same length; numbers match
within a relative tolerance, because serving runtimes print floats differently.
"""

from __future__ import annotations

import math
from typing import Any

from governance.errors import TargetError

REL_TOL = 1e-6
ABS_TOL = 1e-9


def first_mismatch(actual: Any, expected: Any, path: str = "$", *, rel_tol: float = REL_TOL,
                   abs_tol: float = ABS_TOL) -> str | None:
    """The first difference as ``"<json path>: <what>"``, or None when ``actual`` matches ``expected``."""
    if isinstance(expected, bool) or isinstance(actual, bool):
        return None if actual is expected else f"{path}: expected {expected!r}, got {actual!r}"
    if isinstance(expected, int | float) and isinstance(actual, int | float):
        if math.isclose(actual, expected, rel_tol=rel_tol, abs_tol=abs_tol):
            return None
        return f"{path}: expected {expected!r}, got {actual!r}"
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return f"{path}: expected an object, got {type(actual).__name__}"
        for key, value in expected.items():
            if key not in actual:
                return f"{path}.{key}: missing"
            found = first_mismatch(actual[key], value, f"{path}.{key}", rel_tol=rel_tol, abs_tol=abs_tol)
            if found:
                return found
        return None
    if isinstance(expected, list):
        if not isinstance(actual, list):
            return f"{path}: expected a list, got {type(actual).__name__}"
        if len(actual) != len(expected):
            return f"{path}: expected {len(expected)} items, got {len(actual)}"
        for i, (a, e) in enumerate(zip(actual, expected, strict=True)):
            found = first_mismatch(a, e, f"{path}[{i}]", rel_tol=rel_tol, abs_tol=abs_tol)
            if found:
                return found
        return None
    return None if actual == expected else f"{path}: expected {expected!r}, got {actual!r}"


def responses_match(actual: Any, expected: Any, *, rel_tol: float = REL_TOL, abs_tol: float = ABS_TOL) -> bool:
    """True when ``actual`` matches the ``expected`` pattern (see module doc)."""
    return first_mismatch(actual, expected, rel_tol=rel_tol, abs_tol=abs_tol) is None


def shorten(text: str, limit: int = 300) -> str:
    """A response body cut down for an error message."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def check_expected(answer: Any, expected: Any | None, *, where: str, strict: bool = True) -> bool | None:
    """Compare a smoke answer with the staged expectation: None when there is none, True when it matches;
    a mismatch raises TargetError naming the target and the first difference (or returns False if not strict)."""
    if expected is None:
        return None
    mismatch = first_mismatch(answer, expected)
    if mismatch and strict:
        raise TargetError(f"{where}: smoke test answer differs from examples/response.json at {mismatch}")
    return mismatch is None
