"""Atlas entities for training data, one per exact data version when the version is known.

Atlas has no Iceberg type and its path types (fs_path, hdfs_path, aws_s3_v2_object) have no version
attribute, so a versioned entry becomes a ``modelgov_dataset`` (a DataSet of ours) whose qualifiedName is
the versioned URI (``iceberg://cat/db.tbl@5123@ns``): two builds trained on two snapshots of one table then
point at two entities in lineage, and ``location`` (the unversioned URI) finds every version of it.
Unversioned entries keep Atlas's own path conventions (``add_location``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlparse

from governance.staging.data_versions import DataVersion

if TYPE_CHECKING:
    from governance.deploy.record import DeploymentRecord



def versioned_dataset_attributes(version: DataVersion, namespace: str) -> dict:
    """Attributes of the ``modelgov_dataset`` for one ``DataVersion`` that has a version."""
    uri = version.versioned_uri
    path = urlparse(version.location).path.rstrip("/")
    base = path.rsplit("/", 1)[-1] or version.location
    return {"qualifiedName": f"{uri}@{namespace}", "name": f"{base}@{version.version}", "uri": uri,
            "location": version.location, "dataVersion": version.version, "dataVersionKind": version.kind}


def registered_data_versions(record: DeploymentRecord) -> dict[str, DataVersion]:
    """entry -> DataVersion as the registry version recorded them when it was published (the truth for that
    build, even if a local file changed since), else as this run's validation saw them."""
    stored = record.registered.manifest.data_versions
    if stored:
        return {v["entry"]: DataVersion(**v) for v in stored}
    return {v.entry: v for v in record.staged.data_versions}
