"""SIGTERM and SIGINT during a deploy become a DeployInterrupted raised where the deploy is, once.

A worker cancelling a run, a Ctrl-C or an orchestrator stopping a pod sends one of these. Raising inside the
deploy lets it compensate exactly as for a failure (the target put back, the attempt recorded failed with
reason "interrupted"); a second signal during that compensation is logged and ignored so the cleanup can
finish. On a worker thread the same happens through ``governance.stops`` (a batch forwards the signal).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator

from governance.errors import DeployInterrupted
from governance.stops import signals_handled_by, stoppable

log = logging.getLogger(__name__)


@contextlib.contextmanager
def interrupts_raise() -> Iterator[None]:
    """Within the block, the first SIGTERM/SIGINT raises DeployInterrupted; later ones are ignored. On a worker
    thread (a batch) the signal reaches the main thread, which forwards it as a stop request
    (``governance.stops``) that the deploy acts on at its next external call."""
    if threading.current_thread() is not threading.main_thread():
        with stoppable():
            yield
        return
    raised: list[int] = []

    def handler(signum, frame):  # noqa: ARG001
        if raised:
            log.warning("signal %s ignored: already compensating an interrupted deploy", signum)
            return
        raised.append(signum)
        raise DeployInterrupted(signum)

    with signals_handled_by(handler):
        yield
