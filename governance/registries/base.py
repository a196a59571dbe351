"""The model registry interface: immutable, checksummed model versions at ``<root>/<name>/<version>/``.

A version is complete only once its manifest (``MANIFEST.json``) exists: the manifest is written last and
is the commit marker. Publishing the same bytes again is a no-op; different bytes for an existing version
are refused and the existing version is left untouched, also when two publishers race: each stages its own
attempt and one conditional commit decides the winner.
"""

from __future__ import annotations

import hashlib
import io
import json
import posixpath
import threading
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, BinaryIO, ClassVar

from governance.checksums import ArtifactFile, HashingReader
from governance.errors import ImmutableVersionError, IntegrityError, RegistryError
from governance.paths import path_problem, segment_problem
from governance.progress import copy_progress
from governance.staging.repo import StagedRepo
from governance.trust.approvals import KEPT_SUFFIX, MAX_STATEMENT_BYTES
from governance.trust.signing import (
    MAX_SIGNATURE_BYTES,
    SIGNATURE_FILE,
    SignatureError,
    Signer,
    SigningIdentity,
    TrustPolicy,
    signed_files,
)

MANIFEST_NAME = "MANIFEST.json"
MANIFEST_FORMAT = 1
# Signed approvals are kept beside the versions, at <root>/<name>/.approvals/<version>/<sha256>.dsse.json: outside
# the version folder, which stays exactly what was signed and committed (the upstream model_signing CLI verifies
# a copy of it), and named by their own sha256, so a rewritten one no longer matches its name. Versions are plain
# numbers (``model.version``, MLflow's), so the leading dot never names one; gc never lists the folder.
APPROVALS_FOLDER = ".approvals"
MAX_KEPT_APPROVALS = 1000


