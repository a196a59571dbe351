"""modelgov's Atlas typedefs (JSON), extending Atlas's built-in ML types. ``load()`` returns the AtlasTypesDef."""

from __future__ import annotations

import json
from pathlib import Path

TYPEDEFS_FILE = Path(__file__).with_name("modelgov_typedefs.json")


def load() -> dict:
    return json.loads(TYPEDEFS_FILE.read_text(encoding="utf-8"))
