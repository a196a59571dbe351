"""An evidence pack on disk: one tar.gz whose ``SHA256SUMS`` lists every file, optionally signed, and its offline
check (``modelgov evidence verify``).

The pack must still prove itself in ten years, when Atlas, the registry and modelgov's hosts are gone, so the
check reads only the archive (and the trusted public key it is given): ``SHA256SUMS`` is in ``sha256sum``'s
format (``sha256sum -c`` works on an unpacked copy); ``SHA256SUMS.dsse.json`` is a DSSE envelope of an in-toto
Statement whose one subject is ``SHA256SUMS`` and its sha256, signed with the SigningIdentity of
``MODELGOV_SIGNING_KEY`` (``governance.trust.dsse``).

Reading an archive someone handed over is bounded and never touches the file system: members are read into
memory (never extracted; the gzip stream whole and checksummed first, so a damaged archive is refused rather
than read up to the damage), and only regular files with plain relative names (``governance.paths``) under the
size limits are accepted; a link, a device, an absolute or ``..`` name, a duplicate, too many members or too
many bytes makes the whole pack unreadable, said so, rather than partly checked.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import re
import tarfile
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from governance.errors import GovernanceError
from governance.paths import path_problem
from governance.trust.dsse import open_envelope, sign_envelope, signature_holds
from governance.trust.signing import SigningIdentity, certificate_signer, key_fingerprint

SUMS = "SHA256SUMS"
SIGNATURE = "SHA256SUMS.dsse.json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://modelgov.dev/evidence/v1"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
MAX_MEMBERS = 10_000
MAX_FILE_BYTES = 64 * 1024 * 1024
MAX_TOTAL_BYTES = 256 * 1024 * 1024
_SUM_LINE = re.compile(r"^([0-9a-f]{64})  (.+)$")


class PackError(GovernanceError):
    """The archive cannot be read as an evidence pack (corrupt, unsafe or too large)."""


def sums_text(files: dict[str, bytes]) -> bytes:
    """``SHA256SUMS`` of ``files``, sorted by path, as ``sha256sum`` writes it."""
    return "".join(f"{hashlib.sha256(files[p]).hexdigest()}  {p}\n" for p in sorted(files)).encode()


def write_pack(path: Path, files: dict[str, bytes], identity: SigningIdentity | None) -> list[str]:
    """Write ``files`` (path in the pack -> bytes) with their ``SHA256SUMS`` (signed when ``identity``) as one
    tar.gz at ``path``, atomically; returns the names written."""
    for name in files:
        problem = path_problem(name) or ("a reserved name" if name in (SUMS, SIGNATURE) else None)
        if problem or "\n" in name:
            raise PackError(f"{name!r} cannot be a file of an evidence pack: {problem or 'a line break'}")
    everything = dict(files)
    everything[SUMS] = sums_text(files)
    if identity is not None:
        statement = {"_type": STATEMENT_TYPE, "predicateType": PREDICATE_TYPE,
                     "subject": [{"name": SUMS, "digest": {"sha256": hashlib.sha256(everything[SUMS]).hexdigest()}}],
                     "predicate": {"files": len(files), "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}}
        everything[SIGNATURE] = sign_envelope(identity, PAYLOAD_TYPE,
                                              json.dumps(statement, sort_keys=True).encode()).encode()
    now = int(time.time())
    partial = path.with_name(f".{path.name}.partial")
    with tarfile.open(partial, "w:gz", format=tarfile.PAX_FORMAT) as tar:
        for name in [*sorted(files), *(n for n in (SUMS, SIGNATURE) if n in everything)]:
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(everything[name]), now, 0o644
            tar.addfile(info, io.BytesIO(everything[name]))
    partial.replace(path)
    return list(everything)


def read_pack(path: Path) -> dict[str, bytes]:
    """Every file of the pack at ``path`` (name -> bytes), read safely; PackError when it cannot be."""
    files: dict[str, bytes] = {}
    total = 0
    raw = _decompressed(path)
    try:
        with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as tar:
            for count, member in enumerate(tar, start=1):
                if count > MAX_MEMBERS:
                    raise PackError(f"{path}: more than {MAX_MEMBERS} members; not an evidence pack")
                if member.isdir():
                    continue
                problem = path_problem(member.name)
                if problem:
                    raise PackError(f"{path}: member {member.name!r} is refused: {problem}")
                if not member.isfile():
                    raise PackError(f"{path}: member {member.name!r} is not a regular file (a link or device)")
                if member.name in files:
                    raise PackError(f"{path}: member {member.name!r} appears twice")
                if member.size > MAX_FILE_BYTES:
                    raise PackError(f"{path}: member {member.name!r} is larger than {MAX_FILE_BYTES} bytes")
                total += member.size
                if total > MAX_TOTAL_BYTES:
                    raise PackError(f"{path}: more than {MAX_TOTAL_BYTES} bytes in all; not an evidence pack")
                stream = tar.extractfile(member)
                data = stream.read(member.size + 1) if stream else b""
                if len(data) != member.size:
                    raise PackError(f"{path}: member {member.name!r} is truncated")
                files[member.name] = data
            if raw[tar.offset:].strip(b"\0"):  # tarfile stops quietly at a damaged header: refuse the rest
                raise PackError(f"{path}: damaged after member {len(files)} (bytes that are no tar member)")
    except tarfile.TarError as exc:
        raise PackError(f"{path}: not a readable tar.gz evidence pack ({exc.__class__.__name__}: {exc})") from exc
    return files


def _decompressed(path: Path) -> bytes:
    """The whole tar stream, its gzip checksum verified, bounded (a small file can inflate to gigabytes)."""
    limit = MAX_TOTAL_BYTES + (MAX_MEMBERS + 2) * 3 * tarfile.BLOCKSIZE  # the files, and headers for each
    out = bytearray()
    try:
        with gzip.open(path, "rb") as stream:
            while chunk := stream.read(1 << 20):
                out += chunk
                if len(out) > limit:
                    raise PackError(f"{path}: inflates to more than {limit} bytes; not an evidence pack")
    except (OSError, EOFError, zlib.error) as exc:  # BadGzipFile is an OSError
        raise PackError(f"{path}: not a readable tar.gz evidence pack ({exc.__class__.__name__}: {exc})") from exc
    return bytes(out)


@dataclass
class PackCheck:
    """What the offline check found: ``problems`` empty means every file is as it was packed (and, with a
    trusted key, that key signed the list)."""

    files: int = 0
    signer: str | None = None
    checked: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)  # names of files whose bytes differ from SHA256SUMS

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict:
        return {"ok": self.ok, "files": self.files, "signer": self.signer, "checked": self.checked,
                "problems": self.problems, "changed": self.changed}


def verify_pack(path: Path, trusted_key: Path | None = None) -> PackCheck:
    """Check the pack at ``path`` from its own bytes: every file against ``SHA256SUMS``, and the signature of
    ``SHA256SUMS`` (against ``trusted_key``, a PEM public key or certificate, when given)."""
    files = read_pack(path)
    result = PackCheck()
    sums = files.get(SUMS)
    if sums is None:
        result.problems.append(f"the pack has no {SUMS}: nothing says what it held")
        return result
    listed = _parse_sums(sums, result)
    for name, digest in listed.items():
        if name not in files:
            result.problems.append(f"missing: {name} (listed in {SUMS})")
        elif hashlib.sha256(files[name]).hexdigest() != digest:
            result.changed.append(name)
            result.problems.append(f"changed: {name} (its sha256 is not the one {SUMS} lists)")
    for name in sorted(set(files) - set(listed) - {SUMS, SIGNATURE}):
        result.problems.append(f"not listed: {name} (in the pack, not in {SUMS})")
    result.files = len(listed)
    if not result.changed and not any(p.startswith("missing") for p in result.problems):
        result.checked.append(f"{len(listed)} files match {SUMS}")
    _check_signature(files, sums, trusted_key, result)
    return result


def _parse_sums(sums: bytes, result: PackCheck) -> dict[str, str]:
    listed: dict[str, str] = {}
    for number, line in enumerate(sums.decode("utf-8", errors="replace").splitlines(), start=1):
        match = _SUM_LINE.match(line)
        if not match or path_problem(match[2]) or match[2] in listed:
            result.problems.append(f"{SUMS}:{number}: not a '<sha256>  <path>' line of a new plain path")
            continue
        listed[match[2]] = match[1]
    return listed


def _check_signature(files: dict[str, bytes], sums: bytes, trusted_key: Path | None, result: PackCheck) -> None:
    envelope_bytes = files.get(SIGNATURE)
    if envelope_bytes is None:
        if trusted_key is not None:
            result.problems.append(f"the pack is not signed ({SIGNATURE} is absent), and --trusted-key asks for a "
                                   "signature")
        else:
            result.checked.append("unsigned (no signing key was configured when it was made)")
        return
    try:
        envelope = open_envelope(envelope_bytes)
        statement = json.loads(envelope.body)
        [subject] = statement["subject"]
        signed_digest = subject["digest"]["sha256"]
        if statement["predicateType"] != PREDICATE_TYPE or subject["name"] != SUMS:
            raise ValueError("not an evidence statement")
    except (ValueError, KeyError, TypeError) as exc:
        result.problems.append(f"{SIGNATURE}: not a signed modelgov evidence statement ({exc})")
        return
    result.signer = envelope.keyid
    if signed_digest != hashlib.sha256(sums).hexdigest():
        result.problems.append(f"changed: {SUMS} (it is not the list that was signed)")
        result.changed.append(SUMS)
    if trusted_key is None:
        result.checked.append(f"signed by key {envelope.keyid}; signature not checked (give --trusted-key)")
        return
    public, fingerprints = _trusted(trusted_key)
    if envelope.keyid not in fingerprints:
        result.problems.append(f"signed by key {envelope.keyid}, not by the trusted key {trusted_key}")
    elif not signature_holds(envelope, public):
        result.problems.append(f"the signature of {SIGNATURE} does not verify with {trusted_key}")
    else:
        result.checked.append(f"signature verified: {SUMS} signed by trusted key {envelope.keyid}")


def _trusted(path: Path) -> tuple[object, set[str]]:
    """(public key, the fingerprints that name it) of a PEM public key or certificate file."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    from governance.errors import ConfigError

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"--trusted-key {path}: cannot be read ({exc.strerror})") from exc
    try:
        if b"CERTIFICATE" in data:
            cert = x509.load_pem_x509_certificate(data)
            return cert.public_key(), {certificate_signer(cert).fingerprint, key_fingerprint(cert.public_key())}
        public = serialization.load_pem_public_key(data)
    except ValueError as exc:
        raise ConfigError(f"--trusted-key {path}: not a PEM public key or certificate") from exc
    return public, {key_fingerprint(public)}
