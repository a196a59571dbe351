"""``mleap://HOST:PORT?bundle_dir=DIR[&server_dir=DIR]``: MLeap classic serving (one model per server).

Deploy copies the registered bundle zip from the registry into ``bundle_dir`` (a folder the server can read,
in production a shared mount; ``server_dir`` is how the server sees it), checking sha256 against the registry
manifest while copying, then ``PUT /model``, ``GET /model`` (the schema proves it loaded) and ``POST
/transform`` with the example LeapFrame. MLeap does not report which bundle it serves, so the target keeps a
small marker file per server in ``bundle_dir`` recording what it loaded; that is how a deploy names the
model it replaced and how ``status``/``undeploy`` act on one version without touching another.
"""

from __future__ import annotations

import contextlib
import json
import os
import posixpath
import tempfile
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import requests
from requests.adapters import HTTPAdapter

from governance.checksums import ArtifactFile, hash_file
from governance.deadlines import Clock, running
from governance.errors import CompensationError, ConfigError, TargetError
from governance.http import DEFAULT_TIMEOUT, ClockedRetry, TimeoutSession
from governance.targets.base import (
    DeploymentResult,
    Release,
    ServedModel,
    ServingTarget,
    SmokeResult,
    confined_path,
    late,
    target_deadline,
    target_options,
)
from governance.targets.smoke import check_expected, shorten

# MLeap answers 500 for deterministic failures (no model loaded, unknown path, bad frame): never retry those.
RETRY_STATUSES = (502, 503, 504)
QUERY_KEYS = {"bundle_dir", "server_dir"}


def bundle_filename(name: str, version: str, executable: str, sha256: str | None = None) -> str:
    """``<name>-<version>.zip``: one file per version, so a deploy never overwrites another version's bundle;
    ``<name>-<version>-<sha256[:12]>.zip`` for bytes other than those of the loaded file of the same name."""
    suffix = "".join(Path(executable).suffixes) or ".zip"
    return f"{name}-{version}-{sha256[:12]}{suffix}" if sha256 else f"{name}-{version}{suffix}"


def bundle_outputs(zip_path: Path) -> list[str] | None:
    """Output column names declared by a JSON bundle's nodes; None when the bundle is not readable as JSON."""
    try:
        with zipfile.ZipFile(zip_path) as zf:
            outputs: list[str] = []
            for name in zf.namelist():
                if name.startswith("root/") and name.endswith("node.json"):
                    shape = json.loads(zf.read(name)).get("shape") or {}
                    outputs.extend(s["name"] for s in shape.get("outputs", []))
            return outputs
    except (OSError, zipfile.BadZipFile, ValueError, KeyError, TypeError, AttributeError):
        return None


