"""Registry benchmark: publish throughput against plain tools, and peak RSS while publishing a big artifact.

    python bench/registry_bench.py [--size-mb 256] [--rss-size-mb 1024] [--runs 3] [--s3-endpoint URL]

Prints one JSON line per result. Without ``--s3-endpoint`` it starts its own Ceph radosgw (a real S3
server) or, when Ceph is not installed, moto; the ``server`` field says which. With ``--s3-endpoint`` the
credentials come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY.
Goals: S3 registry >= 0.9x boto3 ``upload_file`` (sha256 included); peak RSS < 200 MB for a 1 GiB publish.
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
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import boto3  # noqa: E402
from botocore.config import Config  # noqa: E402

from governance.registries import get_registry  # noqa: E402
from governance.staging.validate import validate_repo  # noqa: E402

MB = 1_000_000
MiB = 1 << 20
S3_GOAL = 0.9
RSS_GOAL_MB = 200


def emit(**fields) -> None:
    print(json.dumps(fields), flush=True)


def make_staged(root: Path, size_mb: int, name: str = "bench") -> Path:
    """A valid staged repo whose executable is ``size_mb`` MiB of random bytes (written in 8 MiB pieces)."""
    (root / "executable").mkdir(parents=True)
    (root / "metadata.txt").write_text(f"model.name={name}\nmodel.version=1\nmodel.type=sklearn\n"
                                       f"model.owner=bench\nmodel.owner.lob=bench\nmodel.description=benchmark\n")
    (root / "README.md").write_text("# benchmark model\n")
    piece = os.urandom(8 * MiB)
    with (root / "executable" / "model.bin").open("wb") as fh:
        for i in range(size_mb * MiB // len(piece)):
            fh.write(piece[:8] + i.to_bytes(8, "big") + piece[16:])  # no two pieces alike
        fh.write(os.urandom(size_mb * MiB % len(piece)))
    return root


def with_version(staged_dir: Path, version: str):
    """The same files as another model version (rewrites metadata.txt only)."""
    meta = staged_dir / "metadata.txt"
    meta.write_text("\n".join(f"model.version={version}" if line.startswith("model.version=") else line
                              for line in meta.read_text().splitlines()) + "\n")
    return validate_repo(staged_dir)


def timed(fn, *args) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


# -- servers ---------------------------------------------------------------------------------------------
class S3Target:
    def __init__(self, endpoint: str | None, memstore_mb: int):
        self.cluster = self.moto = None
        if endpoint:
            self.server, self.endpoint = "external", endpoint
            return
        from emulators.radosgw import RadosgwCluster, missing_binaries

        if not missing_binaries():
            self.cluster = RadosgwCluster(memstore_bytes=memstore_mb * MiB).start()
            self.server, self.endpoint = "radosgw", self.cluster.endpoint_url
            os.environ["AWS_ACCESS_KEY_ID"] = self.cluster.access_key
            os.environ["AWS_SECRET_ACCESS_KEY"] = self.cluster.secret_key
        else:
            from moto.server import ThreadedMotoServer

            from emulators.radosgw import free_port

            port = free_port()
            self.moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
            self.moto.start()
            self.server, self.endpoint = "moto", f"http://127.0.0.1:{port}"
            os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
            os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
        os.environ["AWS_ENDPOINT_URL"] = self.endpoint
        os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

    def client(self):
        return boto3.client("s3", endpoint_url=self.endpoint, config=Config(s3={"addressing_style": "path"}))

    def empty(self, bucket: str) -> None:
        s3 = self.client()
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
            if keys:
                s3.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})

    def stop(self) -> None:
        if self.cluster:
            self.cluster.stop()
        if self.moto:
            self.moto.stop()


# -- benchmarks ------------------------------------------------------------------------------------------
def bench_s3(target: S3Target, staged_dir: Path, size_mb: int, runs: int) -> None:
    bucket = f"bench-{uuid.uuid4().hex[:8]}"
    s3 = target.client()
    s3.create_bucket(Bucket=bucket)
    registry = get_registry(f"s3://{bucket}/models")
    total = sum(f.stat().st_size for f in staged_dir.rglob("*") if f.is_file())
    files = [p for p in staged_dir.rglob("*") if p.is_file()]
    s3.upload_file(str(files[0]), bucket, "warm-up")  # the first write creates radosgw's data pools

    def plain_upload(run: int) -> None:  # plain boto3 uploads every file of the same repo, as the registry does
        for p in files:
            s3.upload_file(str(p), bucket, f"plain/{run}/{p.relative_to(staged_dir)}")

    ours, plain = [], []
    for run in range(runs):
        staged = with_version(staged_dir, str(run + 1))
        steps = [(plain, plain_upload, run), (ours, registry.publish, staged)]
        for results, fn, arg in steps if run % 2 == 0 else steps[::-1]:  # alternate who goes first
            results.append(timed(fn, arg))
        target.empty(bucket)
    best_ours, best_plain = min(ours), min(plain)
    emit(bench="s3_publish_vs_boto3_upload_file", server=target.server, size_mb=size_mb, runs=runs,
         registry_mb_s=round(total / MB / best_ours, 1), boto3_mb_s=round(total / MB / best_plain, 1),
         ratio=round(best_plain / best_ours, 3), goal=S3_GOAL, ok=best_plain / best_ours >= S3_GOAL,
         note="registry includes streaming sha256 and the manifest write; best of runs")


def bench_file(staged_dir: Path, size_mb: int, runs: int, work: Path) -> None:
    total = sum(f.stat().st_size for f in staged_dir.rglob("*") if f.is_file())
    ours, cp, cp_sync = [], [], []

    def sh(command: str) -> None:
        subprocess.run(["sh", "-c", command], check=True, timeout=600)

    for run in range(runs):
        staged = with_version(staged_dir, str(run + 1))
        dest, cp_dest, cp_dest2 = work / f"file-registry-{run}", work / f"cp-{run}", work / f"cp-sync-{run}"
        ours.append(timed(get_registry(f"file://{dest}").publish, staged))
        cp.append(timed(sh, f'cp -r "{staged_dir}" "{cp_dest}"'))
        cp_sync.append(timed(sh, f'cp -r "{staged_dir}" "{cp_dest2}" && sync -f "{cp_dest2}"'))
        for d in (dest, cp_dest, cp_dest2):
            shutil.rmtree(d, ignore_errors=True)
    emit(bench="file_publish_vs_cp", size_mb=size_mb, runs=runs,
         registry_mb_s=round(total / MB / min(ours), 1), cp_mb_s=round(total / MB / min(cp), 1),
         cp_sync_mb_s=round(total / MB / min(cp_sync), 1), ratio=round(min(cp) / min(ours), 3),
         ratio_vs_cp_sync=round(min(cp_sync) / min(ours), 3),
         note="the file registry hashes and fsyncs every file; plain cp does neither")


def bench_rss(uri: str, staged_dir: Path, size_mb: int, backend: str, server: str) -> None:
    """Publish in a fresh child process and read its peak RSS (ru_maxrss) from the kernel."""
    out = subprocess.run([sys.executable, __file__, "--rss-child", uri, str(staged_dir)], capture_output=True,
                         text=True, timeout=1800, env=os.environ.copy())
    if out.returncode != 0:
        emit(bench="peak_rss_publish", backend=backend, server=server, size_mb=size_mb, ok=False,
             error=out.stderr.strip()[-500:])
        return
    child = json.loads(out.stdout.strip().splitlines()[-1])
    emit(bench="peak_rss_publish", backend=backend, server=server, size_mb=size_mb,
         peak_rss_mb=child["peak_rss_mb"], publish_s=child["publish_s"], goal_mb=RSS_GOAL_MB,
         ratio=round(child["peak_rss_mb"] / RSS_GOAL_MB, 3), ok=child["peak_rss_mb"] < RSS_GOAL_MB)


def rss_child(uri: str, staged_dir: str) -> None:
    staged = validate_repo(Path(staged_dir))
    seconds = timed(get_registry(uri).publish, staged)
    # VmHWM belongs to this process image; ru_maxrss would carry the parent's peak over fork+exec
    status = Path("/proc/self/status").read_text()
    peak_kb = int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:")))
    print(json.dumps({"peak_rss_mb": round(peak_kb / 1024, 1), "publish_s": round(seconds, 2)}))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=int, default=256, help="artifact size for the throughput runs (MiB)")
    parser.add_argument("--rss-size-mb", type=int, default=1024, help="artifact size for the peak-RSS runs (MiB)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--s3-endpoint", help="use this S3 endpoint instead of starting radosgw/moto")
    parser.add_argument("--skip-hdfs", action="store_true", help="no peak-RSS run over the WebHDFS emulator")
    parser.add_argument("--rss-child", nargs=2, metavar=("URI", "STAGED"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.rss_child:
        rss_child(*args.rss_child)
        return 0
    work = Path(tempfile.mkdtemp(prefix="modelgov-bench-"))
    target = None
    try:
        small = make_staged(work / "staged-small", args.size_mb)
        big = make_staged(work / "staged-big", args.rss_size_mb, name="bench-big")
        # radosgw frees deleted/overwritten data only after its GC delay: size memstore for every byte written
        memstore_mb = 2 * args.runs * args.size_mb + 2 * args.rss_size_mb + 1024
        target = S3Target(args.s3_endpoint, memstore_mb=memstore_mb)
        bench_s3(target, small, args.size_mb, args.runs)
        bench_file(small, args.size_mb, args.runs, work)
        bucket = f"bench-rss-{uuid.uuid4().hex[:8]}"
        target.client().create_bucket(Bucket=bucket)
        bench_rss(f"s3://{bucket}/models", big, args.rss_size_mb, "s3", target.server)
        target.empty(bucket)
        bench_rss(f"file://{work}/rss-file-registry", big, args.rss_size_mb, "file", "local")
        shutil.rmtree(work / "rss-file-registry", ignore_errors=True)
        if not args.skip_hdfs:
            from emulators.webhdfs import WebHdfsEmulator

            with WebHdfsEmulator(work / "hdfs") as emu:
                bench_rss(f"hdfs://127.0.0.1:{emu.port}/models", big, args.rss_size_mb, "hdfs", "webhdfs-emulator")
    finally:
        if target:
            target.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
