"""Real Ceph radosgw (mon + memstore osd + rgw, Debian packages) as a testbed service."""

from __future__ import annotations

from typing import Any

from testbed.service import Service, ServiceError


class RadosgwService(Service):
    name = "radosgw"

    def start(self) -> dict[str, Any]:
        from emulators.radosgw import RadosgwCluster, RadosgwError

        if self.port:
            raise ServiceError("radosgw picks its own free ports; --port is not supported")
        self.cluster = RadosgwCluster(self.workdir / "ceph", memstore_bytes=1 << 30)
        try:
            self.cluster.start()
        except RadosgwError as exc:
            raise ServiceError(str(exc)) from exc
        self.info = {"service": self.name, "url": self.cluster.endpoint_url, "pid": self.cluster.pids.get("rgw"),
                     "registry_uri": "s3://BUCKET/registry", "access_key": self.cluster.access_key,
                     "secret_key": self.cluster.secret_key, "region": "us-east-1"}
        return self.info

    def stop(self) -> None:
        cluster = getattr(self, "cluster", None)
        if cluster is not None:
            cluster.stop()
            self.cluster = None
