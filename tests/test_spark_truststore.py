"""The CA bundle as the JDK's trust store (governance.spark.truststore): the JDK's own keytool reads what it writes,
every certificate of the bundle is a trusted entry, and the integrity digest is the JDK's (a wrong password is
refused as tampering)."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from governance.errors import ConfigError
from governance.spark.truststore import java_truststore
from testbed.certs import TestCa


def keytool_list(store, password="changeit") -> subprocess.CompletedProcess:
    keytool = shutil.which("keytool")
    assert keytool, "the JDK's keytool is missing: make java-tools"
    return subprocess.run([keytool, "-list", "-keystore", str(store), "-storepass", password], capture_output=True,
                          text=True, timeout=60)


def test_every_certificate_of_the_bundle_is_a_trusted_entry_the_jdk_reads(tmp_path, monkeypatch):
    monkeypatch.setenv("MODELGOV_STATE_DIR", str(tmp_path / "state"))
    company, other = TestCa(tmp_path / "a", "company"), TestCa(tmp_path / "b", "other")
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(company.bundle.read_bytes() + b"\n" + other.bundle.read_bytes())
    store = java_truststore(bundle)
    listed = keytool_list(store)
    assert listed.returncode == 0, listed.stderr
    assert "Keystore type: JKS" in listed.stdout and listed.stdout.count("trustedCertEntry") == 2
    assert java_truststore(bundle) == store  # the same bundle: the same store, written once
    assert keytool_list(store, "not-the-password").returncode != 0  # the JDK checks the format's digest


def test_a_bundle_without_certificates_is_a_config_error_naming_it(tmp_path, monkeypatch):
    monkeypatch.setenv("MODELGOV_STATE_DIR", str(tmp_path / "state"))
    bundle = tmp_path / "empty.pem"
    bundle.write_text("not a certificate\n")
    with pytest.raises(ConfigError, match=f"CA bundle {bundle}: no PEM certificate"):
        java_truststore(bundle)
