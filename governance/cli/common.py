"""What every ``modelgov`` command shares: exit codes, common options, and output (JSON, CSV, tables).

Output for people shows record values as plain text (``governance.safe_output``): tables and lines
never parse rich markup and show control characters escaped; CSV cells never start a formula; JSON is exact.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Iterator, Sequence

from governance.errors import ValidationError
from governance.safe_output import terminal_text, write_csv

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def atlas_opt(p: argparse.ArgumentParser) -> None:
    p.add_argument("--atlas", default=None, help="Atlas base URL (default $ATLAS_URL, modelgov.yaml or "
                                                 "http://localhost:21000)")


def config_opt(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", default=None, help="config file (default $MODELGOV_CONFIG or ./modelgov.yaml)")


def print_json(obj: object, *, sort_keys: bool = True) -> None:
    """JSON for scripts; ``sort_keys=False`` keeps the caller's field order (compliance rows, whose CSV
    columns are the same fields in the same order)."""
    print(json.dumps(obj, indent=2, sort_keys=sort_keys, ensure_ascii=False, default=str))


def print_csv(rows: Sequence[dict], fields: Sequence[str]) -> None:
    """CSV for spreadsheets: no cell starts a formula (see ``governance.safe_output.write_csv``)."""
    write_csv(sys.stdout, rows, fields)


def say(line: object, *, stderr: bool = False) -> None:
    """Print one line for people: values in it come from records, so its control characters are shown
    escaped (a value cannot clear the screen or fake a line of its own)."""
    print(terminal_text(line), file=sys.stderr if stderr else sys.stdout)


def print_problems(exc: ValidationError) -> None:
    """Every problem of a staged repo, one per line with its file and line."""
    for problem in exc.problems:
        say(problem, stderr=True)


def show(renderable, *, stderr: bool = False) -> None:
    """Print a rich renderable; to a pipe or file: plain text, wide enough that rows never wrap. Build it
    from ``governance.safe_output.plain`` values: a str cell would be parsed as markup."""
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    if stream.isatty():
        Console(stderr=stderr).print(renderable)
        return
    console = Console(width=2000, no_color=True, highlight=False)
    with console.capture() as captured:
        console.print(renderable)
    print("\n".join(line.rstrip() for line in captured.get().splitlines()), file=stream)


def prefect_defaults() -> None:
    """Sane defaults for the ephemeral Prefect API on slow machines; explicit settings win."""
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


@contextlib.contextmanager
def foreground_run() -> Iterator[None]:
    """Settings for a flow run the CLI runs in the foreground: Prefect's defaults, and no heartbeat thread.

    A sync flow joins its heartbeat thread at exit, which sleeps in 1 s steps: up to a second per deploy
    (0.9 s measured, a quarter of a warm deploy). Heartbeats let a server-side automation mark a silent run
    crashed; a foreground run has its operator watching the exit status, and a killed deploy's Atlas record is
    settled by the next deploy. Workers and served deployments keep their heartbeats; setting
    PREFECT_FLOWS_HEARTBEAT_FREQUENCY keeps them here too."""
    prefect_defaults()
    if os.environ.get("PREFECT_FLOWS_HEARTBEAT_FREQUENCY"):
        yield
        return
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        yield
