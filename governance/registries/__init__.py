"""Registries by URI scheme, MLflow-style: ``get_registry("s3://bucket/prefix")``.

Third parties add schemes through the ``modelgov.registries`` entry-point group.
"""

from __future__ import annotations

from governance.plugins import instantiate, schemes
from governance.registries.base import Manifest, Registry, RegistryVersion

_BUILTIN: dict[str, str] = {
    "file": "governance.registries.file:FileRegistry",
    "s3": "governance.registries.s3:S3Registry",
    "hdfs": "governance.registries.hdfs:HdfsRegistry",
    "webhdfs": "governance.registries.hdfs:HdfsRegistry",
    "swebhdfs": "governance.registries.hdfs:HdfsRegistry",
}


def registry_schemes() -> dict[str, str]:
    return schemes(_BUILTIN, "modelgov.registries")


def get_registry(uri: str) -> Registry:
    """The registry for ``uri``; an unknown scheme lists the schemes that exist; credentials are refused."""
    from governance.secrets import refuse_credentials

    refuse_credentials(uri, "registry")
    return instantiate(uri, _BUILTIN, "modelgov.registries", "registry")


__all__ = ["Manifest", "Registry", "RegistryVersion", "get_registry", "registry_schemes"]
