"""What the models of one batch run share of Atlas, so that the run's Atlas traffic grows by the records each
model must write and read, not by checks that hold for the whole run (issue 23).

- Atlas's status, our types and the outbox replay are checked once per run (``Ledger.open``), by the first
  model to get there; the others open their ledger ``unchecked`` (no Atlas call; the outbox is still
  replayed first whenever it holds records for this Atlas).
- The records of the run's models are read ahead in bulk (``read_ahead``: their projects and builds, a few
  calls per hundred models) for the reference check before each model is published; the same check is made
  again under the target's lock with one consistent read of that model, which is what decides.
- Records that runs which died left ``deploying`` for *other* models on a target are settled once per run and
  target, by the run's first governed deploy there (under the target's lock): the run's later deploys to that
  target come after it under the same lock, and a run that dies itself is settled by the next one.
What stays per model is what the protocol needs: the reference check under the target's lock (one read), the
intent before the target is touched, its read-back (another run may have written the same version at the same
moment), and the outcome: four calls for a new model.
"""

from __future__ import annotations

import logging
import threading

from governance.atlas.constants import DEFAULT_NAMESPACE
from governance.deploy.ledger import Ledger
from governance.deploy.reference import ModelEntities
from governance.errors import AtlasError

log = logging.getLogger(__name__)


class BatchRun:
    """One batch run's shared Atlas state; safe to use from the run's threads."""

    def __init__(self, atlas_url: str | None, namespace: str = DEFAULT_NAMESPACE):
        self.atlas_url = atlas_url
        self.namespace = namespace
        self._checked = False
        self._check_lock = threading.Lock()
        self._settled: set[str] = set()
        self._settled_lock = threading.Lock()
        self._ahead: dict[str, ModelEntities] = {}

    def open_ledger(self) -> Ledger:
        """A ledger for one model of the run: the first checks Atlas (status, types, outbox), the rest reuse
        that check. A failed check is not remembered: the next model checks again."""
        with self._check_lock:
            if not self._checked:
                ledger = Ledger.open(self.atlas_url, self.namespace)
                self._checked = True
                return ledger
        return Ledger.unchecked(self.atlas_url, self.namespace)

    def read_ahead(self, names: list[str]) -> None:
        """Read the records of these models in bulk for their checks before publishing. Atlas unreachable: each
        model reads its own, as a single deploy does (and fails its preflight there if Atlas stays down)."""
        if not names:
            return
        try:
            ledger = self.open_ledger()
        except AtlasError as exc:
            log.warning("could not read the batch's records ahead (%s): each model reads its own", exc)
            return
        try:
            found = ledger.read_models(names)
        except AtlasError as exc:
            log.warning("could not read the batch's records ahead (%s): each model reads its own", exc)
            return
        finally:
            ledger.close()
        with self._settled_lock:
            self._ahead.update(found)

    def read_ahead_of(self, name: str) -> ModelEntities | None:
        """The model's records as read ahead, or None (not read: the check reads them itself)."""
        with self._settled_lock:
            return self._ahead.get(name)

    def settles_others_on(self, target_detail: str) -> bool:
        """Whether this deploy (holding the target's lock) still has to settle other models' stale records."""
        with self._settled_lock:
            return target_detail not in self._settled

    def others_settled_on(self, target_detail: str) -> None:
        with self._settled_lock:
            self._settled.add(target_detail)


__all__ = ["BatchRun"]
