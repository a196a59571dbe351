"""``kserve://NAMESPACE?context=CTX[&runtime=kserve-mlserver&service_account=SA&protocol=v2&ready_timeout=600]``.

Deploy renders one ``InferenceService`` (serving.kserve.io/v1beta1) per model version from a Jinja2 template,
with ``storageUri`` pointing at the registry copy, so the cluster pulls exactly the registered bytes. It is
applied with ``kubectl --context CTX -n NS apply -f -`` (manifest on stdin; credentials stay in the
kubeconfig / env, never in argv), then readiness is polled from the ``Ready`` condition and the V2 protocol
smoke test runs against ``status.url`` when that URL is reachable from here.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import re
import shutil
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import jinja2
import requests

from governance.errors import ConfigError, TargetError
from governance.http import build_session
from governance.targets.base import DeploymentResult, Release, ServingTarget, SmokeResult, target_options
from governance.targets.mleap import executable_file
from governance.targets.smoke import check_expected, shorten

TEMPLATES = Path(__file__).parent / "templates"
QUERY_KEYS = {"context", "runtime", "service_account", "protocol", "ready_timeout", "poll_interval"}
NAMESPACE_PATTERN = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
LABEL_VALUE_PATTERN = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
# kubectl failures worth retrying: the API server was unreachable or overloaded, not a refusal
TRANSIENT = ("Unable to connect to the server", "connection refused", "i/o timeout", "TLS handshake timeout",
             "ServiceUnavailable", "the server is currently unable", "InternalError", "etcdserver: request timed out",
             "net/http: request canceled", "connection reset by peer")
ANNOTATION_PREFIX = "modelgov.io"


def label_value(value: str) -> str:
    """A Kubernetes-safe label value: at most 63 of [A-Za-z0-9-_.], alphanumeric at both ends."""
    cleaned = re.sub(r"[^A-Za-z0-9_.-]", "-", value)
    if len(cleaned) > 63:
        digest = hashlib.sha256(value.encode()).hexdigest()[:8]
        cleaned = f"{cleaned[:54]}-{digest}"
    cleaned = cleaned.strip("-_.")
    return cleaned if LABEL_VALUE_PATTERN.match(cleaned) else ""


def isvc_name(name: str, version: str) -> str:
    """The InferenceService name: a DNS-1035 label per model version, e.g. ``churn-model-v1-2``."""
    base = re.sub(r"[^a-z0-9-]", "-", name.lower())
    suffix = "-v" + re.sub(r"[^0-9]", "-", version)
    full = re.sub(r"-+", "-", f"{base}{suffix}")
    if not full[0].isalpha():
        full = f"m-{full}"
    if len(full) > 63:  # keep the version readable and the name unique with a short hash
        digest = hashlib.sha256(f"{name}/{version}".encode()).hexdigest()[:6]
        full = f"{full[:63 - len(suffix) - 7]}-{digest}{suffix}"
    return full.strip("-")


def storage_uri(location: str, executable: str) -> str:
    """The storageUri KServe's storage initializer reads: the registry folder holding the executable.

    The folder (not the version root) is used because the predictors load the single model file found at the
    top of ``/mnt/models``; the version root would also bring README.md, metadata.txt and MANIFEST.json.
    ``hdfs://`` and ``webhdfs://`` storageUris are PATHS in KServe (the namenode comes from the
    ``HDFS_NAMENODE`` secret), so the registry's host is dropped. A ``file://`` registry is unreadable
    from a cluster and is refused.
    """
    parsed = urlparse(location)
    folder = posixpath.dirname(executable)
    scheme = parsed.scheme
    if scheme in ("file", ""):
        raise ConfigError(f"registry location {location} is a local folder a KServe cluster cannot read; "
                          "publish to an s3:// or hdfs:// registry to deploy to kserve")
    path = parsed.path.rstrip("/")
    if folder:
        path = f"{path}/{folder}"
    if scheme in ("hdfs", "webhdfs"):
        return f"{scheme}://{path.lstrip('/')}"
    if scheme == "s3a":
        scheme = "s3"
    return f"{scheme}://{parsed.netloc}{path}"


def kubectl_path() -> str:
    """``MODELGOV_KUBECTL`` if set, else ``kubectl`` on PATH."""
    configured = os.environ.get("MODELGOV_KUBECTL")
    if configured:
        return configured
    found = shutil.which("kubectl")
    if not found:
        raise ConfigError("kubectl is not on PATH; install it or set MODELGOV_KUBECTL to its path")
    return found


def condition(obj: dict, kind: str = "Ready") -> dict | None:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if isinstance(cond, dict) and cond.get("type") == kind:
            return cond
    return None


class KServeTarget(ServingTarget):
    """A KServe InferenceService per model version, applied with kubectl."""

    kind = "kserve"

    def __init__(self, uri: str, *, kubectl_timeout: float = 60.0, retries: int = 3, backoff: float = 1.0,
                 ready_timeout: float | None = None, poll_interval: float | None = None,
                 http_timeout: float | tuple[float, float] = (5.0, 60.0), fail_on_mismatch: bool = True):
        super().__init__(uri)
        parsed = urlparse(uri)
        if parsed.scheme != "kserve" or not parsed.netloc:
            raise ConfigError(f"kserve target URI must look like kserve://NAMESPACE?context=CTX, got {uri!r}")
        query = target_options(uri, QUERY_KEYS, "kserve")
        if not NAMESPACE_PATTERN.match(parsed.netloc):
            raise ConfigError(f"kserve target URI {uri!r}: {parsed.netloc!r} is not a valid namespace name")
        if not query.get("context"):
            raise ConfigError(f"kserve target URI {uri!r} needs context=KUBE_CONTEXT (never the current context)")
        if query.get("protocol", "v2") not in ("v1", "v2"):
            raise ConfigError(f"kserve target URI {uri!r}: protocol must be v1 or v2")
        self.namespace, self.context = parsed.netloc, query["context"]
        self.where = f"{self.context}/{self.namespace}"
        self.runtime = query.get("runtime") or None
        self.service_account = query.get("service_account") or None
        self.protocol = query.get("protocol", "v2")
        try:
            self.ready_timeout = float(ready_timeout if ready_timeout is not None
                                       else query.get("ready_timeout", 600))
            self.poll_interval = float(poll_interval if poll_interval is not None
                                       else query.get("poll_interval", 5))
        except ValueError as exc:
            raise ConfigError(f"kserve target URI {uri!r}: ready_timeout/poll_interval must be numbers") from exc
        self.kubectl_timeout, self.retries, self.backoff = kubectl_timeout, retries, backoff
        self.fail_on_mismatch = fail_on_mismatch
        self._http = build_session(retries=1, backoff=0.2, timeout=http_timeout)
        self._env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)),
                                       undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                                       autoescape=False)

    @property
    def host_detail(self) -> str:
        return self.where

    # ------------------------------------------------------------------------------------------ manifest
    def render_manifest(self, release: Release) -> str:
        """The InferenceService YAML deploy would apply (backs ``--dry-run``); raises ConfigError if undeployable."""
        meta, registered = release.metadata, release.registered
        sha = executable_file(release).sha256
        labels = {"app.kubernetes.io/name": label_value(meta.name), "app.kubernetes.io/managed-by": "modelgov",
                  f"{ANNOTATION_PREFIX}/model": label_value(meta.name),
                  f"{ANNOTATION_PREFIX}/version": label_value(meta.version)}
        annotations = {f"{ANNOTATION_PREFIX}/model-name": meta.name,
                       f"{ANNOTATION_PREFIX}/model-version": meta.version,
                       f"{ANNOTATION_PREFIX}/model-owner": meta.owner,
                       f"{ANNOTATION_PREFIX}/registry-location": registered.location,
                       f"{ANNOTATION_PREFIX}/serialized-object": registered.executable_uri,
                       f"{ANNOTATION_PREFIX}/executable-sha256": sha}
        return self._env.get_template("inferenceservice.yaml.j2").render(
            name=isvc_name(meta.name, meta.version), namespace=self.namespace, labels=labels,
            annotations=annotations, service_account=self.service_account,
            model_format=(meta.framework or "sklearn").lower(), protocol=self.protocol, runtime=self.runtime,
            storage_uri=storage_uri(registered.data_location, release.executable))

    # ------------------------------------------------------------------------------------------ kubectl
    def _kubectl(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
        """Run kubectl against this context/namespace; retry transient API-server failures with backoff."""
        argv = [kubectl_path(), "--context", self.context, "-n", self.namespace, *args]
        shown = " ".join(args[:3])
        for attempt in range(self.retries + 1):
            try:
                proc = subprocess.run(argv, input=stdin, capture_output=True, text=True,
                                      timeout=self.kubectl_timeout, check=False)
            except FileNotFoundError as exc:
                raise TargetError(f"kserve {self.where}: kubectl not found at {argv[0]}") from exc
            except subprocess.TimeoutExpired:
                error = f"timed out after {self.kubectl_timeout:g}s"
            else:
                if proc.returncode == 0 or not any(t in proc.stderr for t in TRANSIENT):
                    return proc
                error = proc.stderr.strip()
            if attempt < self.retries:
                time.sleep(self.backoff * (2 ** attempt))
        raise TargetError(f"kserve {self.where}: kubectl {shown} failed after {self.retries + 1} attempts: "
                          f"{shorten(error)}")

    def _get(self, name: str) -> dict | None:
        """The InferenceService object, or None when it does not exist."""
        proc = self._kubectl("get", "inferenceservice", name, "-o", "json")
        if proc.returncode != 0:
            if "NotFound" in proc.stderr:
                return None
            raise TargetError(f"kserve {self.where}: kubectl get inferenceservice {name} failed: "
                              f"{shorten(proc.stderr)}")
        try:
            return json.loads(proc.stdout)
        except ValueError as exc:
            raise TargetError(f"kserve {self.where}: kubectl get inferenceservice {name} did not print JSON: "
                              f"{shorten(proc.stdout)}") from exc

    # ------------------------------------------------------------------------------------------ deploy
    def deploy(self, release: Release) -> DeploymentResult:
        meta = release.metadata
        manifest = self.render_manifest(release)
        name = isvc_name(meta.name, meta.version)
        proc = self._kubectl("apply", "-f", "-", stdin=manifest)
        if proc.returncode != 0:
            raise TargetError(f"kserve {self.where}: kubectl apply of inferenceservice {name} failed: "
                              f"{shorten(proc.stderr)}")
        obj = self._wait_ready(name)
        url = str((obj.get("status") or {}).get("url") or "")
        if not url:
            raise TargetError(f"kserve {self.where}: inferenceservice {name} is Ready but has no status.url")
        details = {"inferenceservice": name, "apply": proc.stdout.strip(), "context": self.context,
                   "namespace": self.namespace,
                   "storage_uri": str(obj.get("spec", {}).get("predictor", {}).get("model", {}).get("storageUri", ""))}
        smoke, reported = self._smoke(release, name, url, details)
        annotations = (obj.get("metadata") or {}).get("annotations") or {}
        endpoint = f"{url.rstrip('/')}/v2/models/{name}/infer" if self.protocol == "v2" \
            else f"{url.rstrip('/')}/v1/models/{name}:predict"
        return DeploymentResult(
            target_kind=self.kind, target_uri=self.uri, host_detail=self.where, endpoint_url=endpoint,
            model_name=meta.name, model_version=meta.version, deployed_at=datetime.now(UTC),
            serialized_object=release.registered.executable_uri,
            loaded_name=reported.get("name") or annotations.get(f"{ANNOTATION_PREFIX}/model-name", name),
            loaded_version=reported.get("version") or annotations.get(f"{ANNOTATION_PREFIX}/model-version", ""),
            smoke=smoke, details=details)

    def _wait_ready(self, name: str) -> dict:
        """Poll until Ready=True for the current generation; fail fast on a failed model load, else time out."""
        deadline = time.monotonic() + self.ready_timeout
        last = "no status yet"
        while True:
            obj = self._get(name)
            if obj is None:
                raise TargetError(f"kserve {self.where}: inferenceservice {name} disappeared after apply")
            status = obj.get("status") or {}
            ready = condition(obj)
            current = status.get("observedGeneration") is None or (obj.get("metadata") or {}).get(
                "generation") is None or status["observedGeneration"] >= obj["metadata"]["generation"]
            if ready and current and ready.get("status") == "True":
                return obj
            failure = _load_failure(status)
            if failure:
                raise TargetError(f"kserve {self.where}: inferenceservice {name} failed to load the model: {failure}")
            if ready:
                last = f"Ready={ready.get('status')} reason={ready.get('reason', '')} " \
                       f"message={ready.get('message', '')}".strip()
            if time.monotonic() >= deadline:
                raise TargetError(f"kserve {self.where}: inferenceservice {name} not Ready after "
                                  f"{self.ready_timeout:g}s ({last})")
            time.sleep(self.poll_interval)

    def _smoke(self, release: Release, name: str, url: str,
               details: dict[str, str]) -> tuple[SmokeResult | None, dict[str, str]]:
        """V2 inference with the example request; skipped (and said so) when the URL is not reachable from here."""
        request = release.example_request
        if request is None:
            details["smoke"] = "skipped: the staged repo has no examples/request.json"
            return None, {}
        if self.protocol != "v2" or not isinstance(request, dict) or "inputs" not in request:
            details["smoke"] = "skipped: examples/request.json is not a V2 inference request"
            return None, {}
        endpoint = f"{url.rstrip('/')}/v2/models/{name}/infer"
        try:
            resp = self._http.post(endpoint, json=request)
        except requests.ConnectionError as exc:
            details["smoke"] = f"skipped: {url} is not reachable from here ({type(exc).__name__})"
            return None, {}
        except requests.RequestException as exc:
            raise TargetError(f"kserve {self.where}: smoke test POST {endpoint} failed: {exc}") from exc
        if not resp.ok:
            raise TargetError(f"kserve {self.where}: smoke test POST {endpoint} answered {resp.status_code}: "
                              f"{shorten(resp.text)}")
        try:
            answer = resp.json()
        except ValueError as exc:
            raise TargetError(f"kserve {self.where}: smoke test answer is not JSON: {shorten(resp.text)}") from exc
        matched = check_expected(answer, release.example_response, where=f"kserve {self.where}",
                                 strict=self.fail_on_mismatch)
        reported = {"name": str(answer.get("model_name") or ""), "version": str(answer.get("model_version") or "")}
        return SmokeResult(request=request, response=answer, matched_expected=matched), reported

    # ------------------------------------------------------------------------------------------ status & co
    def status(self, name: str, version: str) -> str:
        obj = self._get(isvc_name(name, version))
        if obj is None:
            return "stopped"
        ready = condition(obj)
        if ready is None:
            return "deploying"
        if ready.get("status") == "True":
            return "deployed"
        return "deploying" if ready.get("status") in ("False", "Unknown") else "unknown"

    def undeploy(self, name: str, version: str) -> None:
        isvc = isvc_name(name, version)
        proc = self._kubectl("delete", "inferenceservice", isvc)
        if proc.returncode != 0 and "NotFound" not in proc.stderr:
            raise TargetError(f"kserve {self.where}: kubectl delete inferenceservice {isvc} failed: "
                              f"{shorten(proc.stderr)}")

    def verify(self, release: Release) -> list[str]:
        meta = release.metadata
        name = isvc_name(meta.name, meta.version)
        obj = self._get(name)
        if obj is None:
            return [f"kserve {self.where}: inferenceservice {name} does not exist"]
        problems = []
        wanted = storage_uri(release.registered.data_location, release.executable)
        got = obj.get("spec", {}).get("predictor", {}).get("model", {}).get("storageUri")
        if got != wanted:
            problems.append(f"kserve {self.where}: {name} storageUri is {got}, expected {wanted}")
        sha = ((obj.get("metadata") or {}).get("annotations") or {}).get(f"{ANNOTATION_PREFIX}/executable-sha256")
        if sha != executable_file(release).sha256:
            problems.append(f"kserve {self.where}: {name} records executable sha256 {sha}, manifest says "
                            f"{executable_file(release).sha256}")
        ready = condition(obj)
        if not ready or ready.get("status") != "True":
            problems.append(f"kserve {self.where}: {name} is not Ready")
        return problems


def _load_failure(status: dict[str, Any]) -> str | None:
    """KServe's modelStatus says when the model failed to load; waiting longer will not help then."""
    model_status = status.get("modelStatus") or {}
    states = model_status.get("states") or {}
    if model_status.get("transitionStatus") == "BlockedByFailedLoad" or states.get("targetModelState") == "FailedToLoad":
        info = model_status.get("lastFailureInfo") or {}
        return f"{info.get('reason', 'FailedToLoad')}: {info.get('message', '')}".strip()
    return None
