"""Our stand-ins as testbed services: the Atlas v2 emulator, the WebHDFS emulator, the classic MLeap API."""

from __future__ import annotations

import os
import ssl
from typing import Any

from testbed.service import Service, ServiceError, port_taken


class _InProcessStandIn(Service):
    """A stand-in served on threads of this process (its pid is ours)."""

    supports_tls = True

    def _check_port(self) -> None:
        if self.port and port_taken(self.port):
            raise ServiceError(f"port 127.0.0.1:{self.port} is taken")

    def _server_tls(self) -> ssl.SSLContext | None:
        """With ``tls``: a certificate from the testbed CA in ``workdir/tls`` (its bundle in the ready info)."""
        if not self.tls:
            return None
        from testbed.certs import TestCa

        cert = TestCa(self.workdir / "tls").server(self.name)
        self.info["ca_bundle"] = str(cert.ca_bundle)
        return cert.server_context()

    def stop(self) -> None:
        emulator = getattr(self, "emulator", None)
        if emulator is not None:
            emulator.stop()
            self.emulator = None


class AtlasEmulatorService(_InProcessStandIn):
    name = "atlas-emulator"

    def start(self) -> dict[str, Any]:
        from emulators.atlas import AtlasEmulator

        self._check_port()
        tls = self._server_tls()
        self.emulator = AtlasEmulator(port=self.port or 0, state_path=str(self.workdir / "atlas-state.json"),
                                      users={"admin": "admin"}, tls=tls).start()
        self.info.update({"service": self.name, "url": self.emulator.url, "pid": os.getpid(),
                          "username": "admin", "password": "admin"})
        return self.info


class WebHdfsEmulatorService(_InProcessStandIn):
    name = "webhdfs-emulator"

    def start(self) -> dict[str, Any]:
        from emulators.webhdfs import WebHdfsEmulator
        from emulators.webhdfs.namespace import SUPERUSER
        from testbed.hdfs import registry_user

        self._check_port()
        tls = self._server_tls()
        self.emulator = WebHdfsEmulator(self.workdir / "hdfs", "127.0.0.1", self.port or 0, tls=tls).start()
        # as on the real service: HDFS's root is the superuser's, /registry belongs to the registry user
        owner = registry_user()
        self.emulator.namespace.mkdirs(SUPERUSER, "/registry", "755")
        self.emulator.namespace.set_meta("/registry", owner=owner)
        scheme = "swebhdfs" if tls else "hdfs"
        self.info.update({"service": self.name, "url": self.emulator.url, "pid": os.getpid(),
                          "registry_uri": f"{scheme}://127.0.0.1:{self.emulator.port}/registry",
                          "datanode_port": self.emulator.datanode_port, "registry_user": owner})
        return self.info


class MleapClassicEmulatorService(_InProcessStandIn):
    """The single-model API of MLeap serving up to 0.12 (``PUT /model``), which the original framework used."""

    name = "mleap-classic-emulator"

    def start(self) -> dict[str, Any]:
        from emulators.mleap.server import MleapServingEmulator

        self._check_port()
        self.emulator = MleapServingEmulator(port=self.port or 0).start()
        bundles = self.workdir / "bundles"
        bundles.mkdir(exist_ok=True)
        self.info = {"service": self.name, "url": self.emulator.url, "pid": os.getpid(),
                     "target_uri": f"mleap://127.0.0.1:{self.emulator.port}?bundle_dir={bundles}"}
        return self.info
