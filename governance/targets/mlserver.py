"""``mlserver://HOST:PORT?repository=DIR``: deploy to a running MLServer through its model repository API.

Recipe (measured against MLServer 1.7): copy the registered artifact into ``<repository>/<name>/<version>/``
with an explicit ``model-settings.json`` (name + integer version: MLServer orders versions as ints), call
``POST /v2/repository/models/{name}/load``, poll ``/v2/models/{name}/versions/{v}/ready``, then run the
smoke inference. MLServer answers a failed load with 500 text/plain; the reason is only in its log.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from urllib.parse import urlparse

import requests

from governance.errors import ConfigError, IntegrityError, TargetError
from governance.http import build_session
from governance.targets.base import (
    DeploymentResult,
    Release,
    ServedModel,
    ServingTarget,
    SmokeResult,
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
QUERY_KEYS = {"repository", "public_url", "keep_previous"}


class MLServerTarget(ServingTarget):
    kind = "mlserver"

    def __init__(self, uri: str, *, ready_timeout_s: float = 60.0):
        super().__init__(uri)
        parsed = urlparse(uri)
        if parsed.scheme != "mlserver" or not parsed.hostname or not parsed.port:
            raise ConfigError(f"MLServer target must look like mlserver://HOST:PORT?repository=DIR, got {uri!r}")
        query = target_options(uri, QUERY_KEYS, "mlserver")
        if "repository" not in query:
            raise ConfigError(f"{uri}: missing ?repository=DIR (MLServer's model repository folder)")
        self.repository = Path(query["repository"])
        self._host_detail = f"{parsed.hostname}:{parsed.port}"
        self.base_url = f"http://{self._host_detail}"
        self.public_url = query.get("public_url", self.base_url).rstrip("/")
        self.keep_previous = query.get("keep_previous", "false").lower() == "true"
        self.ready_timeout_s = ready_timeout_s
        self._session = build_session(retries=2, backoff=0.3, timeout=(3.0, 60.0))

    @property
    def host_detail(self) -> str:
        return self._host_detail

    # -- helpers -------------------------------------------------------------------------------------------
    def _call(self, method: str, path: str, **kwargs) -> requests.Response:
        try:
            return self._session.request(method, f"{self.base_url}{path}", **kwargs)
        except requests.RequestException as exc:
            raise TargetError(f"MLServer at {self.host_detail} is not reachable: {exc.__class__.__name__}") from exc

    def _model_dir(self, name: str, version: str) -> Path:
        return self.repository / name / version

    @staticmethod
    def _implementation(release: Release) -> str:
        framework = (release.metadata.framework or "").lower()
        if not framework:
            framework = SUFFIX_FRAMEWORK.get(PurePosixPath(release.executable).suffix, "")
        if framework not in IMPLEMENTATIONS:
            raise TargetError(f"MLServer has no runtime for framework {framework or '(unknown)'!r} "
                              f"(set model.framework to one of {', '.join(sorted(IMPLEMENTATIONS))})")
        return IMPLEMENTATIONS[framework]

    def _install(self, release: Release, version: str) -> Path:
        """Copy the registered executable into the repository, checking sha256; write settings last."""
        name = release.metadata.name
        target = self._model_dir(name, version)
        expected = next(f for f in release.registered.manifest.files if f.path == release.executable)
        filename = PurePosixPath(release.executable).name
        target.parent.mkdir(parents=True, exist_ok=True)
        # hidden temp folder: MLServer's glob for model-settings.json skips dot-folders
        tmp = Path(tempfile.mkdtemp(prefix=f".{version}.tmp-", dir=target.parent))
        try:
            digest = hashlib.sha256()
            size = 0
            with (tmp / filename).open("wb") as out:
                for chunk in release.registry.open_artifact(release.registered, release.executable):
                    digest.update(chunk)
                    size += len(chunk)
                    out.write(chunk)
            if digest.hexdigest() != expected.sha256 or size != expected.size:
                raise IntegrityError(f"{release.registered.executable_uri}: registry copy has sha256 "
                                     f"{digest.hexdigest()}, manifest says {expected.sha256}; refusing to deploy")
            settings = {"name": name, "implementation": self._implementation(release),
                        "parameters": {"uri": f"./{filename}", "version": version}}
            (tmp / SETTINGS_FILE).write_text(json.dumps(settings, indent=2) + "\n")
            if target.exists():
                shutil.rmtree(target)
            os.rename(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return target

    def _load(self, name: str) -> None:
        resp = self._call("POST", f"/v2/repository/models/{name}/load")
        if resp.status_code == 200:
            return
        if resp.status_code == 404:
            raise TargetError(f"MLServer at {self.host_detail} does not see model {name!r} in its repository "
                              f"(is ?repository= the folder the server was started on?)")
        raise TargetError(f"MLServer at {self.host_detail} failed to load {name!r}: HTTP {resp.status_code} "
                          f"{resp.text.strip()[:200]} (the reason is in the MLServer log)")

    def _wait_ready(self, name: str, version: str) -> None:
        deadline = time.monotonic() + self.ready_timeout_s
        while True:
            resp = self._call("GET", f"/v2/models/{name}/versions/{version}/ready")
            if resp.status_code == 200:
                return
            if time.monotonic() > deadline:
                raise TargetError(f"MLServer at {self.host_detail}: {name} version {version} not ready after "
                                  f"{self.ready_timeout_s:.0f}s (last HTTP {resp.status_code})")
            time.sleep(0.2)

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
        return sorted(p.name for p in folder.iterdir() if (p / SETTINGS_FILE).is_file())

    # -- interface -----------------------------------------------------------------------------------------
    def deploy(self, release: Release) -> DeploymentResult:
        name = release.metadata.name
        version = str(release.metadata.version_number)
        previous = [v for v in self._versions_on_disk(name) if v != version]
        self._install(release, version)
        try:
            self._load(name)
            self._wait_ready(name, version)
            smoke = None
            loaded_name, loaded_version = name, version
            if release.example_request is not None:
                answer = self._infer(name, version, release.example_request)
                loaded_name = str(answer.get("model_name", ""))
                loaded_version = str(answer.get("model_version", ""))
                if (loaded_name, loaded_version) != (name, version):
                    raise TargetError(f"MLServer at {self.host_detail} answered as {loaded_name} "
                                      f"v{loaded_version}, expected {name} v{version}")
                matched = check_expected(answer, release.example_response, where=f"MLServer at {self.host_detail}")
                smoke = SmokeResult(release.example_request, answer, matched)
        except BaseException:
            # never leave a half-deployed version behind; the server may be gone, so cleanup is best effort
            with contextlib.suppress(TargetError):
                self._remove_version(name, version, reload=True)
            shutil.rmtree(self._model_dir(name, version), ignore_errors=True)
            raise
        replaced = []
        if not self.keep_previous:
            for old in previous:
                self._remove_version(name, old, reload=False)
                replaced.append(old)
            if replaced:
                self._load(name)  # drops versions no longer on disk; the new one stays loaded
        return DeploymentResult(
            target_kind=self.kind, target_uri=self.uri, host_detail=self.host_detail,
            endpoint_url=f"{self.public_url}/v2/models/{name}/versions/{version}/infer",
            model_name=name, model_version=release.metadata.version, deployed_at=datetime.now(UTC),
            serialized_object=release.registered.executable_uri, loaded_name=loaded_name,
            loaded_version=loaded_version, smoke=smoke,
            details={"repository": str(self.repository), "mlserver_version": version,
                     "implementation": self._implementation(release),
                     "replaced_versions": ",".join(replaced)},
        )

    def _remove_version(self, name: str, version: str, *, reload: bool) -> None:
        remaining = [v for v in self._versions_on_disk(name) if v != version]
        if not remaining and reload:
            self._call("POST", f"/v2/repository/models/{name}/unload")
        shutil.rmtree(self._model_dir(name, version), ignore_errors=True)
        if remaining and reload:
            self._load(name)

    def undeploy(self, name: str, version: str) -> None:
        """Remove one MLServer version (the integer version) and reload so the others keep serving."""
        if version not in self._versions_on_disk(name):
            raise TargetError(f"MLServer at {self.host_detail}: {name} version {version} is not deployed")
        self._remove_version(name, version, reload=True)

    def status(self, name: str, version: str) -> str:
        resp = self._call("GET", f"/v2/models/{name}/versions/{version}/ready")
        if resp.status_code == 200:
            return "deployed"
        return "deploying" if version in self._versions_on_disk(name) else "stopped"

    def verify(self, release: Release) -> list[str]:
        version = str(release.metadata.version_number)
        path = self._model_dir(release.metadata.name, version) / PurePosixPath(release.executable).name
        expected = next(f for f in release.registered.manifest.files if f.path == release.executable)
        if not path.is_file():
            return [f"{path}: missing from the MLServer repository"]
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        problems = [] if digest == expected.sha256 else [f"{path}: sha256 {digest}, registry says {expected.sha256}"]
        if self.status(release.metadata.name, version) != "deployed":
            problems.append(f"MLServer at {self.host_detail}: {release.metadata.name} v{version} is not ready")
        return problems

    def served(self, name: str | None = None) -> list[ServedModel]:
        """What MLServer reports READY (``POST /v2/repository/index``), with the sha256 of the executable it
        loaded from the repository folder (named by ``parameters.uri`` in its model-settings.json)."""
        resp = self._call("POST", "/v2/repository/index", json={})
        if resp.status_code != 200:
            raise TargetError(f"MLServer at {self.host_detail}: repository index failed with HTTP "
                              f"{resp.status_code}: {resp.text.strip()[:200]}")
        out = []
        for model in resp.json():
            if model.get("state") != "READY" or (name is not None and model.get("name") != name):
                continue
            version = str(model.get("version") or "")
            out.append(ServedModel(name=model["name"], version=dotted_version(version), target_version=version,
                                   sha256=self._installed_sha256(model["name"], version),
                                   endpoint_url=f"{self.public_url}/v2/models/{model['name']}/versions/{version}/infer"))
        return sorted(out, key=lambda s: (s.name, s.target_version))

    def _installed_sha256(self, name: str, version: str) -> str | None:
        folder = self._model_dir(name, version)
        try:
            uri = json.loads((folder / SETTINGS_FILE).read_text())["parameters"]["uri"]
            return hashlib.sha256((folder / uri).read_bytes()).hexdigest()
        except (OSError, ValueError, KeyError, TypeError):
            return None


def dotted_version(version_number: str) -> str:
    """MLServer's integer version back to the owner's dotted form (major*10^6 + minor*10^3 + patch)."""
    if not version_number.isdigit():
        return version_number
    number = int(version_number)
    major, minor, patch = number // 1_000_000, number // 1_000 % 1_000, number % 1_000
    return f"{major}.{minor}.{patch}" if patch else f"{major}.{minor}"
