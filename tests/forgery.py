"""What someone who can write a registry does: replace a version's executable and rewrite its manifest to match,
so that the checksums agree again (``registry verify`` passes) and only the record or a signature can tell."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path


def forge_executable(folder: Path, data: bytes, *, owner: str | None = None) -> None:
    """In the file-registry version ``folder``: the executable becomes ``data``, its manifest entry gets the new
    sha256 and size, and the manifest's owner becomes ``owner`` when given."""
    manifest_path = folder / "MANIFEST.json"
    manifest = json.loads(manifest_path.read_text())
    (folder / manifest["executable"]).write_bytes(data)
    for entry in manifest["files"]:
        if entry["path"] == manifest["executable"]:
            entry.update(sha256=hashlib.sha256(data).hexdigest(), size=len(data))
    if owner is not None:
        manifest["metadata"]["owner"] = owner
    manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
