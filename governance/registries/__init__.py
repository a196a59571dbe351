"""Registries by URI scheme, MLflow-style: ``get_registry("s3://bucket/prefix")``.

Third parties add schemes through the ``modelgov.registries`` entry-point group.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from importlib.metadata import entry_points
from urllib.parse import urlparse

from governance.errors import ConfigError
from governance.registries.base import Manifest, Registry, RegistryVersion

_BUILTIN: dict[str, str] = {
    "file": "governance.registries.file:FileRegistry",
    "s3": "governance.registries.s3:S3Registry",
    "hdfs": "governance.registries.hdfs:HdfsRegistry",
    "webhdfs": "governance.registries.hdfs:HdfsRegistry",
}


def _load(ref: str) -> Callable[[str], Registry]:
    module, _, attr = ref.partition(":")
    return getattr(import_module(module), attr)


def registry_schemes() -> dict[str, str]:
    schemes = dict(_BUILTIN)
    for ep in entry_points(group="modelgov.registries"):
        schemes[ep.name] = ep.value
    return schemes


def get_registry(uri: str) -> Registry:
    """The registry for ``uri``; an unknown scheme lists the schemes that exist."""
    scheme = urlparse(uri).scheme
    schemes = registry_schemes()
    if scheme not in schemes:
        raise ConfigError(f"unknown registry scheme {scheme!r} in {uri!r}; known: {', '.join(sorted(schemes))}")
    return _load(schemes[scheme])(uri)


__all__ = ["Manifest", "Registry", "RegistryVersion", "get_registry", "registry_schemes"]
