"""Spark ML ``PipelineModel``s, scored natively: a staged ``executable/*.zip`` of a saved pipeline folder.

The zip is the registry version's (sha256-checked as the other executables are); every use extracts it afresh
into a private folder (plain relative paths only, no links, bounded in size and count), loads it with
``PipelineModel.load`` and removes the folder once the job is done, so what scores is always the checked bytes.
"""

from __future__ import annotations

import contextlib
import io
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

from governance.errors import TargetError
from governance.paths import path_problem

MAX_EXTRACTED = 4 * 1024**3
MAX_MEMBERS = 100_000
PIPELINE_CLASS = "org.apache.spark.ml.PipelineModel"


def is_pipeline_zip(data: bytes) -> bool:
    """Whether ``data`` is a zip of a saved PipelineModel (its ``metadata/part-*`` names the class)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            for name in zf.namelist():
                top = name.split("/", 1)[-1] if not name.startswith("metadata/") else name
                if top.startswith("metadata/part-") and PIPELINE_CLASS.encode() in zf.read(name)[:4096]:
                    return True
    except (zipfile.BadZipFile, OSError, KeyError):
        return False
    return False


@contextlib.contextmanager
def extracted(data: bytes, parent: Path) -> Iterator[Path]:
    """The pipeline folder of ``data`` extracted under ``parent``, removed afterwards."""
    parent.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=".pipeline-", dir=parent))
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            members = zf.infolist()
            if len(members) > MAX_MEMBERS or sum(m.file_size for m in members) > MAX_EXTRACTED:
                raise TargetError(f"the pipeline zip expands to more than {MAX_MEMBERS} files or "
                                  f"{MAX_EXTRACTED >> 30} GiB; refusing to extract it")
            for member in members:
                name = member.filename.rstrip("/")
                problem = path_problem(name)
                if problem or (member.external_attr >> 16) & 0o170000 == 0o120000:
                    raise TargetError(f"the pipeline zip holds {member.filename!r}, which "
                                      f"{problem or 'is a symbolic link'}; refusing to extract it")
                target = folder / name
                if member.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(member) as src, target.open("wb") as out:
                    shutil.copyfileobj(src, out)
        roots = [p for p in folder.iterdir() if p.is_dir() and (p / "metadata").is_dir()]
        yield folder if (folder / "metadata").is_dir() else roots[0] if len(roots) == 1 else folder
    except zipfile.BadZipFile as exc:
        raise TargetError(f"the pipeline zip cannot be read: {exc}") from exc
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def load_pipeline(folder: Path):  # -> pyspark.ml.PipelineModel
    from pyspark.ml import PipelineModel

    return PipelineModel.load(folder.as_uri())


def input_columns(pipeline) -> list[str]:
    """The columns the pipeline's first stage reads (a VectorAssembler's inputCols), for the smoke example."""
    first = pipeline.stages[0] if pipeline.stages else None
    getter = getattr(first, "getInputCols", None)
    return list(getter()) if callable(getter) else []


def pipeline_scored(pipeline, frame):  # -> DataFrame: the input columns and the pipeline's prediction
    from pyspark.sql.functions import col

    return pipeline.transform(frame).select(*[col(f"`{c}`") for c in frame.columns], col("prediction"))


@contextlib.contextmanager
def scored(spark, frame, model_bytes: bytes, framework: str, workdir: Path) -> Iterator:
    """``frame`` scored by the bound model, whatever its kind, for the length of the block (a Spark ML pipeline
    stays extracted until the job that uses the frame is done)."""
    if framework != "sparkml":
        from governance.spark.scoring import score_frame

        yield score_frame(spark, frame, model_bytes, framework)
        return
    with extracted(model_bytes, workdir) as folder:
        yield pipeline_scored(load_pipeline(folder), frame)


@contextlib.contextmanager
def feature_names(model_bytes: bytes, framework: str, workdir: Path) -> Iterator[list[str] | None]:
    """The bound model's input column names (to name a smoke example's columns), where it declares them."""
    if framework != "sparkml":
        from governance.spark.scoring import load_model, model_feature_names

        yield model_feature_names(load_model(model_bytes, framework))
        return
    with extracted(model_bytes, workdir) as folder:
        yield input_columns(load_pipeline(folder))
