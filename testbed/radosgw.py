"""Real Ceph radosgw (mon + memstore osd + rgw, Debian packages) as a testbed service: S3 over HTTP, and over
HTTPS on a second port with a certificate of a testbed CA (``https_url``, ``ca_bundle`` in the ready line)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from testbed.service import Service, ServiceError


class RadosgwService(Service):
    """``memstore_bytes`` caps what the memstore OSD holds (in RAM, allocated as written): benchmarks that
    write more than the default 1 GiB ask for more."""

    name = "radosgw"

    def __init__(self, workdir: Path, port: int | None = None, *, memstore_bytes: int = 1 << 30):
        super().__init__(workdir, port)
        self.memstore_bytes = memstore_bytes

    def start(self) -> dict[str, Any]:
        from emulators.radosgw import RadosgwCluster, RadosgwError
        from testbed.certs import TestCa

        if self.port:
            raise ServiceError("radosgw picks its own free ports; --port is not supported")
        cert = TestCa(self.workdir / "tls", "radosgw").server("radosgw")  # HTTPS beside HTTP
        self.cluster = RadosgwCluster(self.workdir / "ceph", memstore_bytes=self.memstore_bytes,
                                      tls=(cert.cert, cert.key))
        try:
            self.cluster.start()
        except RadosgwError as exc:
            raise ServiceError(str(exc)) from exc
        self.info = {"service": self.name, "url": self.cluster.endpoint_url, "pid": self.cluster.pids.get("rgw"),
                     "https_url": self.cluster.https_url,
                     "ca_bundle": str(cert.ca_bundle), "registry_uri": "s3://BUCKET/registry", "access_key": self.cluster.access_key,
                     "secret_key": self.cluster.secret_key, "region": "us-east-1"}
        return self.info

    def stop(self) -> None:
        cluster = getattr(self, "cluster", None)
        if cluster is not None:
            cluster.stop()
            self.cluster = None
