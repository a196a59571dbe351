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
import getpass
import itertools
import json
import logging
import os
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from governance.config import state_dir
from governance.durable import fsync_dir, write_synced
from governance.errors import AtlasError, AtlasUnavailable, GovernanceError

_seq = itertools.count()
MAX_REFUSALS = 3  # syncs in which Atlas refused a record (4xx) before it moves to dead/
log = logging.getLogger(__name__)


def _who() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def refuse_credentials_text(text: str) -> str:
    """An error text as stored: URLs with a password lose it (Atlas answers never carry ours, but be sure)."""
    return re.sub(r"(://[^/@\s:]+):[^/@\s]+@", r"\1:***@", text)


def _refused(exc: GovernanceError) -> bool:
    """Atlas answered and refused this record (a 4xx other than auth, timeout or throttling)."""
    status = getattr(exc, "status", None)
    return isinstance(exc, AtlasError) and not isinstance(exc, AtlasUnavailable) and status is not None \
        and 400 <= status < 500 and status not in (401, 403, 408, 429)


def _apply(atlas, entry: OutboxEntry) -> None:
    from governance.deploy.payload import apply_deployment

    if entry.kind == "deployment":
        apply_deployment(atlas, entry.payload)
    elif entry.kind == "update":
        p = entry.payload
        atlas.partial_update_by_unique(p["type_name"], p["qualified_name"], p["attributes"])
    elif entry.kind == "entities":
        atlas.upsert_entities(entry.payload["entities"])
    else:
        raise GovernanceError(f"{entry.path}: unknown outbox record kind {entry.kind!r}")


def _rewrite(path: Path, body: dict) -> None:
    """Write ``body`` as ``path`` whole or not at all: a synced temp file renamed over it (callers sync the
    folder)."""
    tmp = path.with_name(f".{path.stem}.tmp")
    write_synced(tmp, json.dumps(body, sort_keys=True).encode("utf-8"))
    os.rename(tmp, path)


