"""Registry benchmarks: publish throughput against the plain tools, and peak RSS while publishing 1 GiB.

    python -m bench.registry [--runs 5] [--quick] [--size-mb 256] [--rss-size-mb 1024] [--rss-runs 3]

- ``file_publish_vs_cp_sha256sum``: the file registry (copy, sha256 while copying, fsync, atomic rename) vs
  ``cp -r SRC DST && sha256sum`` of every copied file; MB/s, target ratio >= 1.0.
- ``s3_publish_vs_boto3_upload_file``: the S3 registry vs boto3 ``upload_file`` of the same files with the
  registry's own TransferConfig, on a real Ceph radosgw (testbed); MB/s, target ratio >= 0.95.
- ``hdfs_publish_vs_hdfs_upload``: the HDFS registry vs the ``hdfs`` package's ``InsecureClient.upload`` of
  the same folder, on a real HDFS (testbed MiniDFSCluster); MB/s, target ratio >= 0.9.
- ``file_publish_signed_vs_unsigned_{N}mib``, ``signature_check_vs_sha256_verify_{N}mib``: what signing adds to
  a publish (signed vs unsigned file-registry publish) and what the trust-policy check adds to a deploy (vs
  re-hashing the version), at the throughput size and at 1 GiB; seconds.
- ``peak_rss_publish_1gib_{file,s3,hdfs}``: peak RSS (VmHWM) of a fresh process publishing a 1 GiB
  executable (validation included, as ``modelgov publish`` does), vs the plain tool doing the same upload in
  a fresh process; MB, target value <= 150.

Throughput counts the publish only (the staged repo is validated once, before); each run publishes into a
fresh registry root / prefix / folder and everything written is removed after the run, untimed. Runs
alternate which side goes first; one uncounted warm-up of each side comes first. A backend whose server
cannot start gets a ``failed`` line for each of its benchmarks.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
import uuid
from collections.abc import Callable
from pathlib import Path

from bench.common import MiB, Target, emit, failed, log, peak_rss_mb_of_self, result, throughput, timed
from bench.common import alternate as _alternate

FILE_BENCH = "file_publish_vs_cp_sha256sum"
S3_BENCH = "s3_publish_vs_boto3_upload_file"
HDFS_BENCH = "hdfs_publish_vs_hdfs_upload"
RSS_BENCH = "peak_rss_publish_1gib_{}"
RSS_TARGET = Target("value", "<=", 150)
SIGNED_PUBLISH_BENCH = "file_publish_signed_vs_unsigned_{}mib"
SIGNATURE_CHECK_BENCH = "signature_check_vs_sha256_verify_{}mib"


# -- staged repos ----------------------------------------------------------------------------------------
def make_staged(root: Path, size_mib: int, name: str = "bench") -> Path:
    """A valid staged repo whose executable is ``size_mib`` MiB of random bytes (no two 8 MiB pieces alike)."""
    (root / "executable").mkdir(parents=True)
    (root / "metadata.txt").write_text(f"model.name={name}\nmodel.version=1\nmodel.type=sklearn\n"
                                       f"model.owner=bench\nmodel.owner.lob=bench\nmodel.description=benchmark\n")
    (root / "README.md").write_text("# benchmark model\n")
    piece = os.urandom(8 * MiB)
    with (root / "executable" / "model.bin").open("wb") as fh:
        for i in range(size_mib * MiB // len(piece)):
            fh.write(piece[:8] + i.to_bytes(8, "big") + piece[16:])
        fh.write(os.urandom(size_mib * MiB % len(piece)))
    return root


def repo_files(staged_dir: Path) -> list[Path]:
    return sorted(p for p in staged_dir.rglob("*") if p.is_file())


def repo_bytes(staged_dir: Path) -> int:
    return sum(p.stat().st_size for p in repo_files(staged_dir))


def alternate(ours: Callable[[int], float], baseline: Callable[[int], float], runs: int,
              cleanup: Callable[[], None]) -> tuple[list[float], list[float]]:
    """common.alternate with a warm-up, removing everything written after each measurement (untimed)."""
    def wrap(fn: Callable[[int], float]) -> Callable[[int], float]:
        def run(n: int) -> float:
            try:
                return fn(n)
            finally:
                cleanup()
        return run
    return _alternate(wrap(ours), wrap(baseline), runs, warmup=True)


# -- file ------------------------------------------------------------------------------------------------
def bench_file(staged_dir: Path, work: Path, runs: int, size_mib: int) -> None:
    from governance.registries import get_registry
    from governance.staging.validate import validate_repo

    staged = validate_repo(staged_dir)
    total = repo_bytes(staged_dir)
    out = work / "file-out"

    def ours(n: int) -> float:
        return timed(lambda: get_registry(f"file://{out}/ours-{n}").publish(staged))

    def plain(n: int) -> float:
        dst = out / f"cp-{n}"
        dst.parent.mkdir(parents=True, exist_ok=True)
        cmd = f'cp -r "{staged_dir}" "{dst}" && find "{dst}" -type f -exec sha256sum {{}} + >/dev/null'
        return timed(lambda: subprocess.run(["sh", "-c", cmd], check=True, timeout=900))

    a, b = alternate(ours, plain, runs, lambda: shutil.rmtree(out, ignore_errors=True))
    emit(result(FILE_BENCH, throughput(total, a), throughput(total, b), unit="MB/s", higher_is_better=True,
                baseline_name="cp -r && sha256sum", target=Target("ratio", ">=", 1.0), size_mib=size_mib,
                note="ours hashes while copying, fsyncs every file and folder, renames atomically; "
                     "cp does not fsync"))


# -- signing (issue 21) ------------------------------------------------------------------------------------
def bench_signing(staged_dir: Path, work: Path, runs: int, size_mib: int) -> None:
    """What signing adds to a publish and what checking the signature adds to a deploy, against the sha256
    work both already do: a signed file-registry publish vs an unsigned one (seconds), and the trust-policy
    check of a signed version vs re-hashing its bytes (``registry verify``; seconds)."""
    from governance.registries import get_registry
    from governance.staging.validate import validate_repo
    from governance.trust.signing import SigningIdentity, TrustPolicy, create_key_pair

    staged = validate_repo(staged_dir)
    private, public, _ = create_key_pair(work / f"keys-{size_mib}", "bench")
    identity = SigningIdentity(private)
    policy = TrustPolicy.from_env({"MODELGOV_TRUSTED_KEYS": str(public)})
    out = work / f"sign-out-{size_mib}"

    def signed(n: int) -> float:
        return timed(lambda: get_registry(f"file://{out}/signed-{n}").publish(staged, signing=identity))

    def unsigned(n: int) -> float:
        return timed(lambda: get_registry(f"file://{out}/unsigned-{n}").publish(staged))

    a, b = alternate(signed, unsigned, runs, lambda: shutil.rmtree(out, ignore_errors=True))
    emit(result(SIGNED_PUBLISH_BENCH.format(size_mib), a, b, unit="s", higher_is_better=False,
                baseline_name="unsigned publish", target=Target("ratio", "<=", 1.1), size_mib=size_mib,
                note="the statement is built from the digests publish computes, so no byte is read twice; "
                     "what is left is one ECDSA signature and the key load (a few ms)"))

    registry = get_registry(f"file://{out}/check")
    version = registry.publish(staged, signing=identity)
    try:
        c, d = _alternate(lambda n: timed(lambda: registry.check_signature(version, policy)),
                          lambda n: timed(lambda: registry.verify(version)), runs, warmup=True)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    emit(result(SIGNATURE_CHECK_BENCH.format(size_mib), c, d, unit="s", higher_is_better=False,
                baseline_name="sha256 of every file (registry verify)", target=Target("value", "<=", 1.0),
                size_mib=size_mib, note="what a deploy adds before the target; the bytes are sha256-checked "
                                        "as the target reads them either way"))


# -- S3 (radosgw) ----------------------------------------------------------------------------------------
class S3Env:
    """A real radosgw from the testbed, sized for what the run writes; credentials exported for boto3."""

    def __init__(self, workdir: Path, memstore_mib: int):
        from testbed.service import service_class

        workdir.mkdir(parents=True, exist_ok=True)
        self.svc = service_class("radosgw")(workdir, memstore_bytes=memstore_mib * MiB)
        try:
            self.info = self.svc.start()
        except BaseException:
            self.svc.stop()
            raise
        os.environ.update(AWS_ENDPOINT_URL=self.info["url"], AWS_ACCESS_KEY_ID=self.info["access_key"],
                          AWS_SECRET_ACCESS_KEY=self.info["secret_key"], AWS_DEFAULT_REGION=self.info["region"])
        from governance.registries.s3 import make_client

        self.client = make_client()
        self.bucket = f"bench-{uuid.uuid4().hex[:8]}"
        self.client.create_bucket(Bucket=self.bucket)

    def empty(self) -> None:
        """Delete every object and incomplete upload, then let radosgw's gc free the memstore now."""
        s3 = self.client
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket):
            keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
            if keys:
                s3.delete_objects(Bucket=self.bucket, Delete={"Objects": keys, "Quiet": True})
        for up in s3.list_multipart_uploads(Bucket=self.bucket).get("Uploads", []):
            s3.abort_multipart_upload(Bucket=self.bucket, Key=up["Key"], UploadId=up["UploadId"])
        cluster = self.svc.cluster
        subprocess.run(["radosgw-admin", "-c", str(cluster.conf), "gc", "process", "--include-all"],
                       capture_output=True, timeout=300, check=False)

    def stop(self) -> None:
        self.svc.stop()


