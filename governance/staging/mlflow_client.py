"""A small client for the MLflow tracking server's REST API: just what intake needs from a model registry.

Why REST and not the ``mlflow`` package: MLflow is heavy and its pins fight Prefect's, so the core package
talks to the server directly (the ``mlflow`` extra is only for people who want the client themselves).
One method per endpoint, one pooled session with timeouts and bounded retries on connection errors and
5xx, a total deadline for everything one fetch does, and typed errors carrying MLflow's ``error_code``.

Credentials come only from MLflow's own variables (``MLFLOW_TRACKING_TOKEN``, or
``MLFLOW_TRACKING_USERNAME``/``MLFLOW_TRACKING_PASSWORD``); a tracking URI with a password in it is refused.
Artifacts are downloaded through the server's artifact proxy (``mlflow-artifacts:``, the default of
``mlflow server``) or read from a local ``file:`` store.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote, unquote, urlparse

import requests

from governance.errors import StagingError
from governance.http import build_session

API = "/api/2.0/mlflow"
ARTIFACTS_API = "/api/2.0/mlflow-artifacts/artifacts"
DEFAULT_DEADLINE_S = 600.0
MAX_ARTIFACT_FILES = 10_000
MAX_ARTIFACT_BYTES = 8 * 1024**3


class MLflowError(StagingError):
    """The MLflow tracking server refused or failed a request; carries MLflow's ``error_code`` when sent."""

    def __init__(self, message: str, *, status: int | None = None, error_code: str | None = None):
        self.status = status
        self.error_code = error_code
        super().__init__(message)


class MLflowNotFound(MLflowError):
    """No such registered model, version, alias or run (RESOURCE_DOES_NOT_EXIST / 404)."""


class MLflowAuthError(MLflowError):
    """Missing or refused credentials (401/403)."""


class MLflowUnavailable(MLflowError):
    """The server could not be reached, timed out, answered 5xx, or the total deadline passed."""


@dataclass(frozen=True)
class ModelVersion:
    name: str
    version: str
    description: str
    run_id: str | None
    source: str | None
    tags: dict[str, str] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class RegisteredModel:
    name: str
    description: str
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DatasetInput:
    """A dataset the run logged with ``mlflow.log_input``: its digest identifies the exact data."""

    name: str
    digest: str
    source_type: str
    source: str  # MLflow's JSON description of where the data lives
    context: str | None = None


@dataclass(frozen=True)
class Run:
    run_id: str
    tags: dict[str, str] = field(default_factory=dict)
    datasets: tuple[DatasetInput, ...] = ()


def _tags(items: list[dict] | None) -> dict[str, str]:
    return {t["key"]: t.get("value", "") for t in items or [] if "key" in t}


@dataclass(frozen=True)
class TrackingSettings:
    """Where the tracking server is and how to authenticate; built from MLflow's environment variables."""

    uri: str
    token: str | None = None
    username: str | None = None
    password: str | None = None
    verify: bool | str = True

    @classmethod
    def from_env(cls) -> TrackingSettings:
        uri = os.environ.get("MLFLOW_TRACKING_URI", "").strip()
        if not uri:
            raise MLflowError("MLFLOW_TRACKING_URI is not set; point it at the MLflow tracking server "
                              "(http(s)://HOST:PORT)")
        parsed = urlparse(uri)
        if parsed.scheme not in ("http", "https"):
            raise MLflowError(f"MLFLOW_TRACKING_URI {uri!r}: modelgov reads models from a tracking server "
                              "over http(s); start one with `mlflow server` in front of the store")
        if parsed.password or parsed.username:
            raise MLflowError("MLFLOW_TRACKING_URI contains credentials; remove them and set "
                              "MLFLOW_TRACKING_USERNAME/MLFLOW_TRACKING_PASSWORD or MLFLOW_TRACKING_TOKEN")
        from governance.tls import session_verify

        # MLflow's own settings first (its users know them), else the CA bundle of every client; MLflow's
        # insecure switch counts as insecure (governance.tls: logged loudly, refused for production)
        verify: bool | str = os.environ.get("MLFLOW_TRACKING_SERVER_CERT_PATH") or session_verify()
        return cls(uri=uri.rstrip("/"), token=os.environ.get("MLFLOW_TRACKING_TOKEN") or None,
                   username=os.environ.get("MLFLOW_TRACKING_USERNAME") or None,
                   password=os.environ.get("MLFLOW_TRACKING_PASSWORD") or None, verify=verify)


