"""A real MLServer (from the serving venv, ``make serving-env``) serving a model repository in the workdir."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from testbed.service import Service, ServiceError, port_taken

ROOT = Path(__file__).resolve().parent.parent


def mlserver_executable() -> Path:
    return Path(os.environ.get("MODELGOV_MLSERVER", ROOT / ".venv-mlserver" / "bin" / "mlserver"))


class MLServerService(Service):
    name = "mlserver"

    def start(self) -> dict[str, Any]:
        from governance.errors import TargetError
        from governance.targets.mlserver_process import LocalMLServer

        if self.port and port_taken(self.port):
            raise ServiceError(f"port 127.0.0.1:{self.port} is taken")
        self.server = LocalMLServer(self.workdir / "models", executable=mlserver_executable(), http_port=self.port,
                                    log_path=self.workdir / "mlserver.log")
        try:
            self.server.start()
        except TargetError as exc:
            raise ServiceError(str(exc)) from exc
        self.info = {"service": self.name, "url": self.server.url, "pid": self.server._proc.pid,
                     "target_uri": self.server.target_uri()}
        return self.info

    def stop(self) -> None:
        server = getattr(self, "server", None)
        if server is not None:
            server.stop()
            self.server = None