@dataclass(frozen=True)
class Manifest:
    """The commit record of one registry version: which files, their sha256 and size, and where they came from."""

    model_name: str
    model_version: str
    files: tuple[ArtifactFile, ...]
    executable: str
    source: str
    commit: str | None
    published_at: str  # ISO-8601 UTC
    format: int = MANIFEST_FORMAT
    data_dir: str = ""  # where the files sit relative to the version folder ("" = in it)
    # self-description (like an OCI image's config): enough to deploy this version again without its staging
    # repo. None in manifests written before versions described themselves.
    metadata: dict | None = field(default=None, compare=False)
    example_request: Any = field(default=None, compare=False)
    example_response: Any = field(default=None, compare=False)
    # the exact training-data versions seen at validation (DataVersion.to_dict), e.g. a local file's sha256
    data_versions: tuple[dict, ...] = field(default=(), compare=False)
    # who signed the version at publish (governance.trust.signing.Signer.to_dict), None when it is unsigned; the
    # signature (model.sig, beside the files) covers the files and this manifest
    signer: dict | None = field(default=None, compare=False)

    def to_json(self) -> str:
        data = {
            "format": self.format, "model_name": self.model_name, "model_version": self.model_version,
            "executable": self.executable, "source": self.source, "commit": self.commit,
            "published_at": self.published_at, "files": [f.to_dict() for f in self.files],
        }
        if self.data_dir:
            data["data_dir"] = self.data_dir
        if self.metadata is not None:
            data.update(metadata=self.metadata, example_request=self.example_request,
                        example_response=self.example_response)
        if self.data_versions:
            data["data_versions"] = list(self.data_versions)
        if self.signer:
            data["signer"] = self.signer
        return json.dumps(data, indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        """The manifest in ``text``; ValueError when it is malformed or one of its paths could leave the
        version folder (checked on every read: a manifest in a registry is data someone else wrote)."""
        data = json.loads(text)
        _check_paths(data)
        return cls(model_name=data["model_name"], model_version=data["model_version"],
                   files=tuple(ArtifactFile.from_dict(f) for f in data["files"]), executable=data["executable"],
                   source=data["source"], commit=data.get("commit"), published_at=data["published_at"],
                   format=int(data.get("format", MANIFEST_FORMAT)), data_dir=str(data.get("data_dir") or ""),
                   metadata=data.get("metadata"), example_request=data.get("example_request"),
                   example_response=data.get("example_response"),
                   data_versions=tuple(data.get("data_versions") or ()),
                   signer=data.get("signer") if isinstance(data.get("signer"), dict) else None)

    @classmethod
    def parse(cls, text: str, where: str) -> Manifest:
        """A stored manifest; a damaged one is a RegistryError naming where it lives."""
        try:
            return cls.from_json(text)
        except (ValueError, KeyError, TypeError) as exc:
            raise RegistryError(f"{where} is not a valid manifest: {exc}") from exc

    @classmethod
    def for_staged(cls, staged: StagedRepo, *, data_dir: str = "", signer: dict | None = None) -> Manifest:
        return cls(model_name=staged.metadata.name, model_version=staged.metadata.version, files=staged.files,
                   executable=staged.executable, source=staged.source, commit=staged.commit,
                   published_at=datetime.now(UTC).isoformat(timespec="seconds"), data_dir=data_dir,
                   metadata=staged.metadata.to_dict(), example_request=staged.example_request,
                   example_response=staged.example_response,
                   data_versions=tuple(v.to_dict() for v in staged.data_versions), signer=signer)

    def entry(self, path: str) -> ArtifactFile:
        """The manifest's entry (sha256, size) for ``path``; an IntegrityError when the manifest lists none."""
        for f in self.files:
            if f.path == path:
                return f
        raise IntegrityError(f"the manifest of {self.model_name} {self.model_version} lists no entry for {path}")

    @property
    def executable_entry(self) -> ArtifactFile:
        """The entry of the model's executable: what a target installs and reports as served."""
        return self.entry(self.executable)

    @property
    def content_digest(self) -> str:
        """sha256 of what this version *is*: name, version, executable, every file's path, sha256 and size,
        the model's metadata, examples and training-data versions. Where and when it was published (registry
        folder, attempt, time, staging source) are left out, so an identical copy in a second registry has the
        same digest (a replica) and any other difference, a rewritten owner included, gives another one."""
        content = {
            "model_name": self.model_name, "model_version": self.model_version, "executable": self.executable,
            "files": sorted([f.path, f.sha256, f.size] for f in self.files), "metadata": self.metadata,
            "example_request": self.example_request, "example_response": self.example_response,
            "data_versions": list(self.data_versions),
        }
        canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
        return hashlib.sha256(canonical.encode()).hexdigest()

    def same_content(self, files: tuple[ArtifactFile, ...]) -> bool:
        return sorted(self.files, key=lambda f: f.path) == sorted(files, key=lambda f: f.path)


def _check_paths(data: dict) -> None:
    """Every path a reader joins to the version folder (``files[].path``, ``executable``, ``data_dir``) must be
    a plain relative POSIX path (``governance.paths``); ValueError naming the first offending entry."""
    entries = [(f"files[{i}].path", f.get("path") if isinstance(f, dict) else f)
               for i, f in enumerate(data["files"])]
    entries.append(("executable", data["executable"]))
    if data.get("data_dir"):
        entries.append(("data_dir", data["data_dir"]))
    for field_name, value in entries:
        problem = path_problem(value)
        if problem:
            raise ValueError(f"{field_name} {value!r} {problem}; a manifest path must be relative and stay "
                             f"inside the version folder")


@dataclass(frozen=True)
class RegistryVersion:
    """A complete, immutable version in a registry. ``location`` is the URI of the version folder."""

    registry_uri: str
    location: str
    manifest: Manifest
    created: bool = field(default=True, compare=False)  # False when an identical version already existed
    manifest_text: str | None = field(default=None, compare=False, repr=False)  # as stored: what model.sig signs

    @property
    def data_location(self) -> str:
        """The folder holding the files (the version folder, or the committed attempt inside it on S3)."""
        base = self.location.rstrip("/")
        return f"{base}/{self.manifest.data_dir}" if self.manifest.data_dir else base

    def artifact_uri(self, path: str) -> str:
        return f"{self.data_location}/{path}"

    @property
    def executable_uri(self) -> str:
        return self.artifact_uri(self.manifest.executable)


@dataclass(frozen=True)
class Attempt:
    """One publisher's private staging area for one version; never shared, never part of another attempt.

    ``where`` is the scheme's handle (a temp folder, an S3 key prefix); ``data_dir`` is where the files sit
    relative to the version folder once committed ("" for stores that rename the folder into place).
    """

    name: str
    version: str
    id: str
    where: str
    data_dir: str = ""


@dataclass(frozen=True)
class Leftover:
    """Something ``registry gc`` may remove: an abandoned attempt, a temp folder, an incomplete upload."""

    kind: str
    uri: str
    modified: datetime
    handle: object = field(default=None, compare=False)


def new_attempt_id() -> str:
    return f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:12]}"


