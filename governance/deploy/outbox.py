"""A durable local outbox for Atlas records that could not be written: nothing is lost while Atlas is down.

One JSON file per record in ``<state dir>/outbox/``, written to a temp name, fsync'd, renamed, and the
folder fsync'd, so a crash leaves either the whole record or none. Names sort in write order
(``<time>-<seq>-<id>.json``). ``sync`` replays them oldest first; each is an upsert by qualifiedName (an
entity/bulk of a deployment record, or a partial update of one deployment), so a replay interrupted between
Atlas's answer and the file's removal is applied again harmlessly: exactly one entity per qualifiedName.
One sync at a time (an fcntl lock on the folder). The folder is ``outbox/`` in ``governance.config.state_dir()``.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from governance.config import state_dir
from governance.durable import fsync_dir, write_synced
from governance.errors import GovernanceError

_seq = itertools.count()


@dataclass(frozen=True)
class OutboxEntry:
    """One pending Atlas write: ``kind`` "deployment" (a deployment record's payload), "update" (a partial
    update of one deployment) or "entities" (a plain bulk upsert, e.g. an ungoverned-model finding)."""

    path: Path
    kind: str
    atlas_url: str
    description: str
    created: str
    payload: dict

    def to_row(self) -> dict:
        return {"id": self.path.stem, "kind": self.kind, "atlas": self.atlas_url, "created": self.created,
                "description": self.description}


class Outbox:
    """Pending Atlas records, one fsync'd file each, replayed in order by ``sync``."""

    def __init__(self, folder: Path | None = None):
        self.folder = Path(folder) if folder else state_dir() / "outbox"

    def append(self, kind: str, payload: dict, *, atlas_url: str, description: str) -> OutboxEntry:
        """Store one record durably; returns it once it is on disk."""
        self.folder.mkdir(parents=True, exist_ok=True)
        now = datetime.now(UTC)
        name = f"{now:%Y%m%dT%H%M%S%f}-{os.getpid():07d}-{next(_seq):06d}-{uuid.uuid4().hex[:8]}"
        body = {"kind": kind, "atlas_url": atlas_url, "description": description,
                "created": now.isoformat(timespec="seconds"), "payload": payload}
        final = self.folder / f"{name}.json"
        tmp = self.folder / f".{name}.tmp"
        write_synced(tmp, json.dumps(body, sort_keys=True).encode("utf-8"))
        os.rename(tmp, final)
        fsync_dir(self.folder)
        return self._read(final)

    def pending(self) -> list[OutboxEntry]:
        if not self.folder.is_dir():
            return []
        return [self._read(p) for p in sorted(self.folder.glob("*.json"))]

    def sync(self, ledger_atlas, *, only_url: str | None = None) -> tuple[list[OutboxEntry], list[OutboxEntry]]:
        """Replay pending records oldest first into ``ledger_atlas`` (an AtlasClient); stop at the first
        failure so order is kept. Returns (replayed, still pending). ``only_url``: replay only records meant
        for that Atlas (others stay)."""
        from governance.deploy.payload import apply_deployment

        replayed: list[OutboxEntry] = []
        with self._locked():
            entries = self.pending()
            for index, entry in enumerate(entries):
                if only_url and entry.atlas_url.rstrip("/") != only_url.rstrip("/"):
                    continue
                try:
                    if entry.kind == "deployment":
                        apply_deployment(ledger_atlas, entry.payload)
                    elif entry.kind == "update":
                        p = entry.payload
                        ledger_atlas.partial_update_by_unique(p["type_name"], p["qualified_name"], p["attributes"])
                    elif entry.kind == "entities":
                        ledger_atlas.upsert_entities(entry.payload["entities"])
                    else:
                        raise GovernanceError(f"{entry.path}: unknown outbox record kind {entry.kind!r}")
                except GovernanceError:
                    return replayed, [e for e in entries[index:]]
                entry.path.unlink()
                fsync_dir(self.folder)
                replayed.append(entry)
        return replayed, self.pending()

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.folder.mkdir(parents=True, exist_ok=True)
        with (self.folder / ".lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    @staticmethod
    def _read(path: Path) -> OutboxEntry:
        try:
            body = json.loads(path.read_text(encoding="utf-8"))
            return OutboxEntry(path, body["kind"], body.get("atlas_url", ""), body.get("description", ""),
                               body.get("created", ""), body["payload"])
        except (OSError, ValueError, KeyError) as exc:
            raise GovernanceError(f"outbox record {path} is unreadable: {exc}") from exc

