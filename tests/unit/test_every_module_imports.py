"""Every module of the product's packages imports, in a fresh interpreter.

Some modules are only imported by one slow test or one benchmark (``bench.predict``,
``bench.persist``); a name moved out of a module they import from would otherwise surface
only there, late. Each package is walked in its own interpreter so one package's imports
cannot hide another's missing dependency."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

WALK = """
import importlib, pkgutil, sys
package = importlib.import_module(sys.argv[1])
PROGRAMS = {"bench.coldstart_probe"}  # scripts run in a process of their own, like __main__
failed = []
for module in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
    if module.name.endswith(".__main__") or module.name in PROGRAMS:
        continue
    try:
        importlib.import_module(module.name)
    except Exception as error:
        failed.append(f"{module.name}: {type(error).__name__}: {error}")
print("\\n".join(failed))
sys.exit(1 if failed else 0)
"""


@pytest.mark.parametrize("package", ["streamflow", "streamflow_local", "bench"])
def test_every_module_of_the_package_imports(package):
    result = subprocess.run([sys.executable, "-c", WALK, package], capture_output=True, text=True,
                            cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr[-2000:]