class Registry(ABC):
    """One registry backend per URI scheme (see ``governance.registries.get_registry``).

    The publish algorithm lives here, once: stage every file in a private attempt (hashing while streaming),
    then commit conditionally. The commit is the only step that decides the winner of a race, and nothing
    committed is ever deleted or overwritten: a loser only ever removes its own attempt. Schemes provide the
    primitives (``_begin``, ``_put``, ``_commit``, ``_abandon``, ``_read_manifest``, ``_open``, and for gc
    ``_leftovers``/``_remove``).
    """

    scheme: ClassVar[str]
    # files staged at once. Above 1 where a store makes every file pay a fixed latency (HDFS: closing a file
    # waits for the datanode's block report, often ~0.4 s); 1 where parallel files would multiply memory
    # (S3's multipart parts are buffered per upload).
    parallel_files: ClassVar[int] = 1

    def __init__(self, uri: str):
        self.uri = uri

    # -- primitives each scheme provides --------------------------------------------------------------
    @abstractmethod
    def _read_manifest(self, name: str, version: str) -> tuple[str, str] | None:
        """(text, where) of the committed manifest, or None when the version has none."""

    @abstractmethod
    def _begin(self, name: str, version: str) -> Attempt:
        """Create a private staging area for one publish attempt."""

    @abstractmethod
    def _put(self, attempt: Attempt, file: ArtifactFile, reader: HashingReader,
             advance: Callable[[int], None]) -> None:
        """Stream ``file`` (expected sha256/size) into the attempt durably, reading ``reader`` to its end."""

    @abstractmethod
    def _commit(self, attempt: Attempt, manifest: bytes) -> bool:
        """Make the attempt the version, atomically and only if no version is committed; False if one is."""

    @abstractmethod
    def _abandon(self, attempt: Attempt) -> None:
        """Remove what this attempt staged (only its own objects)."""

    @abstractmethod
    def _open(self, name: str, version: str, path: str) -> Iterator[bytes]:
        """Stream one object at ``path`` relative to the version folder."""

    @abstractmethod
    def _put_once(self, name: str, rel: str, data: bytes) -> bool:
        """Create the object ``rel`` (relative to the model folder) holding ``data``, completely or not at all, and
        only if it does not exist: True when created, False when something is already there (never replaced)."""

    @abstractmethod
    def _list_names(self, name: str, rel: str) -> list[str]:
        """Names of the plain files directly in folder ``rel`` of the model folder ([] when there is none)."""

    def _leftovers(self) -> Iterator[Leftover]:
        """Abandoned attempts, temp folders and incomplete uploads (never a committed version's objects)."""
        return iter(())

    def _remove(self, leftover: Leftover) -> None:
        raise RegistryError(f"{self.uri}: this registry cannot remove {leftover.uri}")

    # -- the algorithm ---------------------------------------------------------------------------------
    def lookup(self, name: str, version: str) -> RegistryVersion | None:
        """The complete version, or None when it does not exist or has no manifest (incomplete)."""
        check_segments(self.uri, name=name, version=version)
        found = self._read_manifest(name, version)
        if found is None:
            return None
        text, where = found
        manifest = Manifest.parse(text, where)
        if (manifest.model_name, manifest.model_version) != (name, version):
            # a folder copied (with its manifest and signature) over another version's: consistent in itself,
            # and a verified signature, yet not the version asked for
            raise RegistryError(f"{where} describes {manifest.model_name} {manifest.model_version}, not {name} "
                                f"{version}: the folder was copied or renamed; refusing to use it")
        return RegistryVersion(self.uri, self.version_location(name, version), manifest,
                               created=False, manifest_text=text)

    def publish(self, staged: StagedRepo, *, progress: bool = False,
                signing: SigningIdentity | None = None) -> RegistryVersion:
        """Copy the staged files into the registry, commit the manifest last, return the version.

        With ``signing`` the version is signed before it is committed: the manifest names the signer, and
        ``model.sig`` (over every file and the manifest) is written into the attempt before the manifest, so a
        committed version never lacks its signature.

        Identical bytes already committed: a no-op returning that version. Different bytes: refused with
        ImmutableVersionError, whether found before staging or after losing a race at the commit; the
        committed version is never touched. IntegrityError when a file changed since validation. A failure
        or a kill leaves at most an uncommitted attempt, which ``registry gc`` removes.
        """
        meta = staged.metadata
        if signing is not None and any(f.path == SIGNATURE_FILE for f in staged.files):
            raise RegistryError(f"{staged.root / SIGNATURE_FILE}: a staged repo cannot hold a file named "
                                f"{SIGNATURE_FILE} when the version is signed (the signature goes there)")
        found = self.existing_version(staged)
        if found:
            return found
        signer = signing.signer if signing is not None else None
        attempt = self._begin(meta.name, meta.version)
        try:
            total = sum(f.size for f in staged.files)
            with copy_progress(total, f"publish {meta.name} {meta.version}", enabled=progress) as advance:
                self._stage_files(staged, attempt, advance)
            manifest = Manifest.for_staged(staged, data_dir=attempt.data_dir,
                                           signer=signer.to_dict() if signer else None)
            body = manifest.to_json().encode()
            if signing is not None:
                self._put_signature(attempt, signing.sign(f"{meta.name}-{meta.version}", signed_files(
                    [(f.path, f.sha256) for f in staged.files], MANIFEST_NAME, body)))
            won = self._commit(attempt, body)
        except BaseException:
            self._abandon_unless_committed(attempt)
            raise
        location = self.version_location(meta.name, meta.version)
        if won:
            return RegistryVersion(self.uri, location, manifest, created=True, manifest_text=body.decode())
        winner = self.lookup(meta.name, meta.version)
        if winner is not None and attempt.data_dir and winner.manifest.data_dir == attempt.data_dir:
            return replace(winner, created=True)  # our own retried write
        self._abandon_unless_committed(attempt)
        if winner is None:
            raise RegistryError(f"{location} exists but holds no manifest (not a version modelgov committed); "
                                f"inspect it, then `modelgov registry gc {self.uri}` removes it")
        try:
            return existing_or_refuse(winner, staged, location)
        except ImmutableVersionError as exc:
            raise ImmutableVersionError(f"{exc} (another publisher committed it while this one was copying; "
                                        f"its version is intact)") from exc

    def _stage_files(self, staged: StagedRepo, attempt: Attempt, advance: Callable[[int], None]) -> None:
        """Stage every file, ``parallel_files`` at a time (largest first); returns once all are staged. On the
        first failure (or an interrupt) the other copies stop at their next chunk before the error propagates,
        so the attempt is abandoned only once nothing writes into it any more."""
        workers = min(self.parallel_files, len(staged.files))
        if workers <= 1:
            for f in staged.files:
                self._stage_file(staged, attempt, f, advance)
            return
        stop = threading.Event()

        def guarded(n: int) -> None:
            if stop.is_set():
                raise RegistryError(f"publish to {self.uri} stopped: another file of the attempt failed")
            advance(n)

        with ThreadPoolExecutor(workers, thread_name_prefix="modelgov-publish") as pool:
            futures = [pool.submit(self._stage_file, staged, attempt, f, guarded)
                       for f in sorted(staged.files, key=lambda f: f.size, reverse=True)]
            try:
                for future in as_completed(futures):
                    future.result()
            except BaseException:
                stop.set()
                for future in futures:
                    future.cancel()
                raise

    def _stage_file(self, staged: StagedRepo, attempt: Attempt, f: ArtifactFile,
                    advance: Callable[[int], None]) -> None:
        with open_staged(staged, f.path) as raw:
            reader = HashingReader(raw)
            self._put(attempt, f, reader, advance)
        if reader.sha256 != f.sha256 or reader.size != f.size:
            raise IntegrityError(f"{staged.root / f.path} changed after validation (sha256 {reader.sha256}, "
                                 f"expected {f.sha256}); not published to {self.uri}")

    def _put_signature(self, attempt: Attempt, bundle: bytes) -> None:
        entry = ArtifactFile(SIGNATURE_FILE, hashlib.sha256(bundle).hexdigest(), len(bundle))
        self._put(attempt, entry, HashingReader(io.BytesIO(bundle)), lambda n: None)

    def read_signature(self, version: RegistryVersion) -> bytes | None:
        """The version's ``model.sig`` (bounded), or None when its manifest names no signer."""
        if not version.manifest.signer:
            return None
        out = bytearray()
        for chunk in self.open_artifact(version, SIGNATURE_FILE):
            out += chunk
            if len(out) > MAX_SIGNATURE_BYTES:
                break
        return bytes(out)

    def signature_of(self, version: RegistryVersion, policy: TrustPolicy) -> tuple[Signer | None, bool]:
        """(signer, checked): under an active policy the verified signer (None: unsigned and allowed), checked;
        with no policy the signer the manifest names, unchecked (a bare key bundle cannot be verified without
        the key). SignatureError when the policy refuses the version. What deploys, ``registry verify`` and
        ``verify`` all report."""
        if not policy.active:
            return (Signer.from_dict(version.manifest.signer) if version.manifest.signer else None), False
        return self.check_signature(version, policy), True

    def check_signature(self, version: RegistryVersion, policy: TrustPolicy) -> Signer | None:
        """The verified signer of ``version`` under ``policy`` (None: unsigned, and the policy allows it);
        SignatureError otherwise. It compares the signed digests with the manifest's; the bytes themselves are
        held to the manifest by ``read_verified`` as a target reads them."""
        m = version.manifest
        text = version.manifest_text
        if text is None:
            found = self._read_manifest(m.model_name, m.model_version)
            text = found[0] if found else ""
        label = f"{m.model_name} {m.model_version} at {version.location}"
        try:
            bundle = self.read_signature(version)
        except RegistryError as exc:
            raise SignatureError(f"{label}: its manifest names signer {m.signer.get('fingerprint')} but "
                                 f"{SIGNATURE_FILE} cannot be read ({exc})") from exc
        return policy.check(label, bundle, signed_files(sorted((f.path, f.sha256) for f in m.files), MANIFEST_NAME,
                                                        text.encode()))

    def _abandon_unless_committed(self, attempt: Attempt) -> None:
        """Drop our attempt, unless a lost answer hid that our own commit succeeded; on doubt keep it for gc."""
        try:
            if attempt.data_dir:
                current = self.lookup(attempt.name, attempt.version)
                if current is not None and current.manifest.data_dir == attempt.data_dir:
                    return
            self._abandon(attempt)
        except Exception:  # noqa: BLE001 - best effort: an attempt left behind is harmless and gc finds it
            pass

    def open_artifact(self, version: RegistryVersion, path: str) -> Iterator[bytes]:
        """Stream one file's bytes from the registry copy."""
        m = version.manifest
        return self._open(m.model_name, m.model_version, posixpath.join(m.data_dir, path) if m.data_dir else path)

    def read_verified(self, version: RegistryVersion, path: str, *, purpose: str = "deploy it") -> Iterator[bytes]:
        """Stream one file of the registry copy, hashing every chunk; after the last one, raise IntegrityError
        when its sha256 or size differ from the manifest. Every reader that installs registry bytes (the
        targets) goes through this, writes to a temporary place, and commits only once the stream ended."""
        entry = version.manifest.entry(path)
        digest, size = hashlib.sha256(), 0
        for chunk in self.open_artifact(version, path):
            digest.update(chunk)
            size += len(chunk)
            yield chunk
        if digest.hexdigest() != entry.sha256 or size != entry.size:
            raise IntegrityError(f"{version.artifact_uri(path)}: registry copy has sha256 {digest.hexdigest()} size "
                                 f"{size}, the manifest says sha256 {entry.sha256} size {entry.size}; refusing to "
                                 f"{purpose}")

    def digest_of(self, version: RegistryVersion, path: str) -> tuple[str, int]:
        """sha256 and size of one file of the registry copy, read through (for ``verify``, which reports a
        difference instead of refusing)."""
        digest, size = hashlib.sha256(), 0
        for chunk in self.open_artifact(version, path):
            digest.update(chunk)
            size += len(chunk)
        return digest.hexdigest(), size

    def verify(self, version: RegistryVersion) -> list[str]:
        """Re-read every file of the registry copy; return one message per mismatch (empty when intact)."""
        problems = []
        for f in version.manifest.files:
            try:
                sha256, size = self.digest_of(version, f.path)
            except Exception as exc:  # noqa: BLE001 - reported, not raised: verify lists every problem
                problems.append(f"{version.artifact_uri(f.path)}: cannot be read ({exc})")
                continue
            if size != f.size or sha256 != f.sha256:
                problems.append(f"{version.artifact_uri(f.path)}: sha256 {sha256} size {size}, "
                                f"manifest says sha256 {f.sha256} size {f.size}")
        return problems

    def gc(self, *, older_than: timedelta = timedelta(days=1), dry_run: bool = False) -> list[Leftover]:
        """Remove leftovers older than ``older_than`` (a running publish is younger); return what was (or
        would be) removed. Committed versions are never listed, so never touched."""
        cutoff = datetime.now(UTC) - older_than
        chosen = [lo for lo in self._leftovers() if lo.modified <= cutoff]
        if not dry_run:
            for leftover in chosen:
                self._remove(leftover)
        return chosen

    def version_location(self, name: str, version: str) -> str:
        return f"{self.uri.rstrip('/')}/{name}/{version}"

    # -- signed approvals kept beside the version ---------------------------------------------------------
    def approvals_location(self, name: str, version: str) -> str:
        return f"{self.uri.rstrip('/')}/{name}/{APPROVALS_FOLDER}/{version}"

    def keep_approval(self, version: RegistryVersion, statement: str) -> str:
        """Keep a signed approval of ``version`` beside it, create-only and named by its sha256; its URI. Keeping
        the same statement again is a no-op; a different object under its name is a RegistryError (rewritten)."""
        m = version.manifest
        data = statement.encode()
        filename = f"{hashlib.sha256(data).hexdigest()}{KEPT_SUFFIX}"
        uri = f"{self.approvals_location(m.model_name, m.model_version)}/{filename}"
        if not self._put_once(m.model_name, f"{APPROVALS_FOLDER}/{m.model_version}/{filename}", data):
            held = self._read_kept(m.model_name, m.model_version, filename)
            if held != data:
                raise RegistryError(f"{uri} exists with other bytes than the approval named by its sha256: "
                                    "someone rewrote it; not replaced")
        return uri

    def is_kept(self, version: RegistryVersion, statement: str) -> bool:
        """Whether ``statement`` is kept beside ``version`` byte for byte: one listing, and one read of the object
        named by its sha256 when it is there (not a read of every kept approval)."""
        m = version.manifest
        data = statement.encode()
        filename = f"{hashlib.sha256(data).hexdigest()}{KEPT_SUFFIX}"
        if filename not in self._list_names(m.model_name, f"{APPROVALS_FOLDER}/{m.model_version}"):
            return False
        return self._read_kept(m.model_name, m.model_version, filename) == data

    def kept_approvals(self, version: RegistryVersion) -> list[tuple[str, bytes]]:
        """(URI, bytes) of every approval kept beside ``version``, each bounded; names that are not a kept
        approval's are listed with empty bytes, so the caller reports them instead of reading them."""
        m = version.manifest
        names = sorted(self._list_names(m.model_name, f"{APPROVALS_FOLDER}/{m.model_version}"))
        if len(names) > MAX_KEPT_APPROVALS:
            raise RegistryError(f"{self.approvals_location(m.model_name, m.model_version)} holds {len(names)} "
                                f"objects, more than the {MAX_KEPT_APPROVALS} approvals a version may have")
        where = self.approvals_location(m.model_name, m.model_version)
        return [(f"{where}/{n}", self._read_kept(m.model_name, m.model_version, n)
                 if n.endswith(KEPT_SUFFIX) and segment_problem(n) is None else b"") for n in names]

    def _read_kept(self, name: str, version: str, filename: str) -> bytes:
        out = bytearray()
        for chunk in self._open(name, APPROVALS_FOLDER, f"{version}/{filename}"):
            out += chunk
            if len(out) > MAX_STATEMENT_BYTES:
                break
        return bytes(out)

    def existing_version(self, staged: StagedRepo) -> RegistryVersion | None:
        """The complete version with identical content, None when there is none; refuses different content."""
        meta = staged.metadata
        return existing_or_refuse(self.lookup(meta.name, meta.version), staged,
                                  self.version_location(meta.name, meta.version))


