"""SIGTERM and SIGINT for deploys that run on worker threads (a batch): a stop request they act on themselves.

Python runs signal handlers on the main thread only, so a batch's deploys (one thread each) never see the
signal; before this, a SIGTERM to a batch killed the process with its rollouts half done, left for the next
run to settle. Now the main thread, while it waits for them (``stops_forwarded``), turns the first signal
into a stop request, and each deploy raises DeployInterrupted on its own thread at its next interruption
point (every HTTP request, every kubectl call), once. It then compensates exactly as for a failure (the
target put back, the attempt recorded failed with reason "interrupted"); the interruption points it passes
while doing so do not raise again. Deploys that have not started yet do not start.

Only code inside ``stoppable`` (a governed deploy, which holds the target's lock and knows how to put it
back) is interrupted; a registry publish or an Atlas read elsewhere runs to its end.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Iterator

from governance.errors import DeployInterrupted

log = logging.getLogger(__name__)
SIGNALS = (signal.SIGTERM, signal.SIGINT)

_requested = threading.Event()
_signum: list[int] = [signal.SIGTERM]
_local = threading.local()  # per thread: armed (inside a stoppable block), raised (already interrupted once)


def stop_requested() -> bool:
    return _requested.is_set()


def request_stop(signum: int) -> None:
    """Ask every deploy running in ``stoppable`` on another thread to stop at its next interruption point."""
    _signum[0] = signum
    _requested.set()


@contextlib.contextmanager
def stoppable() -> Iterator[None]:
    """Within the block (one deploy on a worker thread), a stop request raises DeployInterrupted at the next
    interruption point, once; at once if it came before the block."""
    _local.armed, _local.raised = True, False
    try:
        interruption_point()
        yield
    finally:
        _local.armed = False


def interruption_point() -> None:
    """Raise DeployInterrupted if a stop was requested and this thread is in a ``stoppable`` block that has not
    been interrupted yet; else nothing. Cheap: called before every external call."""
    if _requested.is_set() and getattr(_local, "armed", False) and not getattr(_local, "raised", False):
        _local.raised = True
        raise DeployInterrupted(_signum[0])


@contextlib.contextmanager
def stops_forwarded() -> Iterator[None]:
    """On the main thread, while deploys run on other threads: the first SIGTERM/SIGINT becomes a stop request
    (the main thread keeps waiting for them to put their targets back); later ones are logged and ignored."""
    if threading.current_thread() is not threading.main_thread():
        log.warning("a batch outside the main thread cannot receive SIGTERM/SIGINT; a killed run is settled by "
                    "the next deploy to the target")
        yield
        return

    def handler(signum, frame):  # noqa: ARG001
        if _requested.is_set():
            log.warning("signal %s ignored: the batch's deploys are already stopping", signum)
            return
        log.warning("signal %s: stopping the batch; each running deploy puts its target back and is recorded "
                    "interrupted, and no other deploy starts", signum)
        request_stop(signum)

    _requested.clear()
    try:
        with signals_handled_by(handler):
            yield
    finally:
        _requested.clear()


@contextlib.contextmanager
def signals_handled_by(handler) -> Iterator[None]:  # handler(signum, frame); main thread only
    """SIGTERM and SIGINT go to ``handler`` within the block; the previous handlers come back after it."""
    previous = {sig: signal.signal(sig, handler) for sig in SIGNALS}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
