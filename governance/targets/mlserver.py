"""``mlserver://HOST:PORT?repository=DIR``: deploy to a running MLServer through its model repository API.

A model in MLflow's format (``executable/MLmodel``) is copied as its whole folder and served by MLServer's
MLflow runtime (``mlserver-mlflow``), which loads any flavor through MLflow's pyfunc loader.

Recipe (measured against MLServer 1.7): copy the registered artifact into ``<repository>/<name>/<version>/``
with an explicit ``model-settings.json`` (name + integer version: MLServer orders versions as ints), call
``POST /v2/repository/models/{name}/load``, poll ``/v2/models/{name}/versions/{v}/ready``, then run the
smoke inference. MLServer answers a failed load with 500 text/plain; the reason is only in its log.

What serves is never taken down for a failed attempt: a new version loads beside the old ones, and the old
ones are unloaded only after the new one is ready and passed its smoke test. Redeploying a version that
serves never puts unproven bytes under its name: the very bytes already installed are only smoke-tested;
other bytes are first loaded and smoke-tested under a side name (``NAME--modelgov-proof-ID``), and only then
is the old folder moved aside for MLServer to reload, which it does by loading the new copy before unloading
the old one; on any failure (or SIGTERM) the old folder is put back and reloaded. What it
serves is read from MLServer itself: the repository index, per-version readiness, and the sha256 of the
installed executable.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from urllib.parse import urlparse

import requests

from governance.checksums import ArtifactFile, hash_file
from governance.deadlines import TARGET_DEADLINE_ENV, Clock, running
from governance.errors import CompensationError, ConfigError, TargetDeadlineExceeded, TargetError
from governance.http import build_session
from governance.staging.repo import MLFLOW_MODEL_FILE
from governance.targets.base import (
    READY_SETTING,
    DeploymentResult,
    Release,
    ServedModel,
    ServingTarget,
    SmokeResult,
    confined_path,
    late,
    parse_seconds,
    target_deadline,
    target_options,
)
from governance.targets.smoke import check_expected

IMPLEMENTATIONS = {
    "sklearn": "mlserver_sklearn.SKLearnModel",
    "scikit-learn": "mlserver_sklearn.SKLearnModel",
    "xgboost": "mlserver_xgboost.XGBoostModel",
    "lightgbm": "mlserver_lightgbm.LightGBMModel",
    "mlflow": "mlserver_mlflow.MLflowRuntime",
}
SUFFIX_FRAMEWORK = {".joblib": "sklearn", ".pkl": "sklearn", ".pickle": "sklearn", ".bst": "xgboost",
                    ".ubj": "xgboost", ".txt": "lightgbm"}
SETTINGS_FILE = "model-settings.json"
QUERY_KEYS = {"repository", "public_url", "keep_previous", "ready_timeout", "tls"}
DEFAULT_READY_TIMEOUT_S = 1800.0  # large models take minutes to load; ?ready_timeout=SECONDS per target
LOCK_FILE = ".modelgov-deploy.lock"
PROOF_MARK = "--modelgov-proof-"  # NAME--modelgov-proof-ID: where other bytes of a serving version are proven


class MLServerTarget(ServingTarget):
    kind = "mlserver"

    def __init__(self, uri: str, *, ready_timeout_s: float | None = None):
        super().__init__(uri)
        parsed = urlparse(uri)
        if parsed.scheme != "mlserver" or not parsed.hostname or not parsed.port:
            raise ConfigError(f"MLServer target must look like mlserver://HOST:PORT?repository=DIR, got {uri!r}")
        query = target_options(uri, QUERY_KEYS, "mlserver")
        if "repository" not in query:
            raise ConfigError(f"{uri}: missing ?repository=DIR (MLServer's model repository folder)")
        self.repository = Path(query["repository"])
        self._host_detail = f"{parsed.hostname}:{parsed.port}"
        # ?tls=true: MLServer behind HTTPS (its own TLS or a proxy), verified with the CA bundle (governance.tls)
        scheme = "https" if query.get("tls", "false").lower() == "true" else "http"
        self.base_url = f"{scheme}://{self._host_detail}"
        self.public_url = query.get("public_url", self.base_url).rstrip("/")
        self.keep_previous = query.get("keep_previous", "false").lower() == "true"
        self.ready_timeout_s = ready_timeout_s if ready_timeout_s is not None else parse_seconds(
            query.get("ready_timeout"), DEFAULT_READY_TIMEOUT_S, option="ready_timeout", uri=uri)
        self.deadline = target_deadline()
        self._session = build_session(retries=2, backoff=0.3, timeout=(3.0, 60.0))
        # a load answers when the model is loaded: its read timeout is the readiness wait, and it is not retried
        self._load_session = build_session(retries=0, timeout=(3.0, self.ready_timeout_s))
        self._sha_cache: dict[tuple[str, int, int], str] = {}

    @property
    def host_detail(self) -> str:
        return self._host_detail

    def lock_path(self) -> Path:
        """A lock file in the model repository: every host deploying through that folder shares it."""
        return self.repository / LOCK_FILE

    # -- helpers -------------------------------------------------------------------------------------------
    def _call(self, method: str, path: str, *, session: requests.Session | None = None, clock: Clock | None = None,
              setting: str = TARGET_DEADLINE_ENV, **kwargs) -> requests.Response:
        """One request as one operation: under ``clock`` (a load's), else under the target deadline, and
        inside the operation already running on this thread (``served``) when that one ends sooner."""
        with running(clock or Clock(self.deadline)) as active:
            try:
                return (session or self._session).request(method, f"{self.base_url}{path}", **kwargs)
            except requests.RequestException as exc:
                timed_out = late(exc, active, f"MLServer {method} {path}", self.host_detail, setting)
                if timed_out:
                    raise timed_out from exc
                if isinstance(exc, requests.exceptions.SSLError):  # names the host and the CA setting
                    raise TargetError(f"MLServer at {self.host_detail}: {exc}") from exc
                raise TargetError(f"MLServer at {self.host_detail} is not reachable: "
                                  f"{exc.__class__.__name__}") from exc

    def _runtime_version(self) -> str | None:
        """MLServer's own version (``GET /v2``, the Open Inference Protocol's server metadata), recorded with the
        deployment so a bill of materials names the runtime that served it; None when it does not say."""
        try:
            resp = self._call("GET", "/v2")
            version = resp.json().get("version") if resp.ok else None
        except (TargetError, ValueError, AttributeError):
            return None
        return str(version) if version else None

    def _model_dir(self, name: str, version: str) -> Path:
        return self.repository / name / version

    def _writable_model_dir(self, name: str, version: str) -> Path:
        """The version folder a deploy or undeploy changes, refused (TargetError) unless it lies inside the
        model repository: the name comes from the registry, which is data someone else wrote."""
        return confined_path(self.repository, f"{name}/{version}", what="MLServer model repository")

    @staticmethod
    def _model_files(release: Release) -> list[tuple[ArtifactFile, str]]:
        """(registered file, name under the version folder): the executable, or the whole folder of a model
        in MLflow's format (``executable/MLmodel`` with its model files and environment)."""
        files = release.registered.manifest.files
        exe = PurePosixPath(release.executable)
        if exe.name != MLFLOW_MODEL_FILE:
            return [(release.registered.manifest.executable_entry, exe.name)]
        folder = f"{exe.parent}/"
        return [(f, f.path[len(folder):]) for f in files if f.path.startswith(folder)]

    @staticmethod
    def _implementation(release: Release) -> str:
        if PurePosixPath(release.executable).name == MLFLOW_MODEL_FILE:
            return IMPLEMENTATIONS["mlflow"]  # MLflow's pyfunc loader reads the MLmodel, whatever the flavor
        framework = (release.metadata.framework or "").lower()
        if not framework:
            framework = SUFFIX_FRAMEWORK.get(PurePosixPath(release.executable).suffix, "")
        if framework not in IMPLEMENTATIONS:
            raise TargetError(f"MLServer has no runtime for framework {framework or '(unknown)'!r} "
                              f"(set model.framework to one of {', '.join(sorted(IMPLEMENTATIONS))})")
        return IMPLEMENTATIONS[framework]

    def _write_copy(self, release: Release, version: str, served_as: str, parent: Path) -> Path:
        """The registered files (each checked against its sha256 while copied) and a model-settings.json
        naming ``served_as``, in a new hidden folder under ``parent`` (MLServer's glob for model-settings.json
        skips dot-folders, so it loads nothing until the folder is renamed into place)."""
        filename = PurePosixPath(release.executable).name
        parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{version}.tmp-", dir=parent))
        try:
            for expected, dest in self._model_files(release):
                path = confined_path(tmp, dest, what="MLServer model repository")
                path.parent.mkdir(parents=True, exist_ok=True)
                with path.open("wb") as out:
                    for chunk in release.registry.read_verified(release.registered, expected.path):
                        out.write(chunk)
            uri = "./" if filename == MLFLOW_MODEL_FILE else f"./{filename}"
            settings = {"name": served_as, "implementation": self._implementation(release),
                        "parameters": {"uri": uri, "version": version,
                                       "extra": {"modelgov": {"model_version": release.metadata.version,
                                                              "executable": filename}}}}
            (tmp / SETTINGS_FILE).write_text(json.dumps(settings, indent=2) + "\n")
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return tmp

    def _install(self, release: Release, version: str) -> Path | None:
        """Copy the registered executable into the repository, checking sha256; write settings last.

        A folder already there for this version is moved aside (returned) so a failure can put it back."""
        target = self._writable_model_dir(release.metadata.name, version)
        tmp = self._write_copy(release, version, release.metadata.name, target.parent)
        try:
            backup = None
            if target.exists():
                backup = target.parent / f".{version}.previous-{uuid.uuid4().hex[:8]}"
                os.rename(target, backup)
            os.rename(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return backup

    def _recover_leftovers(self, name: str) -> None:
        """Undo what a run killed mid-deploy left in the model's folder (we hold the deploy lock)."""
        if self.repository.is_dir():
            for proof in self.repository.iterdir():
                if proof.name.startswith(f"{name}{PROOF_MARK}"):
                    self._drop_proof(proof.name)
        folder = confined_path(self.repository, name, what="MLServer model repository")
        if not folder.is_dir():
            return
        for leftover in folder.iterdir():
            if not leftover.name.startswith(".") or not leftover.is_dir():
                continue
            version, _, kind = leftover.name[1:].partition(".")
            if kind.startswith("previous-") and not (folder / version).exists():
                os.rename(leftover, folder / version)
            else:
                shutil.rmtree(leftover, ignore_errors=True)

    def recover(self, name: str) -> list[str]:
        """Put back folders a killed run moved aside, and remove versions on disk that do not serve: a
        killed run's half-loaded version would otherwise make every later load of the model fail."""
        self._recover_leftovers(name)
        ready = {m.target_version for m in self.served(name)}
        stale = [v for v in self._versions_on_disk(name) if v not in ready]
        for version in stale:
            shutil.rmtree(self._model_dir(name, version), ignore_errors=True)
        return stale

    def _load(self, name: str, clock: Clock | None = None) -> None:
        """(Re)load ``name``: MLServer answers once the versions on disk are loaded, so the request's wait is
        the load; it and the readiness wait after it share ``clock`` (``ready_timeout``)."""
        resp = self._call("POST", f"/v2/repository/models/{name}/load", session=self._load_session,
                          clock=clock or Clock(self.ready_timeout_s), setting=READY_SETTING)
        if resp.status_code == 200:
            return
        if resp.status_code == 404:
            raise TargetError(f"MLServer at {self.host_detail} does not see model {name!r} in its repository "
                              f"(is ?repository= the folder the server was started on?)")
        raise TargetError(f"MLServer at {self.host_detail} failed to load {name!r}: HTTP {resp.status_code} "
                          f"{resp.text.strip()[:200]} (the reason is in the MLServer log)")

    def _wait_ready(self, name: str, version: str, clock: Clock) -> None:
        pause = 0.02
        while True:
            resp = self._call("GET", f"/v2/models/{name}/versions/{version}/ready", clock=clock,
                              setting=READY_SETTING)
            if resp.status_code == 200:
                return
            if clock.left() <= pause:  # no time for another look: say what the last one saw
                raise TargetDeadlineExceeded(
                    f"MLServer {name} version {version} ready", self.host_detail, clock.deadline, clock.waited(),
                    READY_SETTING, message=f"MLServer at {self.host_detail}: {name} version {version} not ready "
                    f"after waiting {clock.waited():.0f}s (ready_timeout {self.ready_timeout_s:g}s; last HTTP "
                    f"{resp.status_code}); {READY_SETTING}")
            time.sleep(pause)
            pause = min(pause * 2, 0.5)  # ready at once after a synchronous load; a slow model is polled gently

    def _infer(self, name: str, version: str, request: object) -> dict:
        resp = self._call("POST", f"/v2/models/{name}/versions/{version}/infer", json=request)
        if resp.status_code != 200:
            raise TargetError(f"MLServer at {self.host_detail}: smoke inference on {name} v{version} failed "
                              f"with HTTP {resp.status_code}: {resp.text.strip()[:200]}")
        return resp.json()

    def _versions_on_disk(self, name: str) -> list[str]:
        folder = self.repository / name
        if not folder.is_dir():
            return []
        return sorted(p.name for p in folder.iterdir()
                      if not p.name.startswith(".") and (p / SETTINGS_FILE).is_file())

    def _sha256(self, path: Path) -> str | None:
        try:
            stat = path.stat()
        except OSError:
            return None
        key = (str(path), stat.st_size, stat.st_mtime_ns)
        if key not in self._sha_cache:
            self._sha_cache[key] = hash_file(path)[0]
        return self._sha_cache[key]

    def _endpoint(self, name: str, version: str) -> str:
        return f"{self.public_url}/v2/models/{name}/versions/{version}/infer"

    # -- what it serves ------------------------------------------------------------------------------------
    def served(self, name: str | None = None) -> list[ServedModel]:
        """Ready model versions, each confirmed by its own readiness call; the dotted version and the
        executable's sha256 come from the installed folder.

        All models: MLServer's repository index. One model: the version folders under ``repository/NAME``
        (where every deploy installs), each asked for readiness. MLServer builds its index from the same
        ``model-settings.json`` files plus each one's state, so the answer is the same for our layout, but the
        index parses every model's settings on each call (125 ms with 250 models under load, five calls per
        deploy) while this costs a readiness call per version of the one model."""
        with running(Clock(self.deadline)):  # one question, one deadline for all its calls
            return self._served_one(name) if name is not None else self._served_all()

    def _served_all(self) -> list[ServedModel]:
        resp = self._call("POST", "/v2/repository/index", json={})
        if resp.status_code != 200:
            raise TargetError(f"MLServer at {self.host_detail}: repository index answered HTTP "
                              f"{resp.status_code}: {resp.text.strip()[:200]}")
        out = []
        for item in resp.json():
            model, version = str(item.get("name", "")), str(item.get("version") or "")
            if item.get("state") == "READY" and self._ready(model, version):
                out.append(self._served_model(model, version))
        return sorted(out, key=lambda m: (m.name, m.target_version))

    def _served_one(self, name: str) -> list[ServedModel]:
        versions = self._versions_on_disk(name)
        if (self.repository / name / SETTINGS_FILE).is_file():
            versions.append("")  # an unversioned model folder (not ours, but served under this name)
        out = [self._served_model(name, v) for v in versions if self._ready(name, v)]
        return sorted(out, key=lambda m: m.target_version)

    def _ready(self, model: str, version: str) -> bool:
        path = f"/v2/models/{model}/versions/{version}/ready" if version else f"/v2/models/{model}/ready"
        return self._call("GET", path).status_code == 200

    def _served_model(self, model: str, version: str) -> ServedModel:
        dotted, executable = self._installed(model, version)
        sha = self._sha256(self._model_dir(model, version) / executable) if executable else None
        return ServedModel(name=model, version=dotted, target_version=version, sha256=sha,
                           endpoint_url=self._endpoint(model, version))

    def _installed(self, name: str, version: str) -> tuple[str, str | None]:
        """(dotted version, executable file name) from the version's model-settings.json."""
        try:
            settings = json.loads((self._model_dir(name, version) / SETTINGS_FILE).read_text(encoding="utf-8"))
            params = settings.get("parameters") or {}
            ours = (params.get("extra") or {}).get("modelgov") or {}
            executable = ours.get("executable") or PurePosixPath(str(params.get("uri", ""))).name or None
            return str(ours.get("model_version") or dotted_version(version)), executable
        except (OSError, ValueError, AttributeError):
            return dotted_version(version), None

    # -- interface -----------------------------------------------------------------------------------------
    def deploy(self, release: Release) -> DeploymentResult:
        """Install, load, wait until ready and smoke-test the release; older versions are retired after.

        A redeploy of a version that serves never puts unproven bytes under its name: when the installed
        files are these very bytes nothing is reinstalled or reloaded (the smoke test proves it answers);
        other bytes are first loaded and smoke-tested under a side name (``_prove_aside``), and only then
        swapped in, so a failure leaves the version serving what it served, untouched."""
        name = release.metadata.name
        version = str(release.metadata.version_number)
        self._writable_model_dir(name, version)  # before anything under the model's folder is touched
        self._recover_leftovers(name)
        previous = [v for v in self._versions_on_disk(name) if v != version]
        serving_before = {m.target_version for m in self.served(name)}
        details = {"repository": str(self.repository), "mlserver_version": version,
                   "implementation": self._implementation(release)}
        if version in serving_before and self._installed_matches(release, version):
            smoke, loaded_name, loaded_version = self._smoke(release, name, version)
            details["reinstalled"] = "no: the serving copy holds these bytes"
        else:
            if version in serving_before:
                details["proven_as"] = self._prove_aside(release, version)
            backup = self._install(release, version)
            try:
                loading = Clock(self.ready_timeout_s)
                self._load(name, loading)
                self._wait_ready(name, version, loading)
                smoke, loaded_name, loaded_version = self._smoke(release, name, version)
            except BaseException as exc:
                self._compensate(name, version, backup, serving_before, exc)
                raise
            if backup is not None:
                shutil.rmtree(backup, ignore_errors=True)
        if not self.keep_previous and previous:
            details.update(self._retire_versions(name, previous))
        runtime = self._runtime_version()
        if runtime:
            details["runtime_version"] = runtime
        return DeploymentResult(
            target_kind=self.kind, target_uri=self.uri, host_detail=self.host_detail,
            endpoint_url=self._endpoint(name, version),
            model_name=name, model_version=release.metadata.version, deployed_at=datetime.now(UTC),
            serialized_object=release.registered.executable_uri, loaded_name=loaded_name,
            loaded_version=loaded_version, smoke=smoke, details=details)

    def _smoke(self, release: Release, name: str, version: str) -> tuple[SmokeResult | None, str, str]:
        """The example request sent to ``name`` ``version``: (result, name and version it answered as);
        a TargetError when it answers as another model or differs from examples/response.json."""
        if release.example_request is None:
            return None, name, version
        answer = self._infer(name, version, release.example_request)
        loaded_name, loaded_version = str(answer.get("model_name", "")), str(answer.get("model_version", ""))
        if (loaded_name, loaded_version) != (name, version):
            raise TargetError(f"MLServer at {self.host_detail} answered as {loaded_name} "
                              f"v{loaded_version}, expected {name} v{version}")
        matched = check_expected(answer, release.example_response, where=f"MLServer at {self.host_detail}")
        return SmokeResult(release.example_request, answer, matched), loaded_name, loaded_version

    def _installed_matches(self, release: Release, version: str) -> bool:
        """True when the installed copy of ``version`` holds exactly the release's files and runtime."""
        folder = self._model_dir(release.metadata.name, version)
        try:
            settings = json.loads((folder / SETTINGS_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False
        if not isinstance(settings, dict) or settings.get("implementation") != self._implementation(release):
            return False
        return all(self._sha256(folder / dest) == expected.sha256 for expected, dest in self._model_files(release))

    def _prove_aside(self, release: Release, version: str) -> str:
        """Load the release under a side name (``NAME--modelgov-proof-ID``), wait until it is ready and
        smoke-test it there, then take the side copy away; returns the side name. A failure raises
        TargetError before the serving version is touched."""
        name = release.metadata.name
        side = f"{name}{PROOF_MARK}{uuid.uuid4().hex[:8]}"
        folder = self._writable_model_dir(side, version)
        try:
            os.rename(self._write_copy(release, version, side, folder.parent), folder)
            proving = Clock(self.ready_timeout_s)
            self._load(side, proving)
            self._wait_ready(side, version, proving)
            self._smoke(release, side, version)
        except TargetError as exc:
            raise TargetError(f"{exc} (other bytes for {name} version {version}, which serves, were tried under "
                              f"the side name {side} first; what serves was not touched)") from exc
        finally:
            self._drop_proof(side)
        return side

    def _drop_proof(self, side: str) -> None:
        """Remove a side copy's folder (so no restart loads it), then unload it; best effort, since a side copy
        never answers under the model's own name."""
        shutil.rmtree(confined_path(self.repository, side, what="MLServer model repository"), ignore_errors=True)
        with contextlib.suppress(TargetError):
            self._call("POST", f"/v2/repository/models/{side}/unload")

    def _retire_versions(self, name: str, versions: list[str]) -> dict[str, str]:
        """Take older versions out of service once the new one serves; a failure here leaves them serving
        (the record then keeps them ``deployed``) and is reported, not raised."""
        for old in versions:
            shutil.rmtree(self._model_dir(name, old), ignore_errors=True)
        try:
            self._load(name)  # drops versions no longer on disk; the new one stays loaded
        except TargetError as exc:
            return {"replaced_versions": "", "replace_error": str(exc)}
        return {"replaced_versions": ",".join(versions)}

    def _compensate(self, name: str, version: str, backup: Path | None, serving_before: set[str],
                    failure: BaseException) -> None:
        """Put the repository and the server back as they were: the new copy removed, the old folder (if any)
        restored and reloaded. Idempotent; if it cannot, raise CompensationError saying what is left."""
        problems = []
        target = self._model_dir(name, version)
        try:
            if backup is not None and backup.exists():
                shutil.rmtree(target, ignore_errors=True)
                os.rename(backup, target)
            elif backup is None:
                shutil.rmtree(target, ignore_errors=True)
        except OSError as exc:
            problems.append(f"restoring {target} failed: {exc}")
        try:
            if self._versions_on_disk(name):
                self._load(name)
            else:
                resp = self._call("POST", f"/v2/repository/models/{name}/unload")
                if resp.status_code not in (200, 404):
                    problems.append(f"unloading {name} answered HTTP {resp.status_code}")
            missing = serving_before - {m.target_version for m in self.served(name)}
            if missing:
                problems.append(f"version(s) {', '.join(sorted(missing))} of {name} no longer serve")
        except TargetError as exc:
            problems.append(str(exc))
        if problems:
            raise CompensationError(f"{failure}; putting MLServer at {self.host_detail} back failed: "
                                    f"{'; '.join(problems)}", cause=failure) from (
                failure if isinstance(failure, Exception) else None)

    def undeploy(self, name: str, version: str) -> None:
        """Remove one MLServer version (the integer version) and reload so the others keep serving."""
        self._writable_model_dir(name, version)
        if version not in self._versions_on_disk(name):
            raise TargetError(f"MLServer at {self.host_detail}: {name} version {version} is not deployed")
        remaining = [v for v in self._versions_on_disk(name) if v != version]
        shutil.rmtree(self._model_dir(name, version), ignore_errors=True)
        if remaining:
            self._load(name)
        else:
            self._call("POST", f"/v2/repository/models/{name}/unload")

    def status(self, name: str, version: str) -> str:
        resp = self._call("GET", f"/v2/models/{name}/versions/{version}/ready")
        if resp.status_code == 200:
            return "deployed"
        return "deploying" if version in self._versions_on_disk(name) else "stopped"

    def verify(self, release: Release) -> list[str]:
        version = str(release.metadata.version_number)
        problems, missing = [], False
        for expected, dest in self._model_files(release):
            path = self._model_dir(release.metadata.name, version) / dest
            if not path.is_file():
                problems.append(f"{path}: missing from the MLServer repository")
                missing = True
                continue
            digest, _ = hash_file(path)
            if digest != expected.sha256:
                problems.append(f"{path}: sha256 {digest}, registry says {expected.sha256}")
        if missing:
            return problems
        if self.status(release.metadata.name, version) != "deployed":
            problems.append(f"MLServer at {self.host_detail}: {release.metadata.name} v{version} is not ready")
        return problems


def dotted_version(number: str) -> str:
    """The dotted form of MLServer's integer version (1002003 -> "1.2.3"), for folders modelgov did not write."""
    try:
        value = int(number)
    except ValueError:
        return number
    return f"{value // 1_000_000}.{value // 1_000 % 1_000}.{value % 1_000}"
