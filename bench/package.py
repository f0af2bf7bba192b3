"""Package size of every function, against the limit of its kind.

* Zip functions: ``sam build`` (no container) of the zip functions and their layers only,
  into a temporary folder; each function's unzipped size = its code + every layer it uses,
  against Lambda's 250 MB limit (262,144,000 bytes = 250 MiB, code and layers unzipped;
  reported in MiB). If ``sam build`` fails, the same layout is made with pip (manylinux2014
  wheels: Lambda's python3.11 runtime is Amazon Linux 2, glibc 2.26).
* Image functions (``PackageType: Image``): ``sam build`` needs Docker for them, so they are
  not built here. Their size is what their Dockerfile's ``pip install`` puts in the image
  (``pip install --target`` of the same requirements and pins for Linux x86_64, manylinux
  wheels up to glibc 2.28, no ``.pyc``) plus the code it copies, against Lambda's 10 GB
  image limit. The base image (python:3.11-slim, ≈ 130 MB) is not counted.

``venv_estimate`` is the same sum from this virtual environment's installed files (no
build, no network): what ``tests/unit/test_images.py`` checks against the zip limit.

aws-sam-cli lives outside the runtime venv (its pins clash): ``.venv-tools/bin/sam`` if
the Makefile made it, else ``bench/.venv-tools/bin/sam`` (created on first use)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from streamflow_local.config import PROJECT_ROOT
from streamflow_local.packages import installed_closure, requirement_lines  # noqa: F401 - also used by tests

LAMBDA_UNZIPPED_LIMIT = 262_144_000  # bytes: 250 MiB, code + layers
LAMBDA_IMAGE_LIMIT = 10 * 1024**3  # bytes: 10 GiB, an image's uncompressed size
MIB = 1024 * 1024
ZIP_PLATFORMS = ("manylinux2014_x86_64",)  # python3.11 on Lambda: Amazon Linux 2, glibc 2.26
IMAGE_PLATFORMS = ("manylinux_2_28_x86_64", "manylinux2014_x86_64")  # python:3.11-slim: glibc 2.36
SKIP_PARTS = {"__pycache__", ".pytest_cache"}


def sam_binary(create: bool = True) -> Path | None:
    for candidate in (PROJECT_ROOT / ".venv-tools" / "bin" / "sam", PROJECT_ROOT / "bench" / ".venv-tools" / "bin" / "sam"):
        if candidate.exists():
            return candidate
    if not create:
        return None
    venv = PROJECT_ROOT / "bench" / ".venv-tools"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", "aws-sam-cli"], check=True)
    return venv / "bin" / "sam"


def tree_bytes(path: Path) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            file = Path(root) / name
            if not file.is_symlink():
                total += file.stat().st_size
    return total


def _code_bytes(path: Path) -> int:
    """A source folder's size as it is packaged (no caches, no ``.pyc``)."""
    return sum(p.stat().st_size for p in path.rglob("*")
               if p.is_file() and not SKIP_PARTS.intersection(p.parts) and p.suffix != ".pyc")


def _layer_ids(props: dict[str, Any]) -> list[str]:
    ids = []
    for layer in props.get("Layers") or []:
        if isinstance(layer, dict) and "Ref" in layer:
            ids.append(str(layer["Ref"]))
        elif isinstance(layer, str):
            ids.append(layer)
    return ids


def _stack(template: Path | None = None):
    from streamflow_local.template import Stack, load_template

    return Stack(load_template(template or PROJECT_ROOT / "template.yaml"), name="size", region="us-east-1")


# --- what each function ships ---------------------------------------------------------------
def function_packages(template: Path | None = None) -> dict[str, dict[str, Any]]:
    """Per function: its kind, its code, the requirement files its package installs."""
    from streamflow_local.image import image_of

    stack = _stack(template)
    out: dict[str, dict[str, Any]] = {}
    for logical in stack.of_type("AWS::Serverless::Function"):
        props = stack.function_properties(logical)
        if props.get("PackageType") == "Image":
            image = image_of(PROJECT_ROOT, stack.resources[logical], props)
            out[logical] = {"package": "image", "image": image, "requirements": list(image.requirements),
                            "extra": list(image.pip_packages), "code_bytes": sum(f.stat().st_size for f, _ in image.files)}
            continue
        layers = _layer_ids(props)
        requirements = []
        for layer in layers:
            source = PROJECT_ROOT / str(stack.resources[layer]["Properties"]["ContentUri"])
            if (source / "requirements.txt").exists() and (source / "requirements.txt").read_text().strip():
                requirements.append(source / "requirements.txt")
        out[logical] = {"package": "zip", "layers": layers, "requirements": requirements, "extra": [],
                        "code_uri": str(props["CodeUri"])}
    return out


def function_requirements(logical: str, template: Path | None = None) -> list[str]:
    """The requirement lines a function's package installs (its layers', or its image's)."""
    package = function_packages(template)[logical]
    return requirement_lines(package["requirements"]) + list(package["extra"])