def boto3_upload(client, bucket: str, staged_dir: Path, prefix: str) -> None:
    """What a plain script does: a client, then upload_file every file, with the registry's TransferConfig."""
    from governance.registries.s3 import TRANSFER

    if client is None:  # timed, as get_registry's client is on our side
        import boto3
        from botocore.config import Config

        client = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"],
                              config=Config(s3={"addressing_style": "path"}))
    for p in repo_files(staged_dir):
        client.upload_file(str(p), bucket, f"{prefix}/{p.relative_to(staged_dir).as_posix()}", Config=TRANSFER)


def bench_s3(env: S3Env, staged_dir: Path, runs: int, size_mib: int) -> None:
    from governance.registries import get_registry
    from governance.staging.validate import validate_repo

    staged = validate_repo(staged_dir)
    total = repo_bytes(staged_dir)

    def ours(n: int) -> float:
        return timed(lambda: get_registry(f"s3://{env.bucket}/ours-{n}").publish(staged))

    def plain(n: int) -> float:
        return timed(lambda: boto3_upload(None, env.bucket, staged_dir, f"plain-{n}"))

    a, b = alternate(ours, plain, runs, env.empty)
    emit(result(S3_BENCH, throughput(total, a), throughput(total, b), unit="MB/s", higher_is_better=True,
                baseline_name="boto3 upload_file (same TransferConfig)", target=Target("ratio", ">=", 0.95),
                size_mib=size_mib, server="radosgw (memstore)",
                note="both timed from creating their client (get_registry / boto3.client) to the last byte; "
                     "ours streams once: sha256 while uploading, manifest commit with If-None-Match"))