class MleapTarget(ServingTarget):
    """MLeap classic serving: ``PUT /model``, ``GET /model``, ``POST /transform``, ``DELETE /model``."""

    kind = "mleap"
    single_model = True  # loading a model replaces whatever the server held, whatever its name

    def __init__(self, uri: str, *, timeout: float | tuple[float, float] = DEFAULT_TIMEOUT, retries: int = 3,
                 backoff: float = 0.5, fail_on_mismatch: bool = True):
        super().__init__(uri)
        parsed = urlparse(uri)
        if parsed.scheme != "mleap" or not parsed.hostname:
            raise ConfigError(f"mleap target URI must look like mleap://HOST:PORT?bundle_dir=DIR, got {uri!r}")
        try:
            port = parsed.port
        except ValueError as exc:
            raise ConfigError(f"mleap target URI {uri!r} has an invalid port") from exc
        if port is None:
            raise ConfigError(f"mleap target URI {uri!r} needs a port (MLeap serving defaults to 65327)")
        query = target_options(uri, QUERY_KEYS, "mleap")
        if not query.get("bundle_dir", "").startswith("/"):
            raise ConfigError(f"mleap target URI {uri!r} needs bundle_dir=/absolute/folder the server can read")
        self.host, self.port = parsed.hostname, port
        self.where = f"{self.host}:{self.port}"
        self.base_url = f"http://{self.where}"
        self.bundle_dir = Path(query["bundle_dir"])
        self.server_dir = query.get("server_dir") or query["bundle_dir"]
        if not self.server_dir.startswith("/"):
            raise ConfigError(f"mleap target URI {uri!r}: server_dir must be an absolute path")
        self.fail_on_mismatch = fail_on_mismatch
        self.deadline = target_deadline()
        self._session = _session(timeout, retries, backoff)

    @property
    def host_detail(self) -> str:
        return self.where

    # ------------------------------------------------------------------------------------------ HTTP
    def _call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """One request (a load, a schema read, a transform, an unload) is one operation under the target
        deadline, retries included."""
        with running(Clock(self.deadline)) as clock:
            try:
                return self._session.request(method, f"{self.base_url}{path}", **kwargs)
            except requests.RequestException as exc:
                timed_out = late(exc, clock, f"mleap {method} {path}", self.where)
                if timed_out:
                    raise timed_out from exc
                raise TargetError(f"mleap {self.where}: {method} {path} failed: {exc}") from exc

    def _fail(self, method: str, path: str, resp: requests.Response, what: str) -> TargetError:
        return TargetError(f"mleap {self.where}: {method} {path} answered {resp.status_code} ({what}): "
                           f"{shorten(resp.text)}")

    def _schema(self) -> dict | None:
        """The loaded model's schema, or None when the server has no model (it answers 500 then)."""
        resp = self._call("GET", "/model")
        if resp.status_code == 500:
            return None
        if not resp.ok:
            raise self._fail("GET", "/model", resp, "reading the loaded schema")
        try:
            schema = resp.json()
        except ValueError as exc:
            raise TargetError(f"mleap {self.where}: GET /model did not answer JSON: {shorten(resp.text)}") from exc
        if not isinstance(schema, dict) or not isinstance(schema.get("fields"), list):
            raise TargetError(f"mleap {self.where}: GET /model answered no schema fields: {shorten(resp.text)}")
        return schema

    def _load(self, server_path: str) -> None:
        resp = self._call("PUT", "/model", json={"path": server_path})
        if not resp.ok:
            raise self._fail("PUT", "/model", resp, f"loading {server_path}")

    # ------------------------------------------------------------------------------------------ marker
    @property
    def _marker(self) -> Path:
        return self.bundle_dir / f".modelgov-mleap-{self.host}-{self.port}.json"

    def _read_marker(self) -> dict | None:
        try:
            data = json.loads(self._marker.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise TargetError(f"mleap {self.where}: cannot read {self._marker}: {exc}") from exc
        return data if isinstance(data, dict) else None

    def _write_marker(self, data: dict | None) -> None:
        if data is None:
            with contextlib.suppress(FileNotFoundError):
                self._marker.unlink()
            return
        tmp = self._marker.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        os.replace(tmp, self._marker)

    # ------------------------------------------------------------------------------------------ copy
    def _copy_checked(self, release: Release, expected: ArtifactFile, dest: Path) -> None:
        """Stream the registry copy into ``dest`` via a temp file, refusing bytes that differ from the manifest."""
        if not self.bundle_dir.is_dir():
            raise TargetError(f"mleap {self.where}: bundle_dir {self.bundle_dir} is not a folder "
                              "(is the shared mount present?)")
        source = release.registered.executable_uri
        fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=self.bundle_dir)
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in release.registry.read_verified(release.registered, expected.path,
                                                            purpose=f"deploy it to mleap {self.where}"):
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, dest)
        except OSError as exc:
            raise TargetError(f"mleap {self.where}: copying {source} to {dest} failed: {exc}") from exc
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()

    # ------------------------------------------------------------------------------------------ deploy
    def deploy(self, release: Release) -> DeploymentResult:
        meta = release.metadata
        expected = release.registered.manifest.executable_entry
        previous = self._read_marker()
        filename = self._bundle_file(release, previous)
        local = confined_path(self.bundle_dir, filename, what=f"mleap {self.where} bundle folder")
        server_path = posixpath.join(self.server_dir, filename)
        loaded_before = self._schema() is not None
        self._copy_checked(release, expected, local)
        try:
            self._load(server_path)
            schema = self._schema()
            if schema is None:
                raise TargetError(f"mleap {self.where}: PUT /model succeeded but GET /model reports no model")
            self._check_schema(schema, local)
            smoke = self._smoke(release)
        except BaseException as exc:  # a failure or SIGTERM: put the previous model back first
            restored, ok = self._rollback(previous if loaded_before else None)
            if not ok:
                raise CompensationError(f"{exc}; {restored}", cause=exc) from exc
            if isinstance(exc, TargetError):
                raise TargetError(f"{exc}; {restored}") from exc
            raise
        deployed_at = datetime.now(UTC)
        self._write_marker({"name": meta.name, "version": meta.version, "server_path": server_path,
                            "file": filename, "sha256": expected.sha256,
                            "serialized_object": release.registered.executable_uri,
                            "deployed_at": deployed_at.isoformat(timespec="seconds")})
        details = {"loaded_path": server_path, "bundle_sha256": expected.sha256,
                   "schema_fields": ",".join(f.get("name", "?") for f in schema["fields"]),
                   **_replaced(previous, loaded_before, meta.name, meta.version)}
        if smoke is None:
            details["smoke"] = "skipped: the staged repo has no examples/request.json"
        return DeploymentResult(
            target_kind=self.kind, target_uri=self.uri, host_detail=self.where,
            endpoint_url=f"{self.base_url}/transform", model_name=meta.name, model_version=meta.version,
            deployed_at=deployed_at, serialized_object=release.registered.executable_uri,
            loaded_name=meta.name, loaded_version=meta.version, smoke=smoke, details=details)

    def _bundle_file(self, release: Release, previous: dict | None) -> str:
        """The file to copy the bundle to: never the file the server has loaded, unless it holds these very
        bytes. A same-version redeploy of other bytes then writes beside it, so until the new bundle has loaded
        and passed its smoke test the server, its file and a rollback all keep the bytes that served."""
        meta, expected = release.metadata, release.executable_entry
        filename = bundle_filename(meta.name, meta.version, release.executable)
        if not previous or previous.get("file") != filename:
            return filename
        try:
            same = hash_file(self.bundle_dir / filename)[0] == expected.sha256
        except OSError:
            same = False
        return filename if same else bundle_filename(meta.name, meta.version, release.executable, expected.sha256)

    def _check_schema(self, schema: dict, local: Path) -> None:
        names = {f.get("name") for f in schema["fields"] if isinstance(f, dict)}
        outputs = bundle_outputs(local)
        missing = [o for o in outputs or [] if o not in names]
        if missing:
            raise TargetError(f"mleap {self.where}: the loaded schema lacks the bundle's outputs "
                              f"{', '.join(missing)}; the server did not load {local.name}")

    def _smoke(self, release: Release) -> SmokeResult | None:
        if release.example_request is None:
            return None
        resp = self._call("POST", "/transform", json=release.example_request,
                          headers={"Accept": "application/json"})
        if not resp.ok:
            raise self._fail("POST", "/transform", resp, "smoke test with examples/request.json")
        try:
            answer = resp.json()
        except ValueError as exc:
            raise TargetError(f"mleap {self.where}: POST /transform did not answer JSON: "
                              f"{shorten(resp.text)}") from exc
        matched = check_expected(answer, release.example_response, where=f"mleap {self.where}",
                                 strict=self.fail_on_mismatch)
        return SmokeResult(request=release.example_request, response=answer, matched_expected=matched)

    def _rollback(self, previous: dict | None) -> tuple[str, bool]:
        """Put the previous model back (or unload the failed one) so a failed deploy does not stay in service.
        Idempotent; returns what it did and whether it worked."""
        try:
            if previous and previous.get("server_path"):
                self._load(previous["server_path"])
                return f"restored the previous model {previous.get('name')} {previous.get('version')}", True
            self._call("DELETE", "/model")
            self._write_marker(None)
            return "unloaded the failed model", True
        except TargetError as exc:
            return f"putting mleap {self.where} back failed too: {exc}", False

    # ------------------------------------------------------------------------------------------ what it serves
    def lock_path(self) -> Path:
        """A lock file beside the bundles: every host deploying to this server through the folder shares it."""
        return self.bundle_dir / f".modelgov-mleap-{self.host}-{self.port}.lock"

    def served(self, name: str | None = None) -> list[ServedModel]:
        """The one model the server holds (``GET /model`` answers a schema), named by modelgov's marker and
        with the sha256 of the bundle file it loaded. A model loaded behind modelgov's back is reported as
        ``(unknown)``, so no record claims it."""
        if self._schema() is None:
            return []
        marker = self._read_marker()
        if not marker:
            found = ServedModel(name="(unknown)", version="", target_version="", endpoint_url=f"{self.base_url}/transform")
        else:
            bundle = self.bundle_dir / str(marker.get("file", ""))
            try:
                sha = hash_file(bundle)[0] if bundle.is_file() else None
            except OSError:
                sha = None
            found = ServedModel(name=str(marker.get("name")), version=str(marker.get("version")),
                                target_version=str(marker.get("server_path", "")), sha256=sha,
                                endpoint_url=f"{self.base_url}/transform")
        return [found] if name is None or found.name == name else []

    # ------------------------------------------------------------------------------------------ status & co
    def _is_current(self, marker: dict | None, name: str, version: str) -> bool:
        return bool(marker) and marker.get("name") == name and str(marker.get("version")) == str(version)

    def status(self, name: str, version: str) -> str:
        marker, loaded = self._read_marker(), self._schema() is not None
        if not loaded:
            return "stopped"
        if marker is None:
            return "unknown"
        return "deployed" if self._is_current(marker, name, version) else "stopped"

    def undeploy(self, name: str, version: str) -> None:
        """Unload ``name`` at ``version``: the owner's version, or the ``target_version`` ``served()`` reported
        (the path the server loaded), which is what ``modelgov undeploy`` hands every target."""
        marker = self._read_marker()
        if marker is not None and str(marker.get("server_path", "")) == version and marker.get("name") == name:
            version = str(marker.get("version"))
        if marker is not None and not self._is_current(marker, name, version):
            return  # another version is in service; this one already is not
        if marker is None and self._schema() is not None:
            raise TargetError(f"mleap {self.where}: a model is loaded but no modelgov record says which; "
                              f"refusing to unload it as {name} {version}")
        resp = self._call("DELETE", "/model")
        if not resp.ok:
            raise self._fail("DELETE", "/model", resp, f"unloading {name} {version}")
        self._write_marker(None)

    def verify(self, release: Release) -> list[str]:
        meta, expected = release.metadata, release.executable_entry
        marker = self._read_marker()
        if not self._is_current(marker, meta.name, meta.version):
            current = f"{marker.get('name')} {marker.get('version')}" if marker else "no recorded model"
            return [f"mleap {self.where} serves {current}, not {meta.name} {meta.version}"]
        problems = []
        if marker.get("sha256") != expected.sha256:
            problems.append(f"mleap {self.where}: loaded bundle sha256 {marker.get('sha256')}, "
                            f"manifest says {expected.sha256}")
        local = self.bundle_dir / marker.get("file", "")
        try:
            sha, _ = hash_file(local)
            if sha != expected.sha256:
                problems.append(f"{local}: sha256 {sha} differs from the manifest's {expected.sha256}")
        except OSError as exc:
            problems.append(f"{local}: cannot be read ({exc})")
        if self._schema() is None:
            problems.append(f"mleap {self.where}: no model loaded (GET /model answers 500)")
        return problems


