"""Local services for tests, benchmarks and the demo, started one way: ``python -m testbed SERVICE``.

Each service is a ``testbed.service.Service`` subclass registered in ``SERVICES`` (name -> "module:Class",
imported only when asked for, so a Java service costs nothing to a test that does not use it).
The pytest fixtures start services through the same classes, so a test and a person start them alike.
"""

from __future__ import annotations

SERVICES: dict[str, str] = {
    "atlas-emulator": "testbed.stand_ins:AtlasEmulatorService",
    "webhdfs-emulator": "testbed.stand_ins:WebHdfsEmulatorService",
    "mleap-classic-emulator": "testbed.stand_ins:MleapClassicEmulatorService",
    "radosgw": "testbed.radosgw:RadosgwService",
    "mlserver": "testbed.mlserver:MLServerService",
    "atlas": "testbed.atlas:AtlasService",
    "mlflow": "testbed.mlflow:MLflowService",
    "prefect-server": "testbed.prefect_server:PrefectServerService",
    "hdfs": "testbed.hdfs:HdfsService",
    "spark": "testbed.spark:SparkService",
    "kdc": "testbed.kdc:KdcService",
}