# -- HDFS ------------------------------------------------------------------------------------------------
class HdfsEnv:
    def __init__(self, workdir: Path):
        from testbed.service import service_class

        workdir.mkdir(parents=True, exist_ok=True)
        self.svc = service_class("hdfs")(workdir)
        try:
            self.info = self.svc.start()
        except BaseException:
            self.svc.stop()
            raise
        os.environ["MODELGOV_HDFS_USER"] = self.info["registry_user"]
        os.environ.pop("MODELGOV_HDFS_AUTH", None)
        self.root = "/registry/bench"
        self.port = int(self.info["url"].rsplit(":", 1)[1])
        self.client = self.plain_client()

    def plain_client(self):
        from hdfs import InsecureClient

        return InsecureClient(self.info["url"], user=self.info["registry_user"])

    def uri(self, path: str) -> str:
        return f"hdfs://127.0.0.1:{self.port}{path}"

    def empty(self) -> None:
        self.client.delete(self.root, recursive=True)

    def stop(self) -> None:
        self.svc.stop()


def bench_hdfs(env: HdfsEnv, staged_dir: Path, runs: int, size_mib: int) -> None:
    from governance.registries import get_registry
    from governance.staging.validate import validate_repo

    staged = validate_repo(staged_dir)
    total = repo_bytes(staged_dir)

    def ours(n: int) -> float:
        return timed(lambda: get_registry(env.uri(f"{env.root}/ours-{n}")).publish(staged))

    def plain(n: int) -> float:
        client = env.plain_client()
        client.makedirs(env.root)
        return timed(lambda: client.upload(f"{env.root}/plain-{n}", str(staged_dir)))

    a, b = alternate(ours, plain, runs, env.empty)
    emit(result(HDFS_BENCH, throughput(total, a), throughput(total, b), unit="MB/s", higher_is_better=True,
                baseline_name="hdfs InsecureClient.upload", target=Target("ratio", ">=", 0.9), size_mib=size_mib,
                server="hdfs MiniDFSCluster (1 namenode, 1 datanode)",
                note="ours: sha256 while streaming, length check, manifest, rename2 commit"))


