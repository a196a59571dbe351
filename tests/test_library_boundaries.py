"""governance/ is the library: importing any of its modules must not pull in Prefect."""

import pkgutil
import subprocess
import sys

import governance
from tests.conftest import ROOT


def test_no_governance_module_imports_prefect():
    modules = [m.name for m in pkgutil.walk_packages(governance.__path__, "governance.")
               if m.name not in ("governance.__main__",)]
    code = ("import sys, importlib\n"
            f"for name in {modules!r}:\n"
            "    importlib.import_module(name)\n"
            "print('prefect' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
    assert len(modules) > 20
