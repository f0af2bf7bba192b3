"""The runtime question, measured: each container image's requirements installed for another
Lambda Python (default 3.12 on Amazon Linux 2023, glibc 2.34) side by side with the current
3.11 install that ``make images-check`` leaves in ``build/images``.

Per image: installed size without ``.pyc`` (does it fit the 250 MiB zip limit with the core
layer?) and, as the cold-start proxy, the median wall time of ``import app`` (the init
phase) and of ``import app`` plus the function's heavy dependencies (what its first
invocation loads) in an isolated interpreter (``python -I -S``) that sees only the task root
and the install. Not part of ``make bench`` (minutes of downloads):

    python -m bench.runtime_compare [--python 3.12] [--runs 5] [NAME ...]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from streamflow_local import image_check
from streamflow_local.config import PROJECT_ROOT

from .package import LAMBDA_UNZIPPED_LIMIT, MIB

GLIBC = {"3.11": 26, "3.12": 34, "3.13": 34}  # Lambda's python3.11 is Amazon Linux 2; 3.12/3.13 are AL2023
# What a function's first invocation imports, by the requirement that brings it.
HEAVY = {"aws-lambda-powertools": "aws_lambda_powertools", "boto3": "boto3", "pandas": "pandas", "numpy": "numpy",
         "pyarrow": "pyarrow.parquet", "scikit-learn": "sklearn.ensemble", "skops": "skops.io", "mlflow-skinny": "mlflow",
         "evidently": "evidently", "s3fs": "s3fs", "pandera": "pandera.pandas"}
PROBE = ("import importlib, json, sys, time\n"
         "sys.path[:0] = [sys.argv[1], sys.argv[2]]\n"
         "started = time.perf_counter(); import app; init = time.perf_counter() - started\n"
         "for name in json.loads(sys.argv[3]): importlib.import_module(name)\n"
         "print(json.dumps([init, time.perf_counter() - started]))")
ENV = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "x",
       "AWS_SECRET_ACCESS_KEY": "x", "MLFLOW_TRACKING_URI": image_check.CLOSED, "MLFLOW_DISABLE_TELEMETRY": "true",
       "DATA_BUCKET": "b", "FEATURE_TABLE": "t", "LEASE_TABLE": "l", "MODEL_NAME": "m", "POWERTOOLS_SERVICE_NAME": "s"}


def platforms(python: str) -> list[str]:
    top = GLIBC[python]
    return [f"manylinux_2_{minor}_x86_64" for minor in range(top, 16, -1)] + [
        "manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64"]


def installed_bytes(site: Path) -> int:
    return sum(f.stat().st_size for f in site.rglob("*")
               if f.is_file() and "__pycache__" not in f.parts and f.suffix != ".pyc")


def heavy_modules(image: image_check.ImageBuild) -> list[str]:
    own = [line.split("#")[0].strip() for line in image.requirements[0].read_text().splitlines()]
    return [module for requirement, module in HEAVY.items() if any(line.startswith(requirement) for line in own if line)]


def install(image: image_check.ImageBuild, python: str, site: Path) -> None:
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
               *[word for platform in platforms(python) for word in ("--platform", platform)],
               "--python-version", python, "--implementation", "cp", "--only-binary=:all:", "--target", str(site),
               *image.pip_packages]
    for requirement in image.requirements:
        command += ["-r", str(requirement)]
    for constraint in image.constraints:
        command += ["-c", str(constraint)]
    subprocess.run(command, check=True)


def _import_once(interpreter: str, task: Path, site: Path, modules: list[str]) -> tuple[float, float]:
    done = subprocess.run([interpreter, "-I", "-S", "-c", PROBE, str(task), str(site), json.dumps(modules)],
                          env={**ENV, "HOME": str(task.parent)}, cwd=task, capture_output=True, text=True, timeout=600)
    if done.returncode:
        raise RuntimeError(done.stderr[-400:])
    first, second = json.loads(done.stdout.strip().splitlines()[-1])
    return first, second


def import_times(sides: dict[str, tuple[str, Path, Path]], modules: list[str], runs: int) -> dict[str, Any]:
    """Per side (interpreter, task root, install): medians of ``runs`` fresh interpreters, the
    sides alternating so that load changes hit both alike; a first run each, which writes
    ``__pycache__`` (an image ships it compiled), is dropped."""
    times: dict[str, list[tuple[float, float]]] = {side: [] for side in sides}
    for attempt in range(runs + 1):
        for side, (interpreter, task, site) in sides.items():
            measured = _import_once(interpreter, task, site, modules)
            if attempt:
                times[side].append(measured)
    return {side: {"init_s": round(statistics.median(t[0] for t in values), 2),
                   "first_call_imports_s": round(statistics.median(t[1] for t in values), 2)}
            for side, values in times.items()}


def _executable(name: str) -> str | None:
    """The interpreter itself, not a version manager's shim (the probe runs with a bare PATH)."""
    found = shutil.which(name)
    if found:
        done = subprocess.run([found, "-c", "import sys; print(sys.executable)"], capture_output=True, text=True)
        if done.stdout.strip():
            return done.stdout.strip()
    # a pyenv version that is installed but not selected: its shim refuses, its binary does not
    versions = sorted((Path.home() / ".pyenv" / "versions").glob(f"{name.removeprefix('python')}.*/bin/{name}"))
    return str(versions[-1]) if versions else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--python", default="3.12", choices=sorted(GLIBC))
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--dir", type=Path, default=PROJECT_ROOT / "build" / "runtime-compare")
    parser.add_argument("--baseline", type=Path, default=PROJECT_ROOT / "build" / "images",
                        help="the current images' installs (make images-check's; installed when missing)")
    parser.add_argument("names", nargs="*")
    args = parser.parse_args(argv)
    interpreter, baseline_python = _executable(f"python{args.python}"), _executable("python3.11")
    if not interpreter or not baseline_python:
        parser.error(f"needs python{args.python} and python3.11 on PATH")
    results: dict[str, Any] = {}
    for name, image in image_check.images():
        if args.names and name not in args.names:
            continue
        site, task = args.dir / name / "site", args.dir / name / "task"
        if not site.exists():
            install(image, args.python, site)
        shutil.rmtree(task, ignore_errors=True)
        image_check.lay_out(image, task)
        modules = heavy_modules(image)
        old = args.baseline / name
        if not (old / "site").exists():  # what make images-check installs for the current image
            image_check.install(image, old / "site")
        if not (old / "task").exists():
            image_check.lay_out(image, old / "task")
        row: dict[str, Any] = {"load_before": [round(x, 2) for x in os.getloadavg()],
                               "mib": round(installed_bytes(site) / MIB, 1),
                               "fits_zip": installed_bytes(site) <= LAMBDA_UNZIPPED_LIMIT,
                               "baseline_mib": round(installed_bytes(old / "site") / MIB, 1)}
        row["imports"] = import_times({args.python: (interpreter, task, site),
                                       "3.11 (current)": (baseline_python, old / "task", old / "site")},
                                      modules, args.runs)
        row["load_after"] = [round(x, 2) for x in os.getloadavg()]
        results[name] = row
        print(name, json.dumps(row), flush=True)
    (args.dir / "results.json").write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
