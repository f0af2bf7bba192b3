"""Package size: ``sam build`` (no container) into a temporary folder, then each
function's unzipped size = its code + every layer it uses, against Lambda's 250 MB limit
(262,144,000 bytes = 250 MiB, code and layers unzipped; reported in MiB).

aws-sam-cli lives outside the runtime venv (its pins clash): ``.venv-tools/bin/sam`` if
the Makefile made it, else ``bench/.venv-tools/bin/sam`` (created on first use)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from streamflow_local.config import PROJECT_ROOT

LAMBDA_UNZIPPED_LIMIT = 262_144_000  # bytes: 250 MiB, code + layers
MIB = 1024 * 1024


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


def _layer_ids(props: dict[str, Any]) -> list[str]:
    ids = []
    for layer in props.get("Layers") or []:
        if isinstance(layer, dict) and "Ref" in layer:
            ids.append(str(layer["Ref"]))
        elif isinstance(layer, str):
            ids.append(layer)
    return ids


def sizes_of_build(build_dir: Path, template: Path) -> dict[str, Any]:
    """Each function's unzipped size (code + layers) in a ``sam build`` output folder."""
    from streamflow_local.template import Stack, load_template

    stack = Stack(load_template(template), name="size", region="us-east-1")
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
        functions[logical] = {"code_mib": round(code / MIB, 2),
                              "layers_mib": {k: round(v / MIB, 2) for k, v in used.items()},
                              "total_mib": round(total / MIB, 2), "fits": total <= LAMBDA_UNZIPPED_LIMIT}
    return {"limit_mib": round(LAMBDA_UNZIPPED_LIMIT / MIB), "layers_mib": {k: round(v / MIB, 2) for k, v in layers.items()},
            "functions": functions}


def largest_packages(layer_dir: Path, top: int = 8) -> list[tuple[str, float]]:
    """The biggest top-level entries of a built Python layer (what to cut first)."""
    root = layer_dir / "python"
    if not root.exists():
        return []
    entries = [(p.name, tree_bytes(p) if p.is_dir() else p.stat().st_size) for p in root.iterdir()]
    return [(name, round(size / MIB, 1)) for name, size in sorted(entries, key=lambda e: -e[1])[:top]]


def _pip_build(build_dir: Path, template: Path, sam: Path) -> None:
    """What ``sam build`` would lay out, built with pip for Lambda's platform: the deps
    layer from ``layers/deps/requirements.txt`` with the project's pins (manylinux wheels
    only), the core layer and each function's code copied."""
    from streamflow_local.template import Stack, load_template

    stack = Stack(load_template(template), name="size", region="us-east-1")
    shutil.rmtree(build_dir, ignore_errors=True)
    pip = sam.parent / "pip"
    for logical in stack.of_type("AWS::Serverless::LayerVersion"):
        source = PROJECT_ROOT / str(stack.resources[logical]["Properties"]["ContentUri"])
        target = build_dir / logical / "python"
        requirements = source / "requirements.txt"
        if requirements.exists():
            subprocess.run([str(pip), "install", "--quiet", "--target", str(target), "--implementation", "cp",
                            "--python-version", "3.11", "--only-binary=:all:",
                            "--platform", "manylinux_2_28_x86_64", "--platform", "manylinux2014_x86_64",
                            "-r", str(requirements), "-c", str(PROJECT_ROOT / "constraints.txt")], check=True)
        else:
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for logical in stack.of_type("AWS::Serverless::Function"):
        code = stack.function_properties(logical).get("CodeUri")
        if isinstance(code, str):
            shutil.copytree(PROJECT_ROOT / code, build_dir / logical,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


def package_sizes(template: Path | None = None) -> dict[str, Any]:
    template = template or PROJECT_ROOT / "template.yaml"
    sam = sam_binary()
    with tempfile.TemporaryDirectory(prefix="streamflow-sam-") as tmp:
        build_dir = Path(tmp) / "build"
        env = {**os.environ, "SAM_CLI_TELEMETRY": "0"}
        env.pop("PYTHONPATH", None)
        started = time.perf_counter()
        done = subprocess.run([str(sam), "build", "--template-file", str(template), "--build-dir", str(build_dir),
                               "--cache-dir", str(Path(tmp) / "cache")],
                              cwd=PROJECT_ROOT, env=env, capture_output=True, text=True)
        sam_error = None
        if done.returncode != 0:
            sam_error = next((line.strip() for line in (done.stdout + done.stderr).splitlines()
                              if line.startswith("Error")), (done.stdout + done.stderr)[-500:])
            _pip_build(build_dir, template, sam)
        result = sizes_of_build(build_dir, template)
        result["build"] = "sam build" if sam_error is None else "pip --target (sam build failed)"
        result["sam_error"] = sam_error
        result["build_seconds"] = round(time.perf_counter() - started, 1)
        result["sam"] = str(sam.relative_to(PROJECT_ROOT)) if sam.is_relative_to(PROJECT_ROOT) else str(sam)
        deps = next((build_dir / k for k in result["layers_mib"] if "dep" in k.lower()), None)
        result["deps_layer_top"] = largest_packages(deps) if deps else []
        shutil.rmtree(build_dir, ignore_errors=True)
    return result
