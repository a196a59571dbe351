"""The peer users would otherwise pick: MLflow publishing and registering the same staged model to the same
real Ceph radosgw bucket, against modelgov's S3 registry publish.

    python -m bench.mlflow_peer [--runs N] [--quick] [--size-mib 64]

Both sides run as whole child processes, timed from here (interpreter start, imports, work, exit: what a
user pays per publish), one at a time, alternating which goes first:

- ours: ``python -m bench.mlflow_peer --child-ours STAGED s3://bucket/modelgov`` in modelgov's venv:
  ``get_registry(uri).publish(validate_repo(STAGED))``;
- MLflow: ``bench/mlflow_peer_child.py`` in ``.venv-mlflow`` (MLflow 3, boto3 for S3): a run in an experiment
  whose artifact location is ``s3://bucket/mlflow`` on a local SQLite tracking store, the staged folder logged
  as a LoggedModel, then ``register_model``.

The main line uses the example repo with its executable replaced by ``--size-mib`` MiB of random bytes; the
example exactly as it is (about 7 KB) is measured too (``example_*`` fields). Each child reports its own
peak RSS (VmHWM) and the seconds of its work without imports (``work_*`` fields). After each run the bucket
is emptied and radosgw's garbage collector run, so the 1 GiB memstore never fills.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench.common import ROOT, MiB, alternate, emit, failed, log, peak_rss_mb_of_self, result

BENCH = "mlflow_peer_s3_publish_register"
EXAMPLE = ROOT / "staging_template" / "example"
CHILD = Path(__file__).resolve().with_name("mlflow_peer_child.py")


# -- ours, in its own process ---------------------------------------------------------------------------------
def child_ours(staged: str, uri: str) -> int:
    started = time.perf_counter()
    from governance.registries import get_registry
    from governance.staging.validate import validate_repo

    imported = time.perf_counter()
    version = get_registry(uri).publish(validate_repo(Path(staged)))
    seconds = time.perf_counter() - imported
    manifest = version.manifest
    print(json.dumps({"seconds": seconds, "import_seconds": imported - started, "peak_rss_mb": peak_rss_mb_of_self(),
                      "location": version.location, "files": [f.to_dict() for f in manifest.files]}), flush=True)
    return 0


# -- the parent ----------------------------------------------------------------------------------------------
def make_staged(root: Path, size_mib: int) -> Path:
    """The example repo; with ``size_mib`` its executable is replaced by that many MiB of random bytes."""
    shutil.copytree(EXAMPLE, root)
    if size_mib:
        (root / "executable" / "model.joblib").unlink()
        with (root / "executable" / "model.bin").open("wb") as fh:
            for _ in range(size_mib):
                fh.write(os.urandom(MiB))
    return root


def set_version(repo: Path, version: str) -> None:
    meta = repo / "metadata.txt"
    meta.write_text("\n".join(f"model.version = {version}" if line.startswith("model.version") else line
                              for line in meta.read_text(encoding="utf-8").splitlines()) + "\n", encoding="utf-8")


class Peer:
    def __init__(self, work: Path, info: dict, cluster: Any):
        self.work, self.cluster = work, cluster
        self.bucket = f"peer-{uuid.uuid4().hex[:8]}"
        creds = {"AWS_ACCESS_KEY_ID": info["access_key"], "AWS_SECRET_ACCESS_KEY": info["secret_key"],
                 "AWS_DEFAULT_REGION": info.get("region", "us-east-1")}
        self.env_ours = {**os.environ, **creds, "AWS_ENDPOINT_URL": info["url"], "PYTHONPATH": str(ROOT)}
        from testbed.mlflow import mlflow_env, mlflow_python

        self.mlflow_python = str(mlflow_python())
        self.env_mlflow = {**mlflow_env(), **creds, "MLFLOW_S3_ENDPOINT_URL": info["url"]}
        self.env_mlflow.pop("AWS_ENDPOINT_URL", None)
        self.tracking = f"sqlite:///{work / 'mlflow.db'}"
        os.environ.update(creds, AWS_ENDPOINT_URL=info["url"])
        from governance.registries.s3 import make_client

        self.s3 = make_client(info["url"])
        self.s3.create_bucket(Bucket=self.bucket)
        self.versions = iter(range(1, 10**6))
        self.last: dict[str, dict] = {}
        self.rss: dict[str, list[float]] = {"ours": [], "mlflow": []}
        self.work_s: dict[str, list[float]] = {"ours": [], "mlflow": []}
        self.recorded: dict[str, dict] = {}

    def _child(self, side: str, cmd: list[str], env: dict) -> float:
        start = time.perf_counter()
        proc = subprocess.run(cmd, env=env, cwd=self.work, capture_output=True, text=True, timeout=900)
        seconds = time.perf_counter() - start
        if proc.returncode != 0:
            raise RuntimeError(f"{side} child exited {proc.returncode}: {proc.stderr[-1500:]}")
        report = json.loads(proc.stdout.strip().splitlines()[-1])
        self.last[side] = report
        self.rss[side].append(report["peak_rss_mb"])
        self.work_s[side].append(report["seconds"])
        self.recorded[side] = self.records("modelgov" if side == "ours" else "mlflow")
        self.reset()
        return seconds

    def ours(self, staged: Path) -> float:
        set_version(staged, f"1.{next(self.versions)}")
        return self._child("ours", [sys.executable, "-m", "bench.mlflow_peer", "--child-ours", str(staged),
                                    f"s3://{self.bucket}/modelgov"], self.env_ours)

    def mlflow(self, staged: Path, name: str) -> float:
        return self._child("mlflow", [self.mlflow_python, str(CHILD), str(staged), name, self.tracking,
                                      f"s3://{self.bucket}/mlflow"], self.env_mlflow)

    def reset(self) -> None:
        """Empty the bucket and let radosgw free the space now (its GC waits hours by default)."""
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket):
            keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
            if keys:
                self.s3.delete_objects(Bucket=self.bucket, Delete={"Objects": keys, "Quiet": True})
        self.cluster._run("radosgw-admin", "-c", str(self.cluster.conf), "gc", "process", "--include-all",
                          timeout=120)

    def records(self, prefix: str) -> dict[str, Any]:
        """What one side left in the bucket: its objects, and the largest one's S3 metadata and checksums."""
        objects = [o for page in self.s3.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=prefix + "/") for o in page.get("Contents", [])]
        biggest = max(objects, key=lambda o: o["Size"]) if objects else None
        head = self.s3.head_object(Bucket=self.bucket, Key=biggest["Key"], ChecksumMode="ENABLED") if biggest else {}
        return {"objects": len(objects), "keys": sorted(o["Key"].split("/", 1)[1] for o in objects)[:12],
                "largest_object_metadata": head.get("Metadata"),
                "largest_object_checksum_sha256": head.get("ChecksumSHA256"), "largest_object_etag": head.get("ETag")}


