"""``spark://MASTER?input=URI&output=URI[&format=csv|parquet][&bindings=DIR][&schedule=CRON&pool=POOL]``: batch
scoring on Apache Spark.

MASTER is ``local`` (Spark inside this process, from PySpark; ``cores=N``, default every core) or ``HOST:PORT``
of a standalone master. A
deploy binds the target's scoring job to one registry version (``governance.spark.binding``): it copies the
registered executable into the binding folder (checking its sha256 while copying), scores
``examples/request.json`` through Spark and checks the answer against ``examples/response.json``, and only then
replaces the binding. ``served()`` is read back from the binding and the copy re-hashed, so Atlas's ``deployed``
is exactly the version the next scoring run (``modelgov score``) uses. A failed attempt leaves the old binding.

The binding folder (``bindings=``, default ``<state dir>/spark/bindings``) is where the job reads its model: every
host that deploys or scores through it must see the same folder (a shared mount).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote, urlparse

from governance.config import state_dir
from governance.errors import ConfigError, TargetError
from governance.spark.binding import Binding, BindingStore
from governance.spark.errors import error_reason
from governance.spark.pipelines import feature_names, is_pipeline_zip, scored
from governance.spark.scoring import (
    FORMATS,
    checked_bytes,
    v2_expected,
    v2_request_frame,
)
from governance.spark.session import session, spark_master
from governance.targets.base import (
    DeploymentResult,
    Release,
    ServedModel,
    ServingTarget,
    SmokeResult,
    confined_path,
    target_options,
)
from governance.targets.smoke import check_expected

QUERY_KEYS = {"input", "output", "format", "bindings", "schedule", "pool", "cores"}
PIPELINE_FRAMEWORKS = ("sparkml", "spark-ml", "spark")  # model.framework of a zipped Spark ML PipelineModel
SUPPORTED = (".joblib", ".pkl", ".pickle")  # scikit-learn files; MLflow models through their sklearn flavor


class SparkTarget(ServingTarget):
    """A Spark scoring job bound to one version per model."""

    kind = "spark"

    def __init__(self, uri: str):
        super().__init__(uri)
        parsed = urlparse(uri)
        if parsed.scheme != "spark" or not parsed.netloc:
            raise ConfigError(f"spark target URI must look like spark://local?cores=2&input=URI&output=URI, got "
                              f"{uri!r}")
        options = target_options(uri, QUERY_KEYS, "spark")
        self.master = spark_master(parsed.netloc, options.get("cores"))
        self.input = options.get("input")
        self.output = options.get("output")
        self.format = options.get("format", "csv")
        if self.format not in FORMATS:
            raise ConfigError(f"spark target URI {uri!r}: format must be one of {', '.join(FORMATS)}")
        self.schedule = options.get("schedule")  # cron: flows.score registers the scheduled job
        self.pool = options.get("pool", "modelgov")   # the Prefect work pool its runs go to
        bindings = options.get("bindings")
        self.bindings = Path(unquote(bindings)).expanduser() if bindings else state_dir() / "spark" / "bindings"
        self.store = BindingStore(self.bindings)

    @property
    def host_detail(self) -> str:
        return f"{urlparse(self.uri).netloc}:{self.bindings}"

    @property
    def where(self) -> str:
        return f"spark {self.master} (bindings {self.bindings})"

    def lock_path(self) -> Path:
        """In the binding folder: every host binding through it takes the same lock."""
        self.bindings.mkdir(parents=True, exist_ok=True)
        return self.bindings / ".modelgov-deploy.lock"

    # ------------------------------------------------------------------------------------------ deploy
    def deploy(self, release: Release) -> DeploymentResult:
        meta = release.metadata
        model_file, framework = self._model_file(release)
        expected = release.registered.manifest.entry(model_file)
        copy_dir = self.store.copy_dir(meta.name, meta.version, expected.sha256)
        executable = confined_path(copy_dir, Path(model_file).name, what=f"{self.where} binding folder")
        previous = self.store.read(meta.name)
        fresh = not copy_dir.exists()
        try:
            self._copy_checked(release, model_file, executable)
            data = executable.read_bytes()
            if framework == "sparkml" and not is_pipeline_zip(data):
                raise TargetError(f"{self.where}: {model_file} is not a zip of a saved Spark ML PipelineModel "
                                  "(its metadata/part-* must name org.apache.spark.ml.PipelineModel)")
            smoke = self._smoke(release, data, expected.sha256, framework)
        except BaseException:
            if fresh and not (previous and self.bindings / previous.executable == executable):
                shutil.rmtree(copy_dir, ignore_errors=True)  # the failed attempt's copy; the binding is untouched
            raise
        deployed_at = datetime.now(UTC)
        binding = Binding(model=meta.name, version=meta.version, sha256=expected.sha256,
                          executable=str(executable.relative_to(self.bindings)),
                          registry_uri=release.registered.location, framework=framework,
                          bound_at=deployed_at.isoformat(timespec="seconds"),
                          executable_sha256=release.executable_entry.sha256)
        self.store.bind(binding)
        self.store.prune(meta.name)
        details = {"binding": str(self.bindings / meta.name / "binding.json"), "bound_sha256": expected.sha256,
                   "master": self.master}
        if previous and previous.target_version != binding.target_version:
            details["replaced"] = f"{previous.model} {previous.version}"
        if smoke is None:
            details["smoke"] = "skipped: the staged repo has no examples/request.json"
        return DeploymentResult(
            target_kind=self.kind, target_uri=self.uri, host_detail=self.host_detail,
            endpoint_url=self.output or f"spark {self.master}", model_name=meta.name, model_version=meta.version,
            deployed_at=deployed_at, serialized_object=release.registered.executable_uri, loaded_name=meta.name,
            loaded_version=binding.target_version, smoke=smoke, details=details)

    def _model_file(self, release: Release) -> tuple[str, str]:
        """(the registry file the job loads, its framework): a scikit-learn file, the pickled model of an MLflow
        model's sklearn flavor (MLflow itself is not needed to load it), or a zipped Spark ML PipelineModel.
        Anything else is refused."""
        executable = release.executable
        if executable.endswith(".zip") and (release.metadata.framework or "").lower() in PIPELINE_FRAMEWORKS:
            return executable, "sparkml"  # the zip's content is checked on the bound copy (deploy)
        if executable.endswith(SUPPORTED):
            return executable, "sklearn"
        if Path(executable).name == "MLmodel":
            flavor = self._sklearn_flavor(release)
            if flavor is not None:
                pickled, fmt = flavor
                return str(Path(executable).parent / pickled), f"mlflow-sklearn:{fmt}"
        raise TargetError(f"{self.where}: {executable} is neither a scikit-learn model file ({', '.join(SUPPORTED)}), "
                          "an MLflow model with a sklearn flavor, nor a zipped Spark ML PipelineModel (model.framework = "
                          "sparkml); other MLflow flavors are not supported yet")

    def _sklearn_flavor(self, release: Release) -> tuple[str, str] | None:
        """(the sklearn flavor's model file, its serialization format: skops, pickle or cloudpickle), or None."""
        import yaml

        text = b"".join(release.registry.read_verified(release.registered, release.executable,
                                                       purpose=f"read it for {self.where}"))
        try:
            flavor = yaml.safe_load(text.decode("utf-8"))["flavors"]["sklearn"]
            pickled, fmt = flavor["pickled_model"], flavor.get("serialization_format") or "cloudpickle"
        except (ValueError, KeyError, TypeError, yaml.YAMLError):
            return None
        if not isinstance(pickled, str) or fmt not in ("skops", "pickle", "cloudpickle"):
            return None
        return pickled, fmt

    def _copy_checked(self, release: Release, path: str, dest: Path) -> None:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in release.registry.read_verified(release.registered, path,
                                                            purpose=f"bind it to {self.where}"):
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, dest)
        except OSError as exc:
            raise TargetError(f"{self.where}: copying {release.registered.executable_uri} to {dest} failed: "
                              f"{exc}") from exc
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()

    def _smoke(self, release: Release, data: bytes, sha256: str, framework: str) -> SmokeResult | None:
        """Score the example request through Spark, as a scoring run would, and compare with the expected answer."""
        if release.example_request is None:
            return None
        model_bytes = checked_bytes(data, sha256, f"{self.where} bound copy")
        spark = session(self.master)
        workdir = self.store.workdir(release.metadata.name)
        try:
            with feature_names(model_bytes, framework, workdir) as names:
                frame = v2_request_frame(spark, release.example_request, names)
            with scored(spark, frame, model_bytes, framework, workdir) as answer:
                predictions = [row["prediction"] for row in answer.collect()]
        except TargetError:
            raise
        except Exception as exc:  # noqa: BLE001 - a Py4J or Python worker error: the model cannot score here
            raise TargetError(f"{self.where}: smoke scoring of examples/request.json failed: "
                              f"{error_reason(exc)}") from exc
        answer = {"outputs": [{"name": "predict", "data": predictions}]}
        expected = release.example_response
        matched = check_expected({"data": predictions}, {"data": v2_expected(expected)} if expected else None,
                                 where=self.where)
        return SmokeResult(request=release.example_request, response=json.loads(json.dumps(answer, default=str)),
                           matched_expected=matched)

    # ------------------------------------------------------------------------------------------ state
    def served(self, name: str | None = None) -> list[ServedModel]:
        bindings = [b for b in ([self.store.read(name)] if name else self.store.all()) if b is not None]
        return [ServedModel(b.model, b.version, b.target_version, self.store.installed_sha256(b),
                            endpoint_url=self.output or f"spark {self.master}") for b in bindings]

    def status(self, name: str, version: str) -> str:
        binding = self.store.read(name)
        return "deployed" if binding is not None and binding.version == version else "stopped"

    def undeploy(self, name: str, version: str) -> None:
        binding = self.store.read(name)
        if binding is not None and binding.version == version:
            self.store.unbind(name)
            self.store.prune(name)

    def verify(self, release: Release) -> list[str]:
        meta = release.metadata
        binding = self.store.read(meta.name)
        if binding is None or binding.version != meta.version:
            return [f"{self.where}: {meta.name} {meta.version} is not bound"]
        installed = self.store.installed_sha256(binding)
        if installed != release.executable_entry.sha256:
            return [f"{self.where}: the bound copy of {meta.name} {meta.version} has sha256 {installed}, the "
                    f"registry manifest says {release.executable_entry.sha256}"]
        return []

    def binding(self, name: str) -> Binding | None:
        return self.store.read(name)
