"""``kserve://NAMESPACE?context=CTX[&runtime=kserve-mlserver&service_account=SA&protocol=v2&ready_timeout=1800&canary_percent=N]``.

One ``InferenceService`` (serving.kserve.io/v1beta1) per model and namespace, as KServe's users run it: a new
version updates it in place (``storageUri`` at the registry copy, so the cluster pulls exactly the registered
bytes) and KServe keeps the previous revision serving until the new one is Ready, then moves the traffic.
With ``canary_percent=N`` the new revision gets ``canaryTrafficPercent: N`` and both versions serve (both are
recorded deployed) until a later full deploy promotes it, or a rollback. The manifest is applied with
``kubectl --context CTX -n NS apply -f -`` (on stdin; credentials stay in the kubeconfig / env, never in
argv); readiness is polled from the ``Ready`` condition; the V2 smoke test runs against ``status.url`` when it
is reachable from here. A failed or interrupted attempt re-applies the object as it was.

What serves is read from the cluster: the InferenceServices carrying our labels, their traffic split
(``status.components.predictor.traffic``) and our annotations, which name the version of the latest revision
and of the rolled-out (stable) one.
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

from governance.deadlines import TARGET_DEADLINE_ENV, Clock, running
from governance.errors import CompensationError, ConfigError, TargetDeadlineExceeded, TargetError
from governance.http import build_session
from governance.paths import path_problem
from governance.staging.repo import MLFLOW_MODEL_FILE
from governance.stops import interruption_point
from governance.targets.base import (
    READY_SETTING,
    DeploymentResult,
    Release,
    ServedModel,
    ServingTarget,
    SmokeResult,
    late,
    target_deadline,
    target_options,
)
from governance.targets.smoke import check_expected, shorten

TEMPLATES = Path(__file__).parent / "templates"
QUERY_KEYS = {"context", "runtime", "service_account", "protocol", "ready_timeout", "poll_interval",
              "canary_percent"}
DEFAULT_READY_TIMEOUT_S = 1800.0  # pulling and loading a large model takes minutes
MANAGED_BY = "app.kubernetes.io/managed-by=modelgov"
NAMESPACE_PATTERN = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
LABEL_VALUE_PATTERN = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
# kubectl failures worth retrying: the API server was unreachable or overloaded, not a refusal
TRANSIENT = ("Unable to connect to the server", "connection refused", "i/o timeout", "TLS handshake timeout",
             "ServiceUnavailable", "the server is currently unable", "InternalError", "etcdserver: request timed out",
             "net/http: request canceled", "connection reset by peer")
ANNOTATION_PREFIX = "modelgov.io"
STABLE = f"{ANNOTATION_PREFIX}/stable-"  # annotations naming what the rolled-out revision serves
CURRENT_KEYS = ("model-version", "executable-sha256", "serialized-object", "storage-uri")


def label_value(value: str) -> str:
    """A Kubernetes-safe label value: at most 63 of [A-Za-z0-9-_.], alphanumeric at both ends."""
    cleaned = re.sub(r"[^A-Za-z0-9_.-]", "-", value)
    if len(cleaned) > 63:
        digest = hashlib.sha256(value.encode()).hexdigest()[:8]
        cleaned = f"{cleaned[:54]}-{digest}"
    cleaned = cleaned.strip("-_.")
    return cleaned if LABEL_VALUE_PATTERN.match(cleaned) else ""


def isvc_name(name: str) -> str:
    """The InferenceService name: one DNS-1035 label per model, e.g. ``churn-model``."""
    full = re.sub(r"-+", "-", re.sub(r"[^a-z0-9-]", "-", name.lower())).strip("-")
    if not full or not full[0].isalpha():
        full = f"m-{full}"
    if len(full) > 63:  # keep it unique with a short hash
        digest = hashlib.sha256(name.encode()).hexdigest()[:6]
        full = f"{full[:56].rstrip('-')}-{digest}"
    return full.strip("-")


def model_format(release: Release) -> str:
    """KServe's modelFormat: ``mlflow`` for a model in MLflow's format (served by MLServer's MLflow runtime
    from the folder holding MLmodel), else the framework the owner declared."""
    if posixpath.basename(release.executable) == MLFLOW_MODEL_FILE:
        return "mlflow"
    return (release.metadata.framework or "sklearn").lower()


def storage_uri(location: str, executable: str) -> str:
    """The storageUri KServe's storage initializer reads: the registry folder holding the executable.

    The folder (not the version root) is used because the predictors load the single model file found at the
    top of ``/mnt/models``; the version root would also bring README.md, metadata.txt and MANIFEST.json.
    ``hdfs://`` and ``webhdfs://`` storageUris are PATHS in KServe (the namenode comes from the
    ``HDFS_NAMENODE`` secret), so the registry's host is dropped. A ``file://`` registry is unreadable
    from a cluster and is refused.
    """
    parsed = urlparse(location)
    problem = path_problem(executable)
    if problem:
        raise TargetError(f"refusing to point KServe's storage at {location}/{executable!r}: the executable "
                          f"path {problem}, so the storage initializer would read outside the version")
    folder = posixpath.dirname(executable)
    scheme = parsed.scheme
    if scheme in ("file", ""):
        raise ConfigError(f"registry location {location} is a local folder a KServe cluster cannot read; "
                          "publish to an s3:// or hdfs:// registry to deploy to kserve")
    path = parsed.path.rstrip("/")
    if folder:
        path = f"{path}/{folder}"
    if scheme in ("hdfs", "webhdfs", "swebhdfs"):
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
                                       else query.get("ready_timeout", DEFAULT_READY_TIMEOUT_S))
            self.poll_interval = float(poll_interval if poll_interval is not None
                                       else query.get("poll_interval", 5))
        except ValueError as exc:
            raise ConfigError(f"kserve target URI {uri!r}: ready_timeout/poll_interval must be numbers") from exc
        self.canary_percent: int | None = None
        if query.get("canary_percent"):
            try:
                self.canary_percent = int(query["canary_percent"])
            except ValueError:
                self.canary_percent = -1
            if not 0 < self.canary_percent < 100:
                raise ConfigError(f"kserve target URI {uri!r}: canary_percent must be a whole number from 1 to 99")
        self.kubectl_timeout, self.retries, self.backoff = kubectl_timeout, retries, backoff
        self.fail_on_mismatch = fail_on_mismatch
        self.deadline = target_deadline()
        self._http = build_session(retries=1, backoff=0.2, timeout=http_timeout)
        self._env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)),
                                       undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                                       autoescape=False)

    @property
    def host_detail(self) -> str:
        return self.where

    # ------------------------------------------------------------------------------------------ manifest
    def render_manifest(self, release: Release, stable: dict[str, str] | None = None) -> str:
        """The InferenceService YAML deploy would apply (backs ``--dry-run``); raises ConfigError if undeployable.

        ``stable`` names what the rolled-out revision serves (version, sha256, ...) so that what serves can
        be read back from the cluster while a canary or a failed rollout leaves it serving."""
        meta, registered = release.metadata, release.registered
        sha = release.executable_entry.sha256
        uri = storage_uri(registered.data_location, release.executable)
        labels = {"app.kubernetes.io/name": label_value(meta.name), "app.kubernetes.io/managed-by": "modelgov",
                  f"{ANNOTATION_PREFIX}/model": label_value(meta.name),
                  f"{ANNOTATION_PREFIX}/version": label_value(meta.version)}  # of the latest revision
        annotations = {f"{ANNOTATION_PREFIX}/model-name": meta.name,
                       f"{ANNOTATION_PREFIX}/model-version": meta.version,
                       f"{ANNOTATION_PREFIX}/model-owner": meta.owner,
                       f"{ANNOTATION_PREFIX}/registry-location": registered.location,
                       f"{ANNOTATION_PREFIX}/serialized-object": registered.executable_uri,
                       f"{ANNOTATION_PREFIX}/executable-sha256": sha,
                       f"{ANNOTATION_PREFIX}/storage-uri": uri}
        for key, value in (stable or {}).items():
            annotations[f"{STABLE}{key}"] = value
        return self._env.get_template("inferenceservice.yaml.j2").render(
            name=isvc_name(meta.name), namespace=self.namespace, labels=labels,
            annotations=annotations, service_account=self.service_account,
            model_format=model_format(release), protocol=self.protocol, runtime=self.runtime,
            storage_uri=uri, canary_percent=self.canary_percent)

    # ------------------------------------------------------------------------------------------ kubectl
    def _kubectl(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
        """Run kubectl against this context/namespace; retry transient API-server failures with backoff.

        One call, retries included, is one operation under the target deadline: no attempt outlives it and no
        backoff sleeps past it. (The readiness wait is bounded by ``ready_timeout`` between its calls.)"""
        argv = [kubectl_path(), "--context", self.context, "-n", self.namespace, *args]
        shown = " ".join(args[:3])
        clock = Clock(self.deadline)
        for attempt in range(self.retries + 1):
            interruption_point()  # a batch's deploy that was asked to stop stops here (governance.stops)
            if clock.expired():
                raise TargetDeadlineExceeded(f"kubectl {shown}", self.where, clock.deadline, clock.waited(),
                                             TARGET_DEADLINE_ENV)
            limit = min(self.kubectl_timeout, clock.left())
            try:
                proc = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=limit, check=False)
            except FileNotFoundError as exc:
                raise TargetError(f"kserve {self.where}: kubectl not found at {argv[0]}") from exc
            except subprocess.TimeoutExpired:
                error = f"timed out after {limit:g}s"
            else:
                if proc.returncode == 0 or not any(t in proc.stderr for t in TRANSIENT):
                    return proc
                error = proc.stderr.strip()
            if attempt < self.retries:
                time.sleep(max(0.0, min(self.backoff * (2 ** attempt), clock.left())))
        if clock.expired():
            raise TargetDeadlineExceeded(f"kubectl {shown} ({shorten(error)})", self.where, clock.deadline,
                                         clock.waited(), TARGET_DEADLINE_ENV)
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
    def _apply(self, manifest: str, name: str) -> subprocess.CompletedProcess:
        proc = self._kubectl("apply", "-f", "-", stdin=manifest)
        if proc.returncode != 0:
            raise TargetError(f"kserve {self.where}: kubectl apply of inferenceservice {name} failed: "
                              f"{shorten(proc.stderr)}")
        return proc

    def deploy(self, release: Release) -> DeploymentResult:
        meta = release.metadata
        name = isvc_name(meta.name)
        before = self._get(name)
        stable = _stable_of(before)
        if stable and stable.get("model-version") == meta.version \
                and stable.get("executable-sha256") == release.executable_entry.sha256:
            stable = None  # the same version again: nothing else serves beside it
        manifest = self.render_manifest(release, stable=stable)
        try:
            proc = self._apply(manifest, name)
            obj = self._wait_ready(name)
            url = str((obj.get("status") or {}).get("url") or "")
            if not url:
                raise TargetError(f"kserve {self.where}: inferenceservice {name} is Ready but has no status.url")
            details = {"inferenceservice": name, "apply": proc.stdout.strip(), "context": self.context,
                       "namespace": self.namespace,
                       "storage_uri": str(obj.get("spec", {}).get("predictor", {}).get("model", {})
                                          .get("storageUri", ""))}
            if self.canary_percent is not None:
                details["canary_percent"] = str(self.canary_percent)
            smoke, reported = self._smoke(release, name, url, details)
        except BaseException as exc:  # a failure or SIGTERM: put the InferenceService back as it was
            self._restore(name, before, exc)
            raise
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

    def _restore(self, name: str, before: dict | None, failure: BaseException) -> None:
        """Re-apply the InferenceService as it was (or delete it if it did not exist) and wait until it is
        Ready again. Idempotent; if it cannot, raise CompensationError saying so."""
        try:
            if before is None:
                proc = self._kubectl("delete", "inferenceservice", name)
                if proc.returncode != 0 and "NotFound" not in proc.stderr:
                    raise TargetError(f"kubectl delete inferenceservice {name} failed: {shorten(proc.stderr)}")
                return
            meta = before.get("metadata") or {}
            annotations = dict(meta.get("annotations") or {})
            # name what the rolled-out revision serves, in case the re-applied revision fails too
            annotations.update({f"{STABLE}{k}": v for k, v in (_stable_of(before) or {}).items()})
            previous = {"apiVersion": before.get("apiVersion", "serving.kserve.io/v1beta1"),
                        "kind": "InferenceService",
                        "metadata": {"name": name, "namespace": self.namespace, "labels": meta.get("labels") or {},
                                     "annotations": annotations},
                        "spec": before.get("spec") or {}}
            self._apply(json.dumps(previous, indent=2), name)  # JSON is YAML
            self._wait_ready(name)
        except TargetError as exc:
            raise CompensationError(f"{failure}; putting inferenceservice {name} in kserve {self.where} back "
                                    f"failed: {exc}", cause=failure) from exc

    def _wait_ready(self, name: str) -> dict:
        """Poll until Ready=True for the current generation; fail fast on a failed model load, else time out."""
        clock = Clock(self.ready_timeout)
        last = "no status yet"
        pause = min(0.25, self.poll_interval)
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
            if clock.left() <= pause:  # no time for another look: say what the last one saw
                raise TargetDeadlineExceeded(
                    f"inferenceservice {name} Ready", self.where, clock.deadline, clock.waited(), READY_SETTING,
                    message=f"kserve {self.where}: inferenceservice {name} not Ready after {self.ready_timeout:g}s "
                            f"({last}); {READY_SETTING}")
            time.sleep(pause)
            pause = min(pause * 2, self.poll_interval)  # a quick rollout is seen at once, a slow one polled gently

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
        with running(Clock(self.deadline)) as clock:
            try:
                resp = self._http.post(endpoint, json=request)
            except requests.RequestException as exc:
                timed_out = late(exc, clock, f"kserve smoke test POST {endpoint}", self.where)
                if timed_out:
                    raise timed_out from exc
                # (an untrusted certificate is an SSLError, a ConnectionError too: a failure, never a skip)
                if isinstance(exc, requests.ConnectionError) and not isinstance(exc, requests.exceptions.SSLError):
                    details["smoke"] = f"skipped: {url} is not reachable from here ({type(exc).__name__})"
                    return None, {}
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

    # ------------------------------------------------------------------------------------------ what it serves
    def served(self, name: str | None = None) -> list[ServedModel]:
        """Versions receiving traffic, from the InferenceServices labelled managed-by=modelgov: the latest
        revision serves the version our annotations name; the rolled-out revision beside it (a canary, or a
        rollout that has not finished or failed) serves the ``stable-`` version."""
        selector = MANAGED_BY + (f",{ANNOTATION_PREFIX}/model={label_value(name)}" if name else "")
        proc = self._kubectl("get", "inferenceservices", "-l", selector, "-o", "json")
        if proc.returncode != 0:
            raise TargetError(f"kserve {self.where}: kubectl get inferenceservices -l {selector} failed: "
                              f"{shorten(proc.stderr)}")
        try:
            items = json.loads(proc.stdout).get("items") or []
        except (ValueError, AttributeError) as exc:
            raise TargetError(f"kserve {self.where}: kubectl get inferenceservices did not print a JSON list: "
                              f"{shorten(proc.stdout)}") from exc
        out: list[ServedModel] = []
        for obj in items:
            out.extend(self._served_by(obj, name))
        return sorted(out, key=lambda m: (m.name, m.version))

    def _served_by(self, obj: dict, name: str | None) -> list[ServedModel]:
        meta = obj.get("metadata") or {}
        annotations = meta.get("annotations") or {}
        model = annotations.get(f"{ANNOTATION_PREFIX}/model-name")
        if not model or (name is not None and model != name):
            return []
        isvc = str(meta.get("name"))
        status = obj.get("status") or {}
        url = str(status.get("url") or "")
        endpoint = (f"{url.rstrip('/')}/v2/models/{isvc}/infer" if self.protocol == "v2"
                    else f"{url.rstrip('/')}/v1/models/{isvc}:predict") if url else None
        predictor = (status.get("components") or {}).get("predictor") or {}
        traffic = predictor.get("traffic")
        if not isinstance(traffic, list):  # no traffic report (raw deployment): Ready means the spec serves
            ready = condition(obj)
            traffic = [{"revisionName": predictor.get("latestReadyRevision", ""), "percent": 100,
                        "latestRevision": True}] if ready and ready.get("status") == "True" else []
        found = []
        for entry in traffic:
            percent = int(entry.get("percent") or 0)
            if percent <= 0:
                continue
            latest = bool(entry.get("latestRevision")) or entry.get("revisionName") == predictor.get(
                "latestCreatedRevision")
            prefix = f"{ANNOTATION_PREFIX}/" if latest else STABLE
            version = annotations.get(f"{prefix}model-version") or "(unknown)"
            found.append(ServedModel(name=model, version=version,
                                     target_version=f"{isvc}/{entry.get('revisionName', '')}",
                                     sha256=annotations.get(f"{prefix}executable-sha256"), endpoint_url=endpoint,
                                     traffic_percent=percent))
        return found

    # ------------------------------------------------------------------------------------------ status & co
    def status(self, name: str, version: str) -> str:
        if any(m.version == version for m in self.served(name)):
            return "deployed"
        obj = self._get(isvc_name(name))
        if obj and ((obj.get("metadata") or {}).get("annotations") or {}).get(
                f"{ANNOTATION_PREFIX}/model-version") == version:
            ready = condition(obj)
            return "deploying" if ready is None or ready.get("status") in ("False", "Unknown") else "unknown"
        return "stopped"

    def recover(self, name: str) -> list[str]:
        """A run killed mid-rollout leaves the InferenceService's spec at a version that never got traffic:
        roll it back to the version the rolled-out revision serves (or delete it if nothing ever served)."""
        isvc = isvc_name(name)
        obj = self._get(isvc)
        if obj is None:
            return []
        predictor = ((obj.get("status") or {}).get("components") or {}).get("predictor") or {}
        traffic = predictor.get("traffic")
        if not isinstance(traffic, list):
            return []
        latest_serves = any(int(t.get("percent") or 0) > 0 and t.get("latestRevision") for t in traffic)
        if latest_serves:
            return []
        annotations = (obj.get("metadata") or {}).get("annotations") or {}
        version = annotations.get(f"{ANNOTATION_PREFIX}/model-version", "?")
        if not any(int(t.get("percent") or 0) > 0 for t in traffic):
            proc = self._kubectl("delete", "inferenceservice", isvc)
            if proc.returncode != 0 and "NotFound" not in proc.stderr:
                raise TargetError(f"kserve {self.where}: kubectl delete inferenceservice {isvc} failed: "
                                  f"{shorten(proc.stderr)}")
            return [f"{isvc} (version {version} never served)"]
        self._reapply(obj, isvc, rollback=True)
        return [f"{isvc} rolled back from version {version}, which never got traffic, to "
                f"{annotations.get(f'{STABLE}model-version', '?')}"]

    def _reapply(self, obj: dict, isvc: str, *, rollback: bool) -> None:
        """Apply ``obj`` again without a canary: the latest revision takes all traffic (promote), or with
        ``rollback`` the stable version's storageUri and annotations become current again."""
        meta = obj.get("metadata") or {}
        annotations = dict(meta.get("annotations") or {})
        spec = json.loads(json.dumps(obj.get("spec") or {}))
        predictor = spec.setdefault("predictor", {})
        predictor.pop("canaryTrafficPercent", None)
        if rollback:
            for key in CURRENT_KEYS:
                if f"{STABLE}{key}" in annotations:
                    annotations[f"{ANNOTATION_PREFIX}/{key}"] = annotations[f"{STABLE}{key}"]
            predictor.setdefault("model", {})["storageUri"] = annotations[f"{ANNOTATION_PREFIX}/storage-uri"]
        manifest = {"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
                    "metadata": {"name": isvc, "namespace": self.namespace, "labels": meta.get("labels") or {},
                                 "annotations": annotations}, "spec": spec}
        self._apply(json.dumps(manifest, indent=2), isvc)
        self._wait_ready(isvc)

    def undeploy(self, name: str, version: str) -> None:
        """Take one version (dotted, or the ``target_version`` that ``served()`` reports) out of service. During a
        canary: removing the canary rolls back to the stable version, removing the stable one promotes the
        canary. Otherwise the InferenceService is deleted."""
        isvc = isvc_name(name)
        obj = self._get(isvc)
        serving = self.served(name)
        leaving = [m for m in serving if version in (m.version, m.target_version)]  # dotted or our own id
        if obj is None or not leaving:
            return
        version = leaving[0].version
        others = [m for m in serving if m.version != version]
        if not others:
            proc = self._kubectl("delete", "inferenceservice", isvc)
            if proc.returncode != 0 and "NotFound" not in proc.stderr:
                raise TargetError(f"kserve {self.where}: kubectl delete inferenceservice {isvc} failed: "
                                  f"{shorten(proc.stderr)}")
            return
        current = ((obj.get("metadata") or {}).get("annotations") or {}).get(f"{ANNOTATION_PREFIX}/model-version")
        self._reapply(obj, isvc, rollback=current == version)  # drop the canary, or roll back to the stable one

    def verify(self, release: Release) -> list[str]:
        meta = release.metadata
        name = isvc_name(meta.name)
        obj = self._get(name)
        if obj is None:
            return [f"kserve {self.where}: inferenceservice {name} does not exist"]
        problems = []
        wanted = storage_uri(release.registered.data_location, release.executable)
        got = obj.get("spec", {}).get("predictor", {}).get("model", {}).get("storageUri")
        if got != wanted:
            problems.append(f"kserve {self.where}: {name} storageUri is {got}, expected {wanted}")
        sha = ((obj.get("metadata") or {}).get("annotations") or {}).get(f"{ANNOTATION_PREFIX}/executable-sha256")
        if sha != release.executable_entry.sha256:
            problems.append(f"kserve {self.where}: {name} records executable sha256 {sha}, manifest says "
                            f"{release.executable_entry.sha256}")
        ready = condition(obj)
        if not ready or ready.get("status") != "True":
            problems.append(f"kserve {self.where}: {name} is not Ready")
        return problems