def _replaced(previous: dict | None, loaded_before: bool, name: str, version: str) -> dict[str, str]:
    """What the deploy took out of service: MLeap holds one model, so loading replaces whatever was there."""
    if not loaded_before:
        return {"replaced": "none"}
    if previous is None:
        return {"replaced": "unknown (a model was loaded that modelgov did not record)"}
    if previous.get("name") == name and str(previous.get("version")) == version:
        return {"replaced": "same version (reloaded)"}
    return {"replaced": f"{previous.get('name')} {previous.get('version')}",
            "replaced_model": str(previous.get("name")), "replaced_version": str(previous.get("version")),
            "replaced_serialized_object": str(previous.get("serialized_object", ""))}


def _session(timeout: float | tuple[float, float], retries: int, backoff: float) -> TimeoutSession:
    """Retries connection errors and gateway 5xx on idempotent methods; MLeap's own 500s are answers."""
    methods = frozenset({"GET", "PUT", "DELETE"})
    retry = ClockedRetry(total=retries, connect=retries, read=retries, status=retries, backoff_factor=backoff,
                         status_forcelist=RETRY_STATUSES, allowed_methods=methods, raise_on_status=False)
    session = TimeoutSession(timeout, attempts=retries + 1, retried_methods=methods)
    session.mount("http://", HTTPAdapter(max_retries=retry, pool_connections=2, pool_maxsize=4))
    return session