class MLflowClient:
    """One method per MLflow REST endpoint used; every call shares one total deadline."""

    def __init__(self, settings: TrackingSettings, *, deadline_s: float = DEFAULT_DEADLINE_S,
                 timeout: tuple[float, float] = (5.0, 60.0), retries: int = 3):
        self.settings = settings
        self.base = settings.uri
        self._deadline = time.monotonic() + deadline_s
        self._deadline_s = deadline_s
        self._session = build_session(retries=retries, backoff=0.5, timeout=timeout)
        self._session.verify = settings.verify
        if settings.token:
            self._session.headers["Authorization"] = f"Bearer {settings.token}"
        elif settings.username and settings.password:
            self._session.auth = (settings.username, settings.password)

    @classmethod
    def from_env(cls, **kwargs: Any) -> MLflowClient:
        return cls(TrackingSettings.from_env(), **kwargs)

    def close(self) -> None:
        self._session.close()

    # -- transport -----------------------------------------------------------------------------------------
    def _remaining(self) -> float:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise MLflowUnavailable(f"MLflow at {self.base}: gave up after the {self._deadline_s:.0f}s deadline")
        return left

    def _request(self, method: str, path: str, *, what: str, stream: bool = False,
                 params: dict | None = None) -> requests.Response:
        left = self._remaining()
        connect, read = self._session.default_timeout  # type: ignore[misc]
        try:
            resp = self._session.request(method, f"{self.base}{path}", params=params, stream=stream,
                                         timeout=(min(connect, left), min(read, left)))
        except requests.exceptions.SSLError as exc:  # the message names the host and the CA setting
            raise MLflowError(f"MLflow at {self.base} ({what}): {exc}; for MLflow alone, "
                              "MLFLOW_TRACKING_SERVER_CERT_PATH") from exc
        except requests.RequestException as exc:
            raise MLflowUnavailable(f"MLflow at {self.base} is not reachable ({what}): "
                                    f"{exc.__class__.__name__}") from exc
        if resp.status_code < 400:
            return resp
        code, message = None, resp.text.strip()[:300]
        try:
            body = resp.json()
            code, message = body.get("error_code"), body.get("message", message)
        except ValueError:
            pass
        detail = f"{what}: HTTP {resp.status_code}" + (f" {code}" if code else "") + f": {message}"
        resp.close()
        if resp.status_code in (401, 403):
            raise MLflowAuthError(f"MLflow at {self.base} refused {detail} (set MLFLOW_TRACKING_TOKEN or "
                                  "MLFLOW_TRACKING_USERNAME/MLFLOW_TRACKING_PASSWORD)",
                                  status=resp.status_code, error_code=code)
        if resp.status_code == 404 or code == "RESOURCE_DOES_NOT_EXIST":
            raise MLflowNotFound(f"MLflow at {self.base}: {detail}", status=resp.status_code, error_code=code)
        if resp.status_code >= 500:
            raise MLflowUnavailable(f"MLflow at {self.base}: {detail}", status=resp.status_code, error_code=code)
        raise MLflowError(f"MLflow at {self.base}: {detail}", status=resp.status_code, error_code=code)

    def _get_json(self, endpoint: str, what: str, **params: str) -> dict:
        resp = self._request("GET", f"{API}/{endpoint}", params=params, what=what)
        try:
            return resp.json()
        except ValueError as exc:
            raise MLflowError(f"MLflow at {self.base}: {what}: answer is not JSON") from exc

    # -- registry ------------------------------------------------------------------------------------------
    @staticmethod
    def _model_version(data: dict) -> ModelVersion:
        mv = data["model_version"]
        return ModelVersion(name=mv["name"], version=str(mv["version"]), description=mv.get("description") or "",
                            run_id=mv.get("run_id") or None, source=mv.get("source"), tags=_tags(mv.get("tags")),
                            aliases=tuple(mv.get("aliases") or ()))

    def get_model_version(self, name: str, version: str) -> ModelVersion:
        return self._model_version(self._get_json("model-versions/get", f"model version {name}/{version}",
                                                  name=name, version=version))

    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        return self._model_version(self._get_json("registered-models/alias", f"alias {name}@{alias}",
                                                  name=name, alias=alias))

    def get_registered_model(self, name: str) -> RegisteredModel:
        rm = self._get_json("registered-models/get", f"registered model {name}", name=name)["registered_model"]
        return RegisteredModel(name=rm["name"], description=rm.get("description") or "", tags=_tags(rm.get("tags")))

    def get_download_uri(self, name: str, version: str) -> str:
        return self._get_json("model-versions/get-download-uri", f"download URI of {name}/{version}",
                              name=name, version=version)["artifact_uri"]

    # -- tracking ------------------------------------------------------------------------------------------
    def get_run(self, run_id: str) -> Run:
        run = self._get_json("runs/get", f"run {run_id}", run_id=run_id)["run"]
        datasets = []
        for item in (run.get("inputs") or {}).get("dataset_inputs") or []:
            ds = item.get("dataset") or {}
            datasets.append(DatasetInput(name=ds.get("name", ""), digest=ds.get("digest", ""),
                                         source_type=ds.get("source_type", ""), source=ds.get("source", ""),
                                         context=_tags(item.get("tags")).get("mlflow.data.context")))
        return Run(run_id=run["info"]["run_id"], tags=_tags((run.get("data") or {}).get("tags")),
                   datasets=tuple(datasets))

    # -- artifacts -----------------------------------------------------------------------------------------
    def download_artifacts(self, artifact_uri: str, dest: Path, *, max_files: int = MAX_ARTIFACT_FILES,
                           max_bytes: int = MAX_ARTIFACT_BYTES) -> list[str]:
        """Copy every file under ``artifact_uri`` into ``dest``; return their relative POSIX paths. More than
        ``max_files`` files or ``max_bytes`` bytes in all is an MLflowError, raised as soon as it is seen (the
        caller passes the intake limits max_archive_files and max_extracted_bytes)."""
        parsed = urlparse(artifact_uri)
        if parsed.scheme == "mlflow-artifacts":
            return self._download_proxied(unquote(parsed.path).strip("/"), dest, max_files, max_bytes)
        if parsed.scheme in ("", "file") and Path(unquote(parsed.path)).is_dir():
            return _copy_local(Path(unquote(parsed.path)), dest, max_files, max_bytes)
        raise MLflowError(f"MLflow at {self.base}: model artifacts are at {artifact_uri}, which modelgov reads "
                          "only through the tracking server's artifact proxy (start `mlflow server` with "
                          "--serve-artifacts and --artifacts-destination) or from a local file: store")

    def _list_proxied(self, root: str, max_files: int) -> list[tuple[str, int | None]]:
        files: list[tuple[str, int | None]] = []
        pending = [""]
        while pending:
            rel = pending.pop()
            path = f"{root}/{rel}".rstrip("/")
            listing = self._request("GET", ARTIFACTS_API, params={"path": path},
                                    what=f"list artifacts {path}").json()
            for entry in listing.get("files") or []:
                name = PurePosixPath(entry["path"]).name
                child = f"{rel}/{name}".lstrip("/")
                if name in ("", ".", "..") or "/" in name:
                    raise MLflowError(f"MLflow at {self.base}: artifact listing of {path} has a bad entry {entry!r}")
                if entry.get("is_dir"):
                    pending.append(child)
                else:
                    files.append((child, int(entry["file_size"]) if entry.get("file_size") is not None else None))
                if len(files) > max_files:
                    raise MLflowError(f"MLflow at {self.base}: more than {max_files} artifact files under {root} "
                                      "(the limit max_archive_files)")
        return sorted(files)

    def _download_proxied(self, root: str, dest: Path, max_files: int, max_bytes: int) -> list[str]:
        files = self._list_proxied(root, max_files)
        listed = sum(size or 0 for _, size in files)
        if listed > max_bytes:
            raise MLflowError(f"MLflow at {self.base}: the artifacts under {root} are {listed} bytes, more than "
                              f"{max_bytes} (the limit max_extracted_bytes); nothing was downloaded")
        if not files:
            raise MLflowNotFound(f"MLflow at {self.base}: no artifacts under mlflow-artifacts:/{root}")
        total = 0
        for rel, size in files:
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            url = f"{ARTIFACTS_API}/{quote(f'{root}/{rel}')}"
            with self._request("GET", url, stream=True, what=f"download {rel}") as resp, target.open("wb") as out:
                received = 0
                for chunk in resp.iter_content(1024 * 1024):
                    self._remaining()
                    received += len(chunk)
                    total += len(chunk)
                    if total > max_bytes:
                        raise MLflowError(f"MLflow at {self.base}: model artifacts exceed {max_bytes} bytes (the "
                                          "limit max_extracted_bytes)")
                    out.write(chunk)
            if size is not None and received != size:
                raise MLflowUnavailable(f"MLflow at {self.base}: {rel} arrived with {received} bytes, the listing "
                                        f"says {size}")
        return [rel for rel, _ in files]


def _copy_local(source: Path, dest: Path, max_files: int, max_bytes: int) -> list[str]:
    copied: list[str] = []
    total = 0
    for path in sorted(source.rglob("*")):
        if path.is_symlink():
            raise MLflowError(f"{path}: model artifacts must be plain files, not links")
        if path.is_file():
            total += path.stat().st_size
            if len(copied) >= max_files or total > max_bytes:
                limit = "max_archive_files" if len(copied) >= max_files else "max_extracted_bytes"
                raise MLflowError(f"{source}: the model artifacts are over the limit {limit} "
                                  f"({max_files} files, {max_bytes} bytes)")
            rel = path.relative_to(source).as_posix()
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, dest / rel)
            copied.append(rel)
    return copied
