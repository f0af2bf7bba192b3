"""Prove an image function's container image without Docker (``make images-check``).

``sam build`` needs Docker, which this machine (and many laptops) does not have, yet the
seven image functions' requirements must install and import on Lambda's Linux x86_64. For
each ``functions/<name>/Dockerfile`` this installs what its ``RUN pip install`` line installs,
for the image's platform and Python (``pip install --platform manylinux_2_28_x86_64
--python-version 3.11 --only-binary=:all: --target DIR``: wheels only, as the image would
get them), lays out what its ``COPY`` lines put under the task root, and then, in an
isolated interpreter (``python -I -S``: no site-packages, no user site, no PYTHONPATH) that
sees only those two folders and the standard library:

* imports every top-level module the installed distributions provide (so a wheel that
  needs a newer glibc, or a missing transitive dependency, fails here),
* imports the handler the image's ``CMD`` names, and
* runs one real event through it with every service pointed at a closed port: the handler
  must get as far as its first network call (its first S3, DynamoDB or registry request),
  which proves its code path up to there runs in that image.

The Debian-based ``python:3.11-slim`` images have glibc 2.36, so ``manylinux_2_28`` wheels
(the pinned NumPy, SciPy, scikit-learn and pyarrow need glibc >= 2.27/2.28) load there, as
they do on this machine's Debian.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import PROJECT_ROOT
from .image import ImageBuild, read_dockerfile

# The image's glibc is Debian bookworm's 2.36: any manylinux wheel up to it loads there. pip
# does not widen an explicit --platform to older manylinux tags, so each is named.
GLIBC = (2, 36)
PLATFORMS = tuple(f"manylinux_2_{minor}_x86_64" for minor in range(GLIBC[1], 16, -1)) + (
    "manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64")
CLOSED = "http://127.0.0.1:9"  # the discard port: nothing listens, a connection is refused at once
# Modules a distribution ships that are not meant to be imported on their own (test suites,
# optional integrations whose extra is not installed, build helpers).
NOT_IMPORTABLE = frozenset({"tests", "test", "testing", "benchmarks", "examples", "docs", "conftest",
                            "setup", "_distutils_hack", "pkg_resources", "distutils-precedence"})
# A handler that reached the network: the errors its first service call raises.
REACHED_THE_NETWORK = ("EndpointConnectionError", "RegistryUnavailable", "ConnectionError")
EVENT = {"month": "month_001", "execution": "image-check", "challenger": {"version": "1"},
         "threshold": 0.5, "delta": 0.05, "reference_month": "champion"}  # any event: it stops at the network

PROBE = r"""
import importlib, importlib.metadata, json, sys, time, traceback
task, site, handler_name, event = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
skip = set(json.loads(sys.argv[5]))
sys.path[:0] = [task, site]
report = {"python": sys.version.split()[0], "path": sys.path[:2], "modules": {}, "failed_modules": {}}
names = set()
for dist in importlib.metadata.distributions(path=[site]):
    top = dist.read_text("top_level.txt")
    if top:
        names.update(n.strip() for n in top.split() if n.strip())
    else:
        for f in dist.files or []:
            first = f.parts[0]
            if first.endswith(".py"):
                names.add(first[:-3])
            elif len(f.parts) > 1 and f.parts[1] == "__init__.py":
                names.add(first)
for name in sorted(n for n in names if n not in skip and not n.startswith("_") and "." not in n and "-" not in n):
    started = time.perf_counter()
    try:
        importlib.import_module(name)
        report["modules"][name] = round(time.perf_counter() - started, 3)
    except BaseException as exc:
        report["failed_modules"][name] = f"{type(exc).__name__}: {exc}"[:300]
module_name, function_name = handler_name.rsplit(".", 1)
started = time.perf_counter()
module = importlib.import_module(module_name)
handler = getattr(module, function_name)
report["handler_import_seconds"] = round(time.perf_counter() - started, 3)
report["handler_file"] = module.__file__


class Context:
    function_name = "image-check"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:us-east-1:000000000000:function:image-check"
    aws_request_id = "image-check"


try:
    report["returned"] = handler(event, Context())
except BaseException as exc:
    report["raised"] = {"type": type(exc).__name__, "module": type(exc).__module__, "message": str(exc)[:300],
                        "chain": [type(e).__name__ for e in (exc.__cause__, exc.__context__) if e is not None]}
