"""How much a staged repo may bring in, and which local files validation may read.

An archive is expanded on the deploy host and an example is copied into the manifest and into one Atlas
attribute, so both are bounded; a ``file://`` training-data entry is hashed on the deploy host, so only
files under the staged repo or a configured data root are read. Defaults fit real models:

    limits:                          # modelgov.yaml (each also an environment variable, which wins)
      max_extracted_bytes: 20GiB     # MODELGOV_MAX_EXTRACTED_BYTES: total size an archive expands to
      max_archive_files: 100000      # MODELGOV_MAX_ARCHIVE_FILES: entries (files and folders) in an archive
      max_compression_ratio: 200     # MODELGOV_MAX_COMPRESSION_RATIO: expanded size / archive size
      max_example_bytes: 1MiB        # MODELGOV_MAX_EXAMPLE_BYTES: examples/request.json, response.json
    data_roots: [/mnt/datasets]      # MODELGOV_DATA_ROOTS (``:``-separated): where local training data lives
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, fields, replace
from pathlib import Path

from governance.config import DEFAULT_FILE, Config, load_config
from governance.errors import ConfigError

KiB, MiB, GiB = 1024, 1024**2, 1024**3
UNITS = {"": 1, "b": 1, "kb": 1000, "mb": 1000**2, "gb": 1000**3, "tb": 1000**4,
         "kib": KiB, "mib": MiB, "gib": GiB, "tib": 1024**4}
SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*", re.IGNORECASE)
ENV = {"max_extracted_bytes": "MODELGOV_MAX_EXTRACTED_BYTES", "max_archive_files": "MODELGOV_MAX_ARCHIVE_FILES",
       "max_compression_ratio": "MODELGOV_MAX_COMPRESSION_RATIO", "max_example_bytes": "MODELGOV_MAX_EXAMPLE_BYTES"}
DATA_ROOTS_ENV = "MODELGOV_DATA_ROOTS"
# the ratio is only judged once this much has been expanded: a few KiB of text compress far beyond 200x
# without being a bomb, and a bomb cannot do harm below this size
RATIO_GRACE_BYTES = 1 * MiB


@dataclass(frozen=True)
class IntakeLimits:
    """The bounds of one intake; ``load`` reads them from the environment and modelgov.yaml."""

    max_extracted_bytes: int = 20 * GiB
    max_archive_files: int = 100_000
    max_compression_ratio: float = 200.0
    max_example_bytes: int = 1 * MiB
    data_roots: tuple[str, ...] = ()

    @classmethod
    def load(cls, config: Config | str | Path | None = None) -> IntakeLimits:
        """Environment variables win, then ``limits:``/``data_roots:`` of the config (the one given, else
        $MODELGOV_CONFIG or ./modelgov.yaml), then the defaults. A bad value is a ConfigError naming it."""
        cfg = config if isinstance(config, Config) else load_config(config)
        where = str(cfg.path or DEFAULT_FILE)
        limits = cls()
        for key, value in (cfg.limits or {}).items():
            if key not in ENV:
                raise ConfigError(f"{where}: limits.{key} is not a limit (known: {', '.join(sorted(ENV))})")
            limits = replace(limits, **{key: _parse(key, value, f"{where}: limits.{key}")})
        for key, var in ENV.items():
            if os.environ.get(var, "").strip():
                limits = replace(limits, **{key: _parse(key, os.environ[var], var)})
        roots = list(cfg.data_roots)
        if os.environ.get(DATA_ROOTS_ENV, "").strip():
            roots = [r for r in os.environ[DATA_ROOTS_ENV].split(os.pathsep) if r.strip()]
        for root in roots:
            if not Path(root).expanduser().is_absolute():
                raise ConfigError(f"data root {root!r} ({DATA_ROOTS_ENV} or data_roots in {where}) must be an "
                                  "absolute folder")
        return replace(limits, data_roots=tuple(str(Path(r).expanduser()) for r in roots))


def _parse(key: str, value: object, where: str) -> int | float:
    kind = next(f.type for f in fields(IntakeLimits) if f.name == key)
    text = str(value)
    match = SIZE.fullmatch(text)
    unit = match.group(2).lower() if match else ""
    if not match or unit not in UNITS or (unit and not key.endswith("_bytes")):
        hint = "a size such as 20GiB, 500MB or 1048576" if key.endswith("_bytes") else "a positive number"
        raise ConfigError(f"{where} = {text!r}: expected {hint}")
    number = float(match.group(1)) * UNITS[unit]
    if number <= 0:
        raise ConfigError(f"{where} = {text!r}: must be greater than 0")
    return number if kind in ("float", float) else int(number)


def describe_bytes(n: float) -> str:
    """``20 GiB``, ``1 MiB``, ``512 bytes``: how a limit reads in a message."""
    for unit, size in (("GiB", GiB), ("MiB", MiB), ("KiB", KiB)):
        if n >= size and n % size == 0:
            return f"{int(n // size)} {unit}"
    return f"{int(n)} bytes"