@dataclass
class SyncResult:
    """What one sync did: replayed, skipped (meant for another Atlas), held (waiting behind a refused record of
    the same deployment, or refused and to be retried), dead (moved to dead/), pending (Atlas unreachable)."""

    replayed: list = field(default_factory=list)
    skipped: list = field(default_factory=list)
    held: list = field(default_factory=list)
    dead: list = field(default_factory=list)
    pending: list = field(default_factory=list)
    error: str | None = None

    @property
    def remaining(self) -> list:
        """Every record still in line after this sync, oldest first."""
        return sorted(self.skipped + self.held + self.pending, key=lambda e: e.path.name)

    def __iter__(self):
        """``replayed, remaining = outbox.sync(...)``."""
        return iter((self.replayed, self.remaining))


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

    refusals: int = 0
    reason: str | None = None  # why it is a dead letter, or Atlas's last refusal

    @property
    def key(self) -> str:
        """The deployment (or entity) the record is about: its records replay in order."""
        p = self.payload
        if self.kind == "deployment":
            return (p.get("names") or {}).get("deployment") or self.path.stem
        if self.kind == "update":
            return p.get("qualified_name") or self.path.stem
        entities = p.get("entities") or [{}]
        return (entities[0].get("attributes") or {}).get("qualifiedName") or self.path.stem

    @property
    def state(self) -> str:
        return "dead" if self.path.parent.name == "dead" else "pending"

    def to_row(self) -> dict:
        return {"id": self.path.stem, "kind": self.kind, "atlas": self.atlas_url, "created": self.created,
                "description": self.description, "state": self.state, "refusals": self.refusals,
                "reason": self.reason}


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
        _rewrite(final, body)
        fsync_dir(self.folder)
        return self._read(final)

    def pending(self) -> list[OutboxEntry]:
        if not self.folder.is_dir():
            return []
        return [self._read(p) for p in sorted(self.folder.glob("*.json"))]

    def sync(self, ledger_atlas, *, only_url: str | None = None) -> SyncResult:
        """Replay pending records oldest first into ``ledger_atlas`` (an AtlasClient).

        Atlas unreachable, failing on its side (5xx) or refusing our credentials: stop, so order is kept.
        A record Atlas refuses (another 4xx) counts one refusal, durably in its file, and the records after it
        go on, except later records of the same deployment, which wait behind it; after ``MAX_REFUSALS``
        refusals it moves to ``dead/`` with Atlas's answer, and so do the records of its deployment waiting
        behind it (an outcome is never replayed without its intent). A 404 for a referenced entity is treated
        like any refusal: the records of one deployment replay in order, so a missing reference that stays
        missing over several syncs will not appear. ``only_url``: replay only records meant for that Atlas;
        the others are reported as skipped."""
        result = SyncResult()
        with self._locked():
            entries = self.pending()
            blocked: dict[str, OutboxEntry] = {}  # deployment key -> the refused record it waits behind
            for index, entry in enumerate(entries):
                if only_url and entry.atlas_url.rstrip("/") != only_url.rstrip("/"):
                    result.skipped.append(entry)
                    continue
                key = entry.key
                if key in blocked:
                    head = blocked[key]
                    if head.path.parent == self.dead_folder:
                        result.dead.append(self._bury(entry, f"waits behind dead-lettered {head.path.stem}"))
                    else:
                        result.held.append(entry)
                    continue
                try:
                    _apply(ledger_atlas, entry)
                except GovernanceError as exc:
                    if not _refused(exc):
                        result.pending.extend(e for e in entries[index:] if e not in result.skipped)
                        result.error = str(exc)
                        return result
                    refused = self._refuse(entry, exc)
                    blocked[key] = refused
                    (result.dead if refused.path.parent == self.dead_folder else result.held).append(refused)
                    continue
                entry.path.unlink()
                fsync_dir(self.folder)
                result.replayed.append(entry)
        return result

    # -- refusals, dead letters and an operator's decisions -------------------------------------------------
    @property
    def dead_folder(self) -> Path:
        return self.folder / "dead"

    def dead(self) -> list[OutboxEntry]:
        if not self.dead_folder.is_dir():
            return []
        return [self._read(p) for p in sorted(self.dead_folder.glob("*.json"))]

    def _refuse(self, entry: OutboxEntry, exc: GovernanceError) -> OutboxEntry:
        body = json.loads(entry.path.read_text(encoding="utf-8"))
        body["refusals"] = int(body.get("refusals") or 0) + 1
        body["last_error"] = refuse_credentials_text(str(exc))
        _rewrite(entry.path, body)
        if body["refusals"] >= MAX_REFUSALS:
            return self._bury(self._read(entry.path), f"refused by Atlas {body['refusals']} times: {body['last_error']}")
        return self._read(entry.path)

    def _bury(self, entry: OutboxEntry, reason: str) -> OutboxEntry:
        """Move one record into ``dead/`` with why, durably (it never blocks the others again)."""
        body = json.loads(entry.path.read_text(encoding="utf-8"))
        body["dead_reason"] = reason
        self.dead_folder.mkdir(parents=True, exist_ok=True)
        _rewrite(entry.path, body)
        target = self.dead_folder / entry.path.name
        os.rename(entry.path, target)
        fsync_dir(self.dead_folder)
        fsync_dir(self.folder)
        self.log("dead-letter", target.stem, reason)
        return self._read(target)

    def find(self, record_id: str) -> OutboxEntry:
        for folder in (self.folder, self.dead_folder):
            path = folder / f"{record_id}.json"
            if record_id and "/" not in record_id and path.is_file():
                return self._read(path)
        raise GovernanceError(f"no outbox record {record_id!r} in {self.folder} (`modelgov outbox list`)")

    def drop(self, record_id: str, reason: str) -> OutboxEntry:
        """Remove one record for good (e.g. one meant for an Atlas that was retired), logged."""
        with self._locked():
            entry = self.find(record_id)
            entry.path.unlink()
            fsync_dir(entry.path.parent)
            self.log("drop", record_id, f"{entry.description} (for {entry.atlas_url}): {reason}")
            return entry

    def retarget(self, record_id: str, atlas_url: str) -> OutboxEntry:
        """Send one record (pending or dead) to another Atlas: it goes back in line, refusals reset, logged."""
        with self._locked():
            entry = self.find(record_id)
            body = json.loads(entry.path.read_text(encoding="utf-8"))
            old = body.get("atlas_url", "")
            body.update(atlas_url=atlas_url.rstrip("/"), refusals=0)
            body.pop("dead_reason", None)
            target = self.folder / entry.path.name
            _rewrite(entry.path, body)
            if entry.path != target:
                os.rename(entry.path, target)
                fsync_dir(self.dead_folder)
            fsync_dir(self.folder)
            self.log("retarget", record_id, f"{entry.description}: {old} -> {atlas_url}")
            return self._read(target)

    def requeue(self, record_id: str) -> OutboxEntry:
        """A dead letter back in line for the same Atlas (after the cause was fixed), logged."""
        entry = self.find(record_id)
        if entry.path.parent != self.dead_folder:
            raise GovernanceError(f"outbox record {record_id} is pending, not a dead letter")
        return self.retarget(record_id, entry.atlas_url)

    def log(self, action: str, record_id: str, detail: str) -> None:
        """Append one line (when, who, what) to ``operations.log``: the trail of what left the outbox
        other than by a replay."""
        self.folder.mkdir(parents=True, exist_ok=True)
        line = json.dumps({"time": datetime.now(UTC).isoformat(timespec="seconds"), "user": _who(),
                           "action": action, "id": record_id, "detail": refuse_credentials_text(detail)},
                          sort_keys=True)
        with (self.folder / "operations.log").open("a", encoding="utf-8") as out:
            out.write(line + "\n")
            out.flush()
            os.fsync(out.fileno())
        log.warning("outbox %s %s: %s", action, record_id, detail)

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
                               body.get("created", ""), body["payload"], int(body.get("refusals") or 0),
                               body.get("dead_reason") or body.get("last_error"))
        except (OSError, ValueError, KeyError) as exc:
            raise GovernanceError(f"outbox record {path} is unreadable: {exc}") from exc

