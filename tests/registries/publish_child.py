"""A publisher process for kill -9 tests: publishes a staged folder and stalls mid-copy once a marker prints.

``python -m tests.registries.publish_child REGISTRY_URI STAGED_DIR``: after the second chunk of the largest
file has been read it prints ``MID-COPY`` and stalls, so the test can kill it at a known point of the copy.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from governance import checksums
from governance.registries import get_registry
from governance.staging.validate import validate_repo


def main() -> None:
    uri, staged_dir = sys.argv[1], Path(sys.argv[2])
    staged = validate_repo(staged_dir, commit="0123abcd")
    biggest = max(staged.files, key=lambda f: f.size)
    original_read = checksums.HashingReader.read
    seen = {"n": 0}

    def read(self, n=-1):
        data = original_read(self, n)
        if getattr(self._raw, "name", "").endswith(biggest.path):
            seen["n"] += 1
            if seen["n"] == 3:
                print("MID-COPY", flush=True)
                time.sleep(600)
        return data

    checksums.HashingReader.read = read
    get_registry(uri).publish(staged)
    print("DONE", flush=True)


if __name__ == "__main__":
    main()
