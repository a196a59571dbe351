"""SIGTERM and SIGINT during a deploy become a DeployInterrupted raised where the deploy is, once.

A worker cancelling a run, a Ctrl-C or an orchestrator stopping a pod sends one of these. Raising inside the
deploy lets it compensate exactly as for a failure (the target put back, the attempt recorded failed with
reason "interrupted"); a second signal during that compensation is logged and ignored so the cleanup can
finish. Outside the main thread signals cannot be handled here, and the block runs unprotected (logged).
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
_warned: list[bool] = []


@contextlib.contextmanager
def interrupts_raise() -> Iterator[None]:
    """Within the block, the first SIGTERM/SIGINT raises DeployInterrupted; later ones are ignored."""
    if threading.current_thread() is not threading.main_thread():
        if not _warned:  # once per process: a batch of 100 would say it 100 times
            _warned.append(True)
            log.warning("deploys run outside the main thread: SIGTERM/SIGINT cannot be turned into a compensated "
                        "failure there; a killed run is settled by the next deploy to the target")
        yield
        return
    raised: list[int] = []

    def handler(signum, frame):  # noqa: ARG001
        if raised:
            log.warning("signal %s ignored: already compensating an interrupted deploy", signum)
            return
        raised.append(signum)
        raise DeployInterrupted(signum)

    previous = {sig: signal.signal(sig, handler) for sig in SIGNALS}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