def venv_estimate(template: Path | None = None) -> dict[str, dict[str, Any]]:
    """Each function's unzipped size from this venv's installed files (cheap, offline)."""
    stack = _stack(template)
    packages = function_packages(template)
    code_layers = {layer: _code_bytes(PROJECT_ROOT / str(stack.resources[layer]["Properties"]["ContentUri"]))
                   for layer in stack.of_type("AWS::Serverless::LayerVersion")}
    out = {}
    for logical, package in packages.items():
        deps = sum(installed_closure(requirement_lines(package["requirements"]) + package["extra"]).values())
        if package["package"] == "zip":
            with_requirements = {p.parent.name for p in package["requirements"]}
            layers = sum(size for layer, size in code_layers.items() if layer in package["layers"]
                         and Path(str(stack.resources[layer]["Properties"]["ContentUri"])).name not in with_requirements)
            total = _code_bytes(PROJECT_ROOT / package["code_uri"]) + layers + deps
            limit = LAMBDA_UNZIPPED_LIMIT
        else:
            total, limit = package["code_bytes"] + deps, LAMBDA_IMAGE_LIMIT
        out[logical] = {"package": package["package"], "total_mib": round(total / MIB, 1), "fits": total <= limit}
    return out


# --- zip functions: sam build ------------------------------------------------------------------
def sizes_of_build(build_dir: Path, template: Path) -> dict[str, Any]:
    """Each zip function's unzipped size (code + layers) in a ``sam build`` output folder."""
    stack = _stack(template)
    layers = {logical: tree_bytes(build_dir / logical) for logical in stack.of_type("AWS::Serverless::LayerVersion")
              if (build_dir / logical).exists()}
    functions = {}
    for logical in stack.of_type("AWS::Serverless::Function"):
        props = stack.function_properties(logical)
        if props.get("PackageType") == "Image":
            functions[logical] = {"package": "image"}
            continue
        code = tree_bytes(build_dir / logical) if (build_dir / logical).exists() else 0
        used = {layer: layers.get(layer, 0) for layer in _layer_ids(props)}
        total = code + sum(used.values())
        functions[logical] = {"package": "zip", "code_mib": round(code / MIB, 2),
                              "layers_mib": {k: round(v / MIB, 2) for k, v in used.items()},
                              "total_mib": round(total / MIB, 2), "fits": total <= LAMBDA_UNZIPPED_LIMIT}
    return {"limit_mib": round(LAMBDA_UNZIPPED_LIMIT / MIB), "layers_mib": {k: round(v / MIB, 2) for k, v in layers.items()},
            "functions": functions}


def largest_packages(folder: Path, top: int = 8) -> list[tuple[str, float]]:
    """The biggest top-level entries of an installed tree (what to cut first)."""
    root = folder / "python" if (folder / "python").exists() else folder
    if not root.exists():
        return []
    entries = [(p.name, tree_bytes(p) if p.is_dir() else p.stat().st_size) for p in root.iterdir()
               if not p.name.endswith((".dist-info", ".data"))]
    return [(name, round(size / MIB, 1)) for name, size in sorted(entries, key=lambda e: -e[1])[:top]]


def zip_only_template(template: Path, out: Path) -> Path:
    """The template's layers and zip functions only, paths made absolute: what ``sam build``
    can build without Docker."""
    from streamflow_local.template import load_template

    source = load_template(template)
    keep_globals = {k: v for k, v in source.get("Globals", {}).get("Function", {}).items()
                    if k in ("Runtime", "Architectures", "Timeout", "MemorySize", "Layers")}
    resources: dict[str, Any] = {}
    for logical, resource in source["Resources"].items():
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::Serverless::LayerVersion":
            resources[logical] = {**resource, "Properties": {**props, "ContentUri": str(PROJECT_ROOT / props["ContentUri"])}}
        elif resource["Type"] == "AWS::Serverless::Function" and props.get("PackageType", "Zip") == "Zip":
            kept = {k: v for k, v in props.items() if k in ("Handler", "Runtime", "Layers", "Architectures")}
            resources[logical] = {"Type": resource["Type"], "Properties": {**kept, "CodeUri": str(PROJECT_ROOT / props["CodeUri"])}}
    document = {"AWSTemplateFormatVersion": "2010-09-09", "Transform": source["Transform"],
                # the registry plugin's layer and its Fn::If in Layers name CreateRegistry
                "Parameters": source.get("Parameters", {}), "Conditions": source.get("Conditions", {}),
                "Globals": {"Function": keep_globals}, "Resources": resources}
    out.write_text(json.dumps(document, indent=2))
    return out


def _pip(sam: Path) -> list[str]:
    pip = sam.parent / "pip"
    return [str(pip)] if pip.exists() else [sys.executable, "-m", "pip"]


def _pip_install(pip: list[str], target: Path, requirements: list[str], platforms: tuple[str, ...]) -> None:
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as handle:
        handle.write("\n".join(requirements) + "\n")
    try:
        subprocess.run(pip + ["install", "--quiet", "--no-compile", "--target", str(target), "--implementation", "cp",
                              "--python-version", "3.11", "--only-binary=:all:"]
                       + [arg for platform in platforms for arg in ("--platform", platform)]
                       + ["-r", handle.name, "-c", str(PROJECT_ROOT / "constraints.txt")],
                       check=True, capture_output=True, text=True)
    finally:
        os.unlink(handle.name)


