"""Progress bars for long copies: shown on a terminal, silent in CI, JSON mode and tests."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator


def progress_wanted(requested: bool) -> bool:
    return requested and sys.stderr.isatty() and not os.environ.get("CI")


@contextlib.contextmanager
def copy_progress(total_bytes: int, label: str, *, enabled: bool) -> Iterator[Callable[[int], None]]:
    """Yield an ``advance(n_bytes)`` callback; a tqdm bar when enabled and on a terminal, else a no-op."""
    if not progress_wanted(enabled):
        yield lambda n: None
        return
    from tqdm import tqdm

    with tqdm(total=total_bytes, unit="B", unit_scale=True, unit_divisor=1024, desc=label, file=sys.stderr,
              leave=False) as bar:
        yield bar.update
