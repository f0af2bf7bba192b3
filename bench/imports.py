"""Which third-party distributions each function really imports, measured on a run.

A stack deployed with ``STREAMFLOW_TRACE_IMPORTS=1`` runs every worker with
``PYTHONPROFILEIMPORTTIME=1``, so each function's log lists every module its workers
imported (at init and while handling events). This sums them up per function: top-level
modules → the distributions of this virtual environment that provide them, and whether
the function's package (its deps layer, or its image's requirements) installs each one.

    STREAMFLOW_TRACE_IMPORTS=1 .venv/bin/python -m pytest tests/integration --basetemp /tmp/sf-trace
    .venv/bin/python -m bench.imports /tmp/sf-trace/stack0

The package split in template.yaml (README "Package size") was decided from this table.
"""

from __future__ import annotations

import json
import re
import sys
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

from streamflow_local.config import PROJECT_ROOT

IMPORT_LINE = re.compile(r"^import time:\s+\d+ \|\s+\d+ \|\s*(\S+)")
# Imported when present, not needed: pandas probes pyarrow; a distribution's entry points.
OWN = {"streamflow", "streamflow_local", "app"}


@cache
def _module_distributions() -> dict[str, tuple[str, ...]]:
    return {module: tuple(sorted(set(names))) for module, names in metadata.packages_distributions().items()}


def imported_modules(log: Path) -> set[str]:
    """Top-level module names in a worker log's ``-X importtime`` lines."""
    modules = set()
    with open(log, errors="replace") as handle:
        for line in handle:
            match = IMPORT_LINE.match(line)
            if match:
                modules.add(match.group(1).split(".")[0])
    return modules


def distributions_of(modules: set[str]) -> list[str]:
    found = set()
    for module in modules - OWN:
        if module in sys.stdlib_module_names or module.startswith("_"):
            continue
        found.update(_module_distributions().get(module, ()))
    return sorted(found - {"streamflow"}, key=str.lower)


def imports_by_function(state_dir: Path) -> dict[str, Any]:
    """``{function name: {"distributions": [...], "modules": n}}`` from a traced stack's logs."""
    description = json.loads((state_dir / "stack.json").read_text())
    out: dict[str, Any] = {}
    for logical, info in description["functions"].items():
        log = state_dir / "logs" / f"{info['name']}.log"
        if not log.exists():
            out[logical] = {"invoked": False}
            continue
        modules = imported_modules(log)
        if not modules:
            out[logical] = {"invoked": True, "traced": False}
            continue
        third_party = sorted(m for m in modules - OWN if m in _module_distributions())
        out[logical] = {"invoked": True, "traced": True, "package_type": info.get("package_type"),
                        "distributions": distributions_of(modules), "modules": third_party}
    return out


def compare_with_packages(found: dict[str, Any], template: Path = PROJECT_ROOT / "template.yaml") -> dict[str, Any]:
    """Per function: imported modules that its package does not install (a module counts as
    installed when any distribution that provides it is in the package's closure)."""
    from streamflow_local.packages import allowed_modules, function_requirements
    from streamflow_local.template import Stack, load_template

    stack = Stack(load_template(template), name="size", region="us-east-1")
    result = {}
    for logical, info in found.items():
        if not info.get("traced"):
            continue
        allowed = set(allowed_modules(function_requirements(stack, logical)))
        result[logical] = sorted(m for m in info["modules"] if m not in allowed)
    return result


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m bench.imports", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("state_dir", type=Path, help="a traced stack's state folder (stack.json, logs/)")
    parser.add_argument("--json", type=Path, default=None, help="also write the result here")
    args = parser.parse_args(argv)
    found = imports_by_function(args.state_dir)
    missing = compare_with_packages(found)
    for logical, info in found.items():
        if not info.get("traced"):
            print(f"{logical:<18} {'not invoked' if not info.get('invoked') else 'no importtime lines (not traced)'}")
            continue
        print(f"{logical:<18} {info['package_type'] or '?':<5} {len(info['distributions']):>3} distributions: "
              + ", ".join(info["distributions"]))
        if missing.get(logical):
            print(f"{'':<18} imported but not in its package (optional imports, or missing): "
                  f"{', '.join(missing[logical])}")
    if args.json:
        args.json.write_text(json.dumps({"functions": found, "not_in_package": missing}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
