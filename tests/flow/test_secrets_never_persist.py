"""Plant a distinct secret in every input channel, run the real `modelgov deploy`, and find none of them in
anything stored or printed: stdout, stderr, Prefect's database, the registry and Atlas."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from emulators.atlas import AtlasEmulator
from tests.conftest import ROOT, write_metadata
from tests.service_fixtures import unique_ids

pytestmark = pytest.mark.slow

SECRETS = {
    "source_user_token": "ghp-SOURCEUSERTOKEN-4a1f",
    "source_query_token": "SOURCEQUERYTOKEN-77b2",
    "registry_signature": "REGISTRYSIGNATURE-19cd",
    "target_token": "TARGETQUERYTOKEN-5e0a",
    "atlas_url_password": "ATLASURLPASSWORD-c3d4",
    "atlas_password": "ATLASENVPASSWORD-0f9e",
    "atlas_token": "ATLASENVTOKEN-a8b7",
    "aws_secret": "AWSSECRETACCESSKEY-6d5c",
    "aws_session": "AWSSESSIONTOKEN-2b3a",
    "signing_key_password": "SIGNINGKEYPASSWORD-8e1d",
}


def _encrypted_signing_key(folder: Path) -> tuple[Path, str]:
    """An ECDSA key encrypted with the planted password; returns it and a line of its PEM (also a secret)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(SECRETS["signing_key_password"].encode()))
    path = folder / "signing.key"
    path.write_bytes(pem)
    return path, pem.decode().splitlines()[2]


def _modelgov(args: list[str], env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "governance", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=600, env=env)


def test_planted_secrets_are_found_nowhere(tmp_path: Path, example_repo: Path, mlserver, moto_s3_server):
    write_metadata(example_repo, model_name="secret-scan")
    bucket = f"secrets-{next(unique_ids)}"
    moto_s3_server.client().create_bucket(Bucket=bucket)
    prefect_home = tmp_path / "prefect-home"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_API_URL", "ATLAS_", "AWS_"))}
    env.update({
        "PREFECT_HOME": str(prefect_home), "PYTHONPATH": str(ROOT),
        "ATLAS_USERNAME": "deployer", "ATLAS_PASSWORD": SECRETS["atlas_password"],
        "ATLAS_TOKEN": SECRETS["atlas_token"],
        "AWS_ENDPOINT_URL": moto_s3_server.endpoint_url, "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "scan-access-key", "AWS_SECRET_ACCESS_KEY": SECRETS["aws_secret"],
        "AWS_SESSION_TOKEN": SECRETS["aws_session"],
    })
    signing_key, key_line = _encrypted_signing_key(tmp_path)
    env.update({"MODELGOV_SIGNING_KEY": str(signing_key), "MODELGOV_SIGNING_KEY_PASSWORD": SECRETS["signing_key_password"]})
    secrets = {**SECRETS, "signing_key_material": key_line}
    state = tmp_path / "atlas-state.json"
    with AtlasEmulator(host="127.0.0.1", port=0, state_path=str(state),
                       users={"deployer": SECRETS["atlas_password"]}, tokens=[SECRETS["atlas_token"]]) as atlas:
        target, registry = mlserver.target_uri(), f"s3://{bucket}/models"
        refused_runs = [
            ["deploy", f"git+https://{SECRETS['source_user_token']}@git.example/org/m.git@v1"],
            ["deploy", f"https://files.example/m.tar.gz?token={SECRETS['source_query_token']}"],
            ["deploy", str(example_repo), "--registry", f"{registry}?X-Amz-Signature={SECRETS['registry_signature']}"],
            ["deploy", str(example_repo), "--target", f"{target}&token={SECRETS['target_token']}"],
            ["deploy", str(example_repo), "--atlas",
             atlas.url.replace("://", f"://deployer:{SECRETS['atlas_url_password']}@")],
        ]
        outputs = []
        for args in refused_runs:
            full = [*args, *(["--registry", registry] if "--registry" not in args else []),
                    *(["--target", target] if "--target" not in args else []),
                    *(["--atlas", atlas.url] if "--atlas" not in args else [])]
            proc = _modelgov(full, env)
            assert proc.returncode == 2, (args, proc.stdout, proc.stderr)
            assert "credential" in proc.stderr and "Instead:" in proc.stderr, proc.stderr
            outputs += [proc.stdout, proc.stderr]
        assert not (prefect_home / "prefect.db").exists()  # refused before any flow run existed

        ok = _modelgov(["deploy", str(example_repo), "--target", target, "--registry", registry,
                        "--atlas", atlas.url, "--json"], env)
        assert ok.returncode == 0, ok.stderr
        assert json.loads(ok.stdout)["status"] == "deployed"
        outputs += [ok.stdout, ok.stderr]
        found = _modelgov(["search", "--name", "secret-scan", "--atlas", atlas.url], env)
        assert found.returncode == 0 and "secret-scan" in found.stdout, found.stderr
        outputs += [found.stdout, found.stderr]
        atlas_state = json.dumps(atlas.core.store.to_state(), default=str)

    stored = {"stdout/stderr": "\n".join(outputs), "atlas": atlas_state + (state.read_text() if state.exists() else "")}
    db_files = sorted(prefect_home.glob("prefect.db*"))
    assert db_files, "the run should have used Prefect's database under PREFECT_HOME"
    stored["prefect database"] = "".join(f.read_bytes().decode("latin-1") for f in db_files)
    s3 = moto_s3_server.client()
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert any(k.endswith("MANIFEST.json") for k in keys) and any(k.endswith("/model.sig") for k in keys)  # signed
    stored["registry"] = "".join(k + s3.get_object(Bucket=bucket, Key=k)["Body"].read().decode("latin-1")
                                 for k in keys)
    assert "secret-scan" in stored["prefect database"]  # the scan reads the real thing
    leaks = [(channel, where) for channel, secret in secrets.items() for where, text in stored.items()
             if secret in text]
    assert leaks == []