def describe_records(last: dict[str, dict], recorded: dict[str, dict]) -> dict[str, str]:
    """What each side keeps about a published version, from what the children and the bucket show."""
    files = last["ours"]["files"]
    ours_obj, ml_obj = recorded.get("ours", {}), recorded.get("mlflow", {})
    with_sha = sum(1 for f in files if f.get("sha256") and "size" in f)
    ours = (f"MANIFEST.json (written last, If-None-Match: a version is never overwritten): {with_sha}/{len(files)} "
            f"files with sha256 + size, plus source, commit, metadata; objects carry x-amz-meta "
            f"{sorted(ours_obj.get('largest_object_metadata') or {})}")
    version = last["mlflow"]["model_version"]
    kept = sorted(k for k, v in version.items() if v not in (None, "", "None", "[]", "{}"))
    checksum = ml_obj.get("largest_object_checksum_sha256")
    meta = ml_obj.get("largest_object_metadata") or {}
    mlflow = (f"model version fields {', '.join(kept)} (source = models:/<id>); "
              f"{ml_obj.get('objects')} plain S3 objects with "
              f"{'x-amz-meta ' + str(sorted(meta)) if meta else 'no user metadata'}, "
              f"{'a SHA256 checksum' if checksum else 'no checksum'} (ETag only); no file list, size or "
              f"checksum in the tracking store")
    return {"ours": ours, "mlflow": mlflow}