def _pip_build(build_dir: Path, template: Path, sam: Path) -> None:
    """What ``sam build`` would lay out for the zip functions, built with pip for Lambda's
    python3.11 platform (manylinux2014 wheels): layers with a requirements file installed,
    the core layer and each zip function's code copied."""
    stack = _stack(template)
    shutil.rmtree(build_dir, ignore_errors=True)
    for logical in stack.of_type("AWS::Serverless::LayerVersion"):
        source = PROJECT_ROOT / str(stack.resources[logical]["Properties"]["ContentUri"])
        target = build_dir / logical / "python"
        requirements = source / "requirements.txt"
        if requirements.exists() and requirements.read_text().strip():
            _pip_install(_pip(sam), target, requirement_lines([requirements]), ZIP_PLATFORMS)
        else:
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "requirements.txt"))
    for logical in stack.of_type("AWS::Serverless::Function"):
        code = stack.function_properties(logical).get("CodeUri")
        if isinstance(code, str):
            shutil.copytree(PROJECT_ROOT / code, build_dir / logical,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


def _sam_build(sam: Path, template: Path, tmp: Path) -> tuple[Path, str | None]:
    build_dir = tmp / "build"
    env = {**os.environ, "SAM_CLI_TELEMETRY": "0"}
    env.pop("PYTHONPATH", None)
    zip_template = zip_only_template(template, tmp / "template.json")
    done = subprocess.run([str(sam), "build", "--template-file", str(zip_template), "--build-dir", str(build_dir),
                           "--cache-dir", str(tmp / "cache")],
                          cwd=tmp, env=env, capture_output=True, text=True)
    if done.returncode == 0:
        return build_dir, None
    error = next((line.strip() for line in (done.stdout + done.stderr).splitlines() if line.startswith("Error")),
                 (done.stdout + done.stderr)[-500:])
    _pip_build(build_dir, template, sam)
    return build_dir, error


# --- image functions: their pip install --------------------------------------------------------
def image_sizes(packages: dict[str, dict[str, Any]], pip: list[str], tmp: Path) -> dict[str, dict[str, Any]]:
    """Each image function's installed dependencies + code (one install per distinct set)."""
    installed: dict[tuple[str, ...], tuple[int, list[tuple[str, float]]]] = {}
    out = {}
    for logical, package in packages.items():
        if package["package"] != "image":
            continue
        lines = tuple(sorted(requirement_lines(package["requirements"]) + package["extra"]))
        if lines not in installed:
            target = tmp / f"image-{len(installed)}"
            _pip_install(pip, target, list(lines), IMAGE_PLATFORMS)
            installed[lines] = (tree_bytes(target), largest_packages(target, top=6))
            shutil.rmtree(target, ignore_errors=True)
        deps, top = installed[lines]
        total = deps + package["code_bytes"]
        out[logical] = {"package": "image", "deps_mib": round(deps / MIB, 1),
                        "code_mib": round(package["code_bytes"] / MIB, 2), "total_mib": round(total / MIB, 1),
                        "limit_mib": round(LAMBDA_IMAGE_LIMIT / MIB), "fits": total <= LAMBDA_IMAGE_LIMIT,
                        "dockerfile": package["image"].dockerfile.relative_to(PROJECT_ROOT).as_posix(),
                        "largest": top}
    return out


def package_sizes(template: Path | None = None) -> dict[str, Any]:
    template = template or PROJECT_ROOT / "template.yaml"
    sam = sam_binary()
    packages = function_packages(template)
    with tempfile.TemporaryDirectory(prefix="streamflow-sam-") as tmp_name:
        tmp = Path(tmp_name)
        started = time.perf_counter()
        build_dir, sam_error = _sam_build(sam, template, tmp)
        result = sizes_of_build(build_dir, template)
        result["build"] = ("sam build (zip functions and layers)" if sam_error is None
                           else "pip --target (sam build failed)")
        result["sam_error"] = sam_error
        result["build_seconds"] = round(time.perf_counter() - started, 1)
        result["sam"] = str(sam.relative_to(PROJECT_ROOT)) if sam.is_relative_to(PROJECT_ROOT) else str(sam)
        deps = next((build_dir / k for k in result["layers_mib"] if "dep" in k.lower()), None)
        result["deps_layer_top"] = largest_packages(deps) if deps else []
        shutil.rmtree(build_dir, ignore_errors=True)
        started = time.perf_counter()
        for logical, sizes in image_sizes(packages, _pip(sam), tmp).items():
            result["functions"][logical].update(sizes)
        result["image_seconds"] = round(time.perf_counter() - started, 1)
    result["image_limit_mib"] = round(LAMBDA_IMAGE_LIMIT / MIB)
    result["image_note"] = ("image functions: not built (sam build needs Docker for them); size = their "
                            "Dockerfile's pip install (pip --target, manylinux ≤ 2_28, no .pyc) + code, "
                            "base image not counted")
    return result
