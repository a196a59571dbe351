"""Total deadlines for S3, HDFS and target operations (Atlas has its own in ``governance.atlas.client``).

Per-call timeouts alone let a server that accepts connections and answers slowly hold a deploy for
retries x timeout; a deadline bounds one whole operation (a lookup, one file's put, a commit, a verify read,
a target's smoke request or status query, one kubectl call), retries and backoff included; a target's load
and readiness wait are one operation bounded by its ``ready_timeout``. Each is configurable
through an environment variable, read when the registry or target is built.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator, Mapping

from governance.errors import ConfigError

S3_DEADLINE_ENV = "MODELGOV_S3_DEADLINE"
HDFS_DEADLINE_ENV = "MODELGOV_HDFS_DEADLINE"
TARGET_DEADLINE_ENV = "MODELGOV_TARGET_DEADLINE"
# generous: one file's put or verify read is one operation, so the default must cover a multi-GB transfer
DEFAULT_S3_DEADLINE = 300.0
DEFAULT_HDFS_DEADLINE = 300.0
DEFAULT_TARGET_DEADLINE = 300.0  # one target call; a load + readiness wait has the target's ready_timeout


def deadline_from_env(name: str, default: float, env: Mapping[str, str] | None = None) -> float:
    """The seconds set in ``name`` (or ``default``); a ConfigError naming the variable when unusable."""
    env = os.environ if env is None else env
    raw = env.get(name)
    try:
        value = float(raw) if raw not in (None, "") else default
    except ValueError as exc:
        raise ConfigError(f"{name}={raw!r}: give the seconds as a number") from exc
    if not value > 0:
        raise ConfigError(f"{name} must be more than 0 seconds")
    return value


class Clock:
    """The time left for one operation; shared by its attempts so that retries spend the same budget."""

    def __init__(self, deadline: float):
        self.deadline = deadline
        self.start = time.monotonic()
        self.ends = self.start + deadline

    def left(self) -> float:
        return self.ends - time.monotonic()

    def expired(self) -> bool:
        return self.left() <= 0

    def waited(self) -> float:
        return time.monotonic() - self.start


_LOCAL = threading.local()  # the running operation's Clock, per thread (publishes put files from several threads)


def current_clock() -> Clock | None:
    """The Clock of the operation running on this thread, if any: HTTP sessions cut their timeouts to it."""
    return getattr(_LOCAL, "clock", None)


@contextlib.contextmanager
def running(clock: Clock) -> Iterator[Clock]:
    """Run the block as one operation under ``clock``; nested operations keep the outer one's clock when it
    ends sooner, so an inner operation never outlives the outer deadline."""
    outer = current_clock()
    _LOCAL.clock = clock if outer is None or clock.ends < outer.ends else outer
    try:
        yield _LOCAL.clock
    finally:
        _LOCAL.clock = outer