def main(argv: list[str] | None = None) -> int:
    if argv is None and len(sys.argv) > 1 and sys.argv[1] == "--child-ours":
        return child_ours(sys.argv[2], sys.argv[3])
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--size-mib", type=int, default=None, help="synthetic executable size (64; quick: 4)")
    args = parser.parse_args(argv)
    size = args.size_mib if args.size_mib is not None else (4 if args.quick else 64)
    runs = min(args.runs, 2) if args.quick else args.runs
    if not (EXAMPLE / "executable" / "model.joblib").is_file():
        failed(BENCH, f"the example model is missing ({EXAMPLE}): run `make example`")
        return 1
    from testbed.mlflow import mlflow_python

    if not mlflow_python().exists():
        failed(BENCH, f"MLflow's venv is missing ({mlflow_python()}): run `make mlflow-env`")
        return 1
    from testbed.service import service_class

    work = Path(tempfile.mkdtemp(prefix="modelgov-bench-mlflow-"))
    svc = None
    try:
        svc = service_class("radosgw")(work / "radosgw")
        info = svc.start()
        log(f"radosgw ready at {info['url']}")
        peer = Peer(work, info, svc.cluster)
        results = {}
        for label, mib in (("example", 0), ("synthetic", size)):
            staged = make_staged(work / f"staged-{label}", mib)
            peer.rss = {"ours": [], "mlflow": []}
            peer.work_s = {"ours": [], "mlflow": []}
            # the warm-up creates the tracking DB and radosgw's data pools; each child's objects are listed
            # and deleted after it (outside the clock)
            ours, theirs = alternate(lambda _, staged=staged: peer.ours(staged),
                                     lambda _, staged=staged, label=label: peer.mlflow(staged, f"peer-{label}"),
                                     runs, warmup=True)
            results[label] = (ours, theirs, dict(peer.rss), dict(peer.work_s), dict(peer.recorded))
            log(f"{label} ({f'{mib} MiB executable' if mib else 'as it is'}): ours {statistics.median(ours):.2f} s, "
                f"MLflow {statistics.median(theirs):.2f} s (whole processes)")
        ours, theirs, rss, work_s, recorded = results["synthetic"]
        ex_ours, ex_theirs, ex_rss, _, _ = results["example"]
        emit(result(
            BENCH, ours, theirs, unit="s", higher_is_better=False,
            baseline_name="MLflow 3.17.2 LoggedModel + register_model", size_mib=size,
            measured="whole child processes (start, imports, work, exit), wall time",
            peak_rss_ours_mb=max(rss["ours"]), peak_rss_mlflow_mb=max(rss["mlflow"]),
            work_ours_s=round(statistics.median(work_s["ours"][1:]), 4),  # [0] is the warm-up
            work_mlflow_s=round(statistics.median(work_s["mlflow"][1:]), 4),
            import_ours_s=round(peer.last["ours"]["import_seconds"], 3),
            import_mlflow_s=round(peer.last["mlflow"]["import_seconds"], 3),
            example_value=round(statistics.median(ex_ours), 4), example_baseline=round(statistics.median(ex_theirs), 4),
            example_peak_rss_ours_mb=max(ex_rss["ours"]), example_peak_rss_mlflow_mb=max(ex_rss["mlflow"]),
            records=describe_records(peer.last, recorded),
            server="radosgw"))
    except Exception as exc:  # noqa: BLE001 - the table shows the failure
        failed(BENCH, f"{exc.__class__.__name__}: {exc}")
        return 1
    finally:
        if svc is not None:
            svc.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
