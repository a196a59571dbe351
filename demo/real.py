"""``make demo-real``: the demo's pipeline on real services: a real HDFS registry (Hadoop's MiniDFSCluster),
a real MLServer, then the same version bound to a Spark batch job scoring a table on that HDFS (PySpark), and
the Atlas service named by ``MODELGOV_DEMO_ATLAS``: by default ``atlas``, a real Apache
Atlas (``python -m testbed atlas``: 2-7 minutes to start, about 1 GB of memory); ``atlas-emulator`` for a
quick run.

Every service starts through ``testbed`` as ``python -m testbed SERVICE`` would start it, and is stopped
whatever happens. The first run fetches Hadoop's jars with Maven (about 105 MB, once).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from contextlib import ExitStack, redirect_stdout
from io import StringIO
from pathlib import Path

import requests

from demo.local import EXAMPLE, banner, show_atlas
from governance.atlas.client import AtlasClient, AtlasSettings
from governance.cli import main as modelgov
from governance.registries import get_registry
from testbed.service import Service, ServiceError, service_class

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / ".modelgov" / "demo-real"


def start(stack: ExitStack, name: str) -> dict:
    banner(f"starting {name} (python -m testbed {name})")
    service: Service = service_class(name)(WORK / name)
    (WORK / name).mkdir(parents=True, exist_ok=True)
    stack.callback(service.stop)
    info = service.start()
    print(json.dumps(info))
    return info


def main() -> int:
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    atlas_service = os.environ.get("MODELGOV_DEMO_ATLAS", "atlas")
    with ExitStack() as stack:
        try:
            atlas = start(stack, atlas_service)
            hdfs = start(stack, "hdfs")
            mlserver = start(stack, "mlserver")
        except ServiceError as exc:
            print(f"demo-real: a service could not start: {exc}", file=sys.stderr)
            return 1
        user, password = atlas.get("username", "admin"), atlas.get("password", "admin")
        os.environ.setdefault("ATLAS_USERNAME", user)
        os.environ.setdefault("ATLAS_PASSWORD", password)
        args = ["deploy", str(EXAMPLE), "--target", mlserver["target_uri"], "--registry", hdfs["registry_uri"],
                "--atlas", atlas["url"], "--environment", "staging", "--json"]
        banner("modelgov " + " ".join(args))
        captured = StringIO()
        with redirect_stdout(captured):
            rc = modelgov(args)
        if rc != 0:
            print(captured.getvalue())
            print(f"modelgov deploy failed with exit code {rc}", file=sys.stderr)
            return rc
        summary = json.loads(captured.getvalue())
        print(f"status: {summary['status']}")
        print(f"endpoint: {summary['endpoint']}")
        print(f"smoke prediction: {json.dumps([o['data'] for o in summary['prediction']])}")

        banner(f"registry copy on HDFS ({hdfs['url']}, NameNode RPC port {hdfs['rpc_port']})")
        print(summary["registry_uri"])
        registry = get_registry(hdfs["registry_uri"])
        meta = summary["model"]
        banner(f"modelgov registry verify {hdfs['registry_uri']} {meta['name']} {meta['version']}")
        if modelgov(["registry", "verify", hdfs["registry_uri"], meta["name"], meta["version"]]) != 0:
            return 1
        listing = requests.get(f"{hdfs['url']}/webhdfs/v1{registry.root}/{meta['name']}/{meta['version']}",
                               params={"op": "LISTSTATUS", "user.name": hdfs["registry_user"]}, timeout=30).json()
        for status in listing["FileStatuses"]["FileStatus"]:
            print(f"    {status['type'][0].lower()}{status['permission']} {status['owner']:>10} "
                  f"{status['length']:>8}  {status['pathSuffix']}")

        banner(f"Atlas entities ({atlas_service})")
        show_atlas(AtlasClient(AtlasSettings(url=atlas["url"], username=user, password=password)), summary)
        if score_on_spark(hdfs, atlas, meta) != 0:
            return 1
        banner("demo-real finished: stopping every service it started")
    return 0


def score_on_spark(hdfs: dict, atlas: dict, meta: dict) -> int:
    """The same version bound to a Spark scoring job (PySpark, local), scoring a table on the real HDFS."""
    from hdfs import InsecureClient

    admin = InsecureClient(hdfs["url"], user=hdfs["superuser"], timeout=(5, 120))
    admin.makedirs("/scoring", permission="777")
    admin.write("/scoring/iris.csv", data=(EXAMPLE / "data" / "iris.csv").read_bytes(), overwrite=True)
    base = f"hdfs://127.0.0.1:{hdfs['rpc_port']}/scoring"
    target = (f"spark://local?cores=2&input={base}/iris.csv&output={base}/scored/{{run_id}}"
              f"&bindings={WORK / 'spark-bindings'}")
    args = ["deploy", str(EXAMPLE), "--target", target, "--registry", hdfs["registry_uri"], "--atlas", atlas["url"],
            "--environment", "staging"]
    banner("the same version as a Spark batch job: modelgov " + " ".join(args))
    if modelgov(args) != 0:
        return 1
    banner(f"modelgov score --model {meta['name']} --target spark://local... (input and output on HDFS)")
    captured = StringIO()
    with redirect_stdout(captured):
        rc = modelgov(["score", "--model", meta["name"], "--target", target, "--atlas", atlas["url"], "--json"])
    if rc != 0:
        print(captured.getvalue())
        return rc
    run = json.loads(captured.getvalue())
    print(f"scored {run['rowsOut']} rows of {run['input']} (version {run['inputVersion']}) with {run['model']} "
          f"{run['version']} into {run['output']}; Atlas scoring run {run['atlasGuid']}")
    for name in sorted(admin.list(run["output"].split(str(hdfs["rpc_port"]), 1)[1]))[:3]:
        print(f"    {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
