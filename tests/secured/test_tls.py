"""TLS with the company's CA: every client trusts the bundle named once (MODELGOV_CA_BUNDLE, REQUESTS_CA_BUNDLE
or tls.ca_bundle in modelgov.yaml), refuses a certificate from any other CA with the host and the setting
named, and turns verification off only when told, loudly, and never for production."""

from __future__ import annotations

from urllib.parse import urlsplit

from tests.secured.conftest import modelgov


def test_install_types_over_https_with_the_company_ca_bundle(atlas_https, company_ca):
    proc = modelgov("atlas", "install-types", "--atlas", atlas_https.url,
                    env={"MODELGOV_CA_BUNDLE": str(company_ca.bundle)})
    assert proc.returncode == 0, proc.stderr
    assert atlas_https.url.startswith("https://")


def test_requests_ca_bundle_and_the_config_file_are_read_too(atlas_https, company_ca, tmp_path):
    proc = modelgov("atlas", "install-types", "--atlas", atlas_https.url,
                    env={"REQUESTS_CA_BUNDLE": str(company_ca.bundle)})
    assert proc.returncode == 0, proc.stderr
    (tmp_path / "modelgov.yaml").write_text(f"tls:\n  ca_bundle: {company_ca.bundle}\n")
    proc = modelgov("atlas", "install-types", "--atlas", atlas_https.url, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr


def test_a_certificate_from_another_ca_is_refused_naming_host_and_setting(atlas_other_ca, company_ca):
    proc = modelgov("atlas", "install-types", "--atlas", atlas_other_ca.url,
                    env={"MODELGOV_CA_BUNDLE": str(company_ca.bundle)})
    assert proc.returncode != 0
    where = urlsplit(atlas_other_ca.url)
    assert f"the certificate of {where.hostname}:{where.port} is not trusted" in proc.stderr, proc.stderr
    assert f"{company_ca.bundle} (MODELGOV_CA_BUNDLE)" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr


def test_without_a_bundle_the_private_ca_is_not_trusted(atlas_https):
    proc = modelgov("atlas", "install-types", "--atlas", atlas_https.url)
    assert proc.returncode != 0
    assert "is not trusted" in proc.stderr and "the default trust store" in proc.stderr, proc.stderr
    assert "MODELGOV_CA_BUNDLE" in proc.stderr


def test_a_missing_bundle_file_is_a_config_error(atlas_https, tmp_path):
    proc = modelgov("atlas", "install-types", "--atlas", atlas_https.url,
                    env={"MODELGOV_CA_BUNDLE": str(tmp_path / "nope.pem")})
    assert proc.returncode != 0
    assert f"MODELGOV_CA_BUNDLE={tmp_path / 'nope.pem'}: no such CA bundle file" in proc.stderr, proc.stderr


def test_insecure_is_explicit_loud_and_never_silent(atlas_other_ca):
    old_switch = modelgov("atlas", "install-types", "--atlas", atlas_other_ca.url, env={"ATLAS_TLS_VERIFY": "false"})
    assert old_switch.returncode != 0 and "MODELGOV_TLS_INSECURE" in old_switch.stderr, old_switch.stderr
    proc = modelgov("atlas", "install-types", "--atlas", atlas_other_ca.url, env={"MODELGOV_TLS_INSECURE": "true"})
    assert proc.returncode == 0, proc.stderr
    assert "TLS CERTIFICATE VERIFICATION IS OFF" in proc.stderr


def test_insecure_is_refused_for_a_production_deploy(tmp_path, atlas_https):
    (tmp_path / "modelgov.yaml").write_text(
        "tls:\n  insecure: true\n"
        f"registries:\n  local: file://{tmp_path}/registry\n"
        "targets:\n  prod:\n    uri: mlserver://127.0.0.1:1?repository=/tmp/x\n    environment: production\n"
        "defaults:\n  registry: local\n  target: prod\n")
    proc = modelgov("deploy", str(tmp_path / "repo"), "--dry-run", "--atlas", atlas_https.url, cwd=tmp_path)
    assert proc.returncode != 0
    assert "refused for a production deploy" in proc.stderr, proc.stderr
    assert not (tmp_path / "registry").exists()


def test_doctor_names_the_certificate_of_each_https_service(atlas_https, atlas_other_ca, company_ca, tmp_path):
    """An https MLServer target (?tls=true) whose server has another CA's certificate: doctor says whose."""
    port = urlsplit(atlas_other_ca.url).port
    proc = modelgov("doctor", "--atlas", atlas_https.url, "--target",
                    f"mlserver://127.0.0.1:{port}?repository={tmp_path}&tls=true",
                    env={"MODELGOV_CA_BUNDLE": str(company_ca.bundle)})
    lines = proc.stdout.splitlines()
    assert any(line.startswith("[ok] atlas tls: ") and "issued by CN=company CA" in line for line in lines), lines
    target = [line for line in lines if line.startswith("[FAIL] target tls: ")]
    assert target and f"127.0.0.1:{port} presents CN=localhost,O=modelgov testbed, issued by CN=other CA" in target[0]
    assert "NOT TRUSTED (unable to get local issuer certificate)" in target[0], target
    assert any(line.startswith("[FAIL] target: ") and "is not trusted" in line for line in lines), lines