def check_segments(registry_uri: str, **segments: str) -> None:
    """A model name, version (or listed folder) used as one path segment of a registry location; a
    RegistryError naming it when it could address anything else (``..``, a ``/``, a control character)."""
    for what, value in segments.items():
        problem = segment_problem(value)
        if problem:
            raise RegistryError(f"{registry_uri}: {what} {value!r} {problem}; it must be one plain path segment")


def open_staged(staged: StagedRepo, rel: str) -> BinaryIO:
    """Open one staged file for copying; an unreadable file is a RegistryError naming it."""
    src = staged.root / rel
    try:
        return src.open("rb")
    except OSError as exc:
        raise RegistryError(f"cannot read {src}: {exc.strerror or exc}") from exc


def existing_or_refuse(found: RegistryVersion | None, staged: StagedRepo, location: str) -> RegistryVersion | None:
    """Shared immutability rule: identical bytes -> the existing version (as looked up, with the manifest text
    its signature covers); different bytes -> refuse."""
    if found is None:
        return None
    existing = found.manifest
    if existing.same_content(staged.files):
        return replace(found, created=False)
    changed = sorted({f.path for f in existing.files} ^ {f.path for f in staged.files}
                     | {f.path for f in staged.files
                        for e in existing.files if e.path == f.path and e.sha256 != f.sha256})
    raise ImmutableVersionError(
        f"{location} already exists with different content (differs in: {', '.join(changed)}); "
        f"registry versions are immutable: bump model.version instead")