print("IMAGE_CHECK " + json.dumps(report, default=str))
"""


@dataclass(frozen=True)
class ImageCheck:
    name: str
    image: ImageBuild
    site: Path
    task: Path


def images(root: Path = PROJECT_ROOT) -> list[tuple[str, ImageBuild]]:
    """Every ``functions/<name>/Dockerfile``, parsed as the local deploy parses it."""
    return [(dockerfile.parent.name, read_dockerfile(dockerfile, root))
            for dockerfile in sorted((root / "functions").glob("*/Dockerfile"))]


def python_version(image: ImageBuild) -> str:
    return image.runtime.removeprefix("python")


def install(image: ImageBuild, site: Path) -> None:
    """What the image's ``RUN pip install`` installs, as wheels for the image's platform."""
    platforms = [word for platform in PLATFORMS for word in ("--platform", platform)]
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *platforms,
               "--python-version", python_version(image), "--implementation", "cp", "--only-binary=:all:",
               "--upgrade", "--target", str(site), *image.pip_packages]
    for requirement in image.requirements:
        command += ["-r", str(requirement)]
    for constraint in image.constraints:
        command += ["-c", str(constraint)]
    subprocess.run(command, check=True)


def lay_out(image: ImageBuild, task: Path) -> None:
    """The task root as the image's ``COPY`` lines make it."""
    for source, dest in image.files:
        target = task / dest
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)


def interpreter(image: ImageBuild) -> str:
    """A CPython of the image's version (this machine's base interpreter, not the venv's)."""
    version = python_version(image)
    base = getattr(sys, "_base_executable", sys.executable)
    if sys.version_info[:2] == tuple(int(p) for p in version.split(".")):
        return base
    found = shutil.which(f"python{version}")
    if not found:
        raise RuntimeError(f"no python{version} on PATH to check the image with")
    return found


def probe(image: ImageBuild, site: Path, task: Path, timeout: float = 600.0) -> dict[str, Any]:
    """Run the probe in an isolated interpreter that sees only ``task``, ``site`` and the stdlib."""
    env = {"PATH": "/usr/bin:/bin", "HOME": str(task.parent), "LANG": "C.UTF-8",
           "LAMBDA_TASK_ROOT": str(task), "AWS_ENDPOINT_URL": CLOSED, "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "image-check", "AWS_SECRET_ACCESS_KEY": "image-check",
           "AWS_MAX_ATTEMPTS": "1", "MLFLOW_TRACKING_URI": CLOSED, "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
           "MLFLOW_DISABLE_TELEMETRY": "true", "DATA_BUCKET": "image-check", "FEATURE_TABLE": "image-check",
           "LEASE_TABLE": "image-check", "MODEL_NAME": "streamflow_churn", "POWERTOOLS_LOG_LEVEL": "CRITICAL",
           "POWERTOOLS_METRICS_NAMESPACE": "StreamFlow", "POWERTOOLS_SERVICE_NAME": "streamflow"}
    done = subprocess.run([interpreter(image), "-I", "-S", "-c", PROBE, str(task), str(site), image.handler,
                           json.dumps(EVENT), json.dumps(sorted(NOT_IMPORTABLE))],
                          env=env, cwd=task, capture_output=True, text=True, timeout=timeout)
    line = next((text for text in done.stdout.splitlines() if text.startswith("IMAGE_CHECK ")), None)
    if line is None:
        raise RuntimeError(f"the probe did not report (exit {done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(line.removeprefix("IMAGE_CHECK "))


def reached_the_network(report: dict[str, Any]) -> bool:
    """The handler ran until its first service call (which the closed port refused)."""
    raised = report.get("raised") or {}
    names = [raised.get("type", "")] + list(raised.get("chain", []))
    return any(name in REACHED_THE_NETWORK for name in names)


def site_size(site: Path) -> int:
    return sum(f.stat().st_size for f in site.rglob("*") if f.is_file())


def main(argv: list[str] | None = None) -> int:
    """``python -m streamflow_local.image_check [DIR] [NAME ...]``: check the images, print a table."""
    import argparse
    import time

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     epilog="Exit 0 when every image installs, imports and runs its handler.")
    parser.add_argument("--dir", type=Path, default=PROJECT_ROOT / "build" / "images",
                        help="where to install (default build/images; reused between runs)")
    parser.add_argument("names", nargs="*", help="functions to check (default: every functions/*/Dockerfile)")
    args = parser.parse_args(argv)
    failed = 0
    for name, image in images():
        if args.names and name not in args.names:
            continue
        started = time.monotonic()
        site, task = args.dir / name / "site", args.dir / name / "task"
        shutil.rmtree(task, ignore_errors=True)
        install(image, site)
        lay_out(image, task)
        report = probe(image, site, task)
        ok = not report["failed_modules"] and reached_the_network(report)
        failed += not ok
        raised = report.get("raised", {})
        print(f"{'ok  ' if ok else 'FAIL'} {name:<9} {len(report['modules']):>3} modules, "
              f"{site_size(site) / 2**20:6.0f} MiB, handler import {report['handler_import_seconds']:.1f} s, "
              f"event -> {raised.get('type', 'returned')}; {time.monotonic() - started:.0f} s", flush=True)
        for module, error in report["failed_modules"].items():
            print(f"     {module}: {error}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