def _stable_of(before: dict | None) -> dict[str, str] | None:
    """What the rolled-out revision serves when a new version is applied over ``before``: its stable version
    while a canary or an unfinished rollout splits traffic, else the version it fully serves."""
    if before is None:
        return None
    annotations = (before.get("metadata") or {}).get("annotations") or {}
    predictor = ((before.get("status") or {}).get("components") or {}).get("predictor") or {}
    traffic = predictor.get("traffic") or []
    if any(int(t.get("percent") or 0) > 0 and not t.get("latestRevision") for t in traffic):
        prefix = STABLE
    else:
        prefix = f"{ANNOTATION_PREFIX}/"
    stable = {key: annotations[f"{prefix}{key}"] for key in CURRENT_KEYS if f"{prefix}{key}" in annotations}
    return stable or None


def _load_failure(status: dict[str, Any]) -> str | None:
    """KServe's modelStatus says when the model failed to load; waiting longer will not help then."""
    model_status = status.get("modelStatus") or {}
    states = model_status.get("states") or {}
    if model_status.get("transitionStatus") == "BlockedByFailedLoad" or states.get("targetModelState") == "FailedToLoad":
        info = model_status.get("lastFailureInfo") or {}
        return f"{info.get('reason', 'FailedToLoad')}: {info.get('message', '')}".strip()
    return None
