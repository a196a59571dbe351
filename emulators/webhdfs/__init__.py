"""A WebHDFS namenode/datanode emulator for tests and demos (no Hadoop runs on this machine)."""

from emulators.webhdfs.namespace import Namespace, RemoteError
from emulators.webhdfs.server import WebHdfsEmulator

__all__ = ["Namespace", "RemoteError", "WebHdfsEmulator"]