# -- peak RSS --------------------------------------------------------------------------------------------
def run_child(args: list[str]) -> dict:
    """``python -m bench.registry --rss-child ...`` in a fresh process; its last stdout line is JSON."""
    out = subprocess.run([sys.executable, "-m", "bench.registry", "--rss-child", *args], capture_output=True,
                         text=True, timeout=1800, env=os.environ.copy(), cwd=Path(__file__).resolve().parents[1])
    if out.returncode != 0:
        raise RuntimeError(f"rss child {args[0]} failed: {out.stderr.strip()[-600:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def cp_sha256sum_peak_mb(staged_dir: Path, dst: Path) -> float:
    """Peak RSS of the largest process of ``cp -r && sha256sum`` (GNU time's %M: max over the waited-for tree)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    cmd = f'cp -r "{staged_dir}" "{dst}" && find "{dst}" -type f -exec sha256sum {{}} + >/dev/null'
    out = subprocess.run(["/usr/bin/time", "-f", "%M", "sh", "-c", cmd], capture_output=True, text=True,
                         timeout=1800, check=True)
    return round(int(out.stderr.strip().splitlines()[-1]) / 1024, 1)


def rss_child(mode: str, target: str, staged_dir: str) -> None:
    """One upload in this fresh process, then print its VmHWM."""
    staged_path = Path(staged_dir)
    start = time.perf_counter()
    if mode == "ours":
        from governance.registries import get_registry
        from governance.staging.validate import validate_repo

        get_registry(target).publish(validate_repo(staged_path))
    elif mode == "boto3":
        bucket, _, prefix = target.removeprefix("s3://").partition("/")
        boto3_upload(None, bucket, staged_path, prefix)
    elif mode == "hdfs":
        from hdfs import InsecureClient

        url, _, path = target.partition("#")
        InsecureClient(url, user=os.environ["MODELGOV_HDFS_USER"]).upload(path, staged_dir)
    else:
        raise SystemExit(f"unknown rss child mode {mode!r}")
    print(json.dumps({"peak_rss_mb": peak_rss_mb_of_self(), "seconds": round(time.perf_counter() - start, 2)}))


def bench_rss(backend: str, ours_target: Callable[[int], str], plain: Callable[[int], float],
              cleanup: Callable[[], None], staged_dir: Path, runs: int, size_mib: int, baseline_name: str) -> None:
    def ours(n: int) -> float:
        return run_child(["ours", ours_target(n), str(staged_dir)])["peak_rss_mb"]

    a, b = _alternate(_cleaned(ours, cleanup), _cleaned(plain, cleanup), runs)
    emit(result(RSS_BENCH.format(backend), a, b, unit="MB", higher_is_better=False, baseline_name=baseline_name,
                target=RSS_TARGET, size_mib=size_mib,
                note="VmHWM of a fresh process: python + imports + validation (hashes the repo) + publish"))


def _cleaned(fn: Callable[[int], float], cleanup: Callable[[], None]) -> Callable[[int], float]:
    def run(n: int) -> float:
        try:
            return fn(n)
        finally:
            cleanup()
    return run


# -- main ------------------------------------------------------------------------------------------------
def _guard(benches: list[str], fn: Callable[[], None]) -> None:
    """Run one benchmark; a failure leaves a ``failed`` line for it instead of stopping the others."""
    try:
        fn()
    except Exception as exc:  # noqa: BLE001 - reported in the results, never hidden
        log(traceback.format_exc())
        for bench in benches:
            failed(bench, f"{type(exc).__name__}: {exc}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="alternating runs per throughput benchmark")
    parser.add_argument("--rss-runs", type=int, default=3, help="alternating runs per peak-RSS benchmark (1 GiB each)")
    parser.add_argument("--quick", action="store_true", help="16 MiB / 64 MiB and 2 runs: checks everything runs")
    parser.add_argument("--size-mb", type=int, default=256, help="executable size for the throughput runs (MiB)")
    parser.add_argument("--rss-size-mb", type=int, default=1024, help="executable size for the peak-RSS runs (MiB)")
    parser.add_argument("--only", nargs="*", choices=["file", "s3", "hdfs"], default=["file", "s3", "hdfs"])
    parser.add_argument("--rss-child", nargs=3, metavar=("MODE", "TARGET", "STAGED"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.rss_child:
        rss_child(*args.rss_child)
        return 0
    if args.quick:
        args.size_mb, args.rss_size_mb, args.runs, args.rss_runs = 16, 64, 2, 2
    rss_runs = min(args.rss_runs, args.runs)
    work = Path(tempfile.mkdtemp(prefix="modelgov-bench-registry-"))
    try:
        log(f"staging {args.size_mb} MiB and {args.rss_size_mb} MiB repos in {work}")
        small = make_staged(work / "staged", args.size_mb)
        big = make_staged(work / "staged-big", args.rss_size_mb, name="bench-big")
        if "file" in args.only:
            run_file(args, small, big, work, rss_runs)
        if "s3" in args.only:
            run_s3(args, small, big, work, rss_runs)
        if "hdfs" in args.only:
            run_hdfs(args, small, big, work, rss_runs)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def run_file(args: argparse.Namespace, small: Path, big: Path, work: Path, rss_runs: int) -> None:
    log("file registry")
    _guard([FILE_BENCH], lambda: bench_file(small, work, args.runs, args.size_mb))
    for staged, size in ((small, args.size_mb), (big, args.rss_size_mb)):
        _guard([SIGNED_PUBLISH_BENCH.format(size), SIGNATURE_CHECK_BENCH.format(size)],
               lambda staged=staged, size=size: bench_signing(staged, work, rss_runs, size))
    out = work / "rss-file"
    _guard([RSS_BENCH.format("file")], lambda: bench_rss(
        "file", lambda n: f"file://{out}/ours-{n}", lambda n: cp_sha256sum_peak_mb(big, out / f"cp-{n}"),
        lambda: shutil.rmtree(out, ignore_errors=True), big, rss_runs, args.rss_size_mb, "cp -r && sha256sum"))


def run_s3(args: argparse.Namespace, small: Path, big: Path, work: Path, rss_runs: int) -> None:
    benches = [S3_BENCH, RSS_BENCH.format("s3")]
    # the bucket is emptied and radosgw's gc run after every upload: the memstore holds one run of both sides
    memstore_mib = 2 * max(args.size_mb, args.rss_size_mb) + 1024
    log(f"starting radosgw (memstore {memstore_mib} MiB)")
    try:
        env = S3Env(work / "radosgw", memstore_mib)
    except Exception as exc:  # noqa: BLE001 - the gap is reported
        for bench in benches:
            failed(bench, f"radosgw did not start: {exc}")
        return
    try:
        log(f"radosgw at {env.info['url']}")
        _guard([S3_BENCH], lambda: bench_s3(env, small, args.runs, args.size_mb))
        b = env.bucket
        _guard([RSS_BENCH.format("s3")], lambda: bench_rss(
            "s3", lambda n: f"s3://{b}/rss-ours-{n}",
            lambda n: run_child(["boto3", f"s3://{b}/rss-plain-{n}", str(big)])["peak_rss_mb"],
            env.empty, big, rss_runs, args.rss_size_mb, "boto3 upload_file (same TransferConfig)"))
    finally:
        env.stop()


def run_hdfs(args: argparse.Namespace, small: Path, big: Path, work: Path, rss_runs: int) -> None:
    benches = [HDFS_BENCH, RSS_BENCH.format("hdfs")]
    log("starting HDFS (MiniDFSCluster)")
    try:
        env = HdfsEnv(work / "hdfs")
    except Exception as exc:  # noqa: BLE001 - the gap is reported
        for bench in benches:
            failed(bench, f"HDFS did not start: {exc}")
        return
    try:
        log(f"HDFS at {env.info['url']}")
        _guard([HDFS_BENCH], lambda: bench_hdfs(env, small, args.runs, args.size_mb))

        def plain(n: int) -> float:
            env.client.makedirs(env.root)
            return run_child(["hdfs", f"{env.info['url']}#{env.root}/rss-plain-{n}", str(big)])["peak_rss_mb"]

        _guard([RSS_BENCH.format("hdfs")], lambda: bench_rss(
            "hdfs", lambda n: env.uri(f"{env.root}/rss-ours-{n}"), plain, env.empty, big, rss_runs,
            args.rss_size_mb, "hdfs InsecureClient.upload"))
    finally:
        env.stop()


if __name__ == "__main__":
    raise SystemExit(main())
