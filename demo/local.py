"""``make demo``: one staged model through the whole pipeline, for real, on embedded defaults.

Starts the Atlas emulator and a real MLServer on free loopback ports, runs ``modelgov deploy`` (the
Prefect flow, on Prefect's ephemeral API) with a ``file://`` registry under ``.modelgov/``, shows the
prediction, the registry copy and the Atlas entities with their lineage, runs ``modelgov search``, and
stops what it started, whatever happens.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import requests

from governance.atlas.client import AtlasClient, AtlasSettings
from governance.atlas.constants import iso_from_millis
from governance.cli import main as modelgov
from governance.targets.mlserver_process import LocalMLServer, free_port

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / ".modelgov" / "demo"
EXAMPLE = ROOT / "staging_template" / "example"


def banner(text: str) -> None:
    print(f"\n=== {text}", flush=True)


def start_atlas(port: int, state: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "emulators.atlas", "--host", "127.0.0.1", "--port", str(port),
                             "--state", str(state)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if requests.get(f"http://127.0.0.1:{port}/api/atlas/admin/status", timeout=1).ok:
                return proc
        except requests.RequestException:
            pass
        if proc.poll() is not None:
            raise RuntimeError(f"Atlas emulator exited: {proc.stdout.read() if proc.stdout else ''}")
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError("Atlas emulator did not start in 60s")


def stop(proc: subprocess.Popen | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


def show_atlas(client: AtlasClient, summary: dict) -> None:
    for role in ("project", "build", "deployment", "deploy_process"):
        ent = summary["atlas"][role]
        entity = client.get_entity(ent["guid"])["entity"]
        attrs = entity["attributes"]
        keep = {k: v for k, v in attrs.items() if v not in (None, [], {}, "") and k not in (
            "artifactChecksums", "exampleRequest", "exampleResponse", "inputs", "outputs")}
        print(f"{entity['typeName']} {entity['guid']}")
        for key in sorted(keep):
            value = iso_from_millis(keep[key]) if key.endswith("Time") else keep[key]
            print(f"    {key}: {json.dumps(value, ensure_ascii=False)}")
        tags = [c["typeName"] for c in entity.get("classifications") or []]
        if tags:
            print(f"    classifications: {', '.join(tags)}")
    lineage = client.lineage(summary["atlas"]["deployment"]["guid"], direction="INPUT", depth=0)
    names = {g: f"{h['typeName']}:{h['attributes'].get('qualifiedName')}" for g, h in lineage["guidEntityMap"].items()}
    print("lineage (data flow into the deployment):")
    for rel in lineage["relations"]:
        print(f"    {names.get(rel['fromEntityId'], rel['fromEntityId'])}  ->  {names.get(rel['toEntityId'], rel['toEntityId'])}")


def main() -> int:
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    mlserver_bin = os.environ.get("MODELGOV_MLSERVER", str(ROOT / ".venv-mlserver" / "bin" / "mlserver"))
    atlas_port = free_port()
    atlas_proc = None
    server = None
    try:
        banner(f"starting the Atlas emulator on 127.0.0.1:{atlas_port}")
        atlas_proc = start_atlas(atlas_port, WORK / "atlas-state.json")
        banner("starting MLServer (its own virtual environment)")
        server = LocalMLServer(WORK / "mlserver-models", executable=mlserver_bin, log_path=WORK / "mlserver.log")
        server.start()
        print(f"MLServer at {server.url} (log {server.log_path})")

        os.environ.setdefault("ATLAS_USERNAME", "admin")
        os.environ.setdefault("ATLAS_PASSWORD", "admin")
        atlas_url = f"http://127.0.0.1:{atlas_port}"
        registry = f"file://{WORK / 'registry'}"
        args = ["deploy", str(EXAMPLE), "--target", server.target_uri(), "--registry", registry,
                "--atlas", atlas_url, "--environment", "staging", "--json"]
        banner("modelgov " + " ".join(args))
        from contextlib import redirect_stdout
        from io import StringIO

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
        print(f"smoke prediction: {json.dumps([o['data'] for o in summary['prediction']])} "
              "(matches examples/response.json)")
        banner("registry copy (immutable, sha256 per file)")
        print(summary["registry_uri"])
        for artifact in summary["artifacts"]:
            print(f"    {artifact['sha256']}  {artifact['size']:>8}  {artifact['path']}")

        banner("asking the served model directly")
        request = json.loads((EXAMPLE / "examples" / "request.json").read_text())
        answer = requests.post(summary["endpoint"], json=request, timeout=30).json()
        print(f"POST {summary['endpoint']} -> model {answer['model_name']} v{answer['model_version']}, "
              f"outputs {json.dumps(answer['outputs'][0]['data'])}")

        banner("Atlas entities")
        show_atlas(AtlasClient(AtlasSettings(url=atlas_url, username="admin", password="admin")), summary)

        banner(f"modelgov search --name iris-classifier --atlas {atlas_url}")
        rc = modelgov(["search", "--name", "iris-classifier", "--atlas", atlas_url])
        if rc != 0:
            return rc
        banner("demo finished: stopping MLServer and the Atlas emulator")
        return 0
    finally:
        if server is not None:
            server.stop()
        stop(atlas_proc)


if __name__ == "__main__":
    sys.exit(main())
