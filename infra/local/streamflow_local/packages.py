"""What each function's package installs on AWS, read from this virtual environment.

A zip function gets its layers' ``requirements.txt``; an image function what its
Dockerfile's ``pip install`` names (``image.py``). Locally every worker runs this venv,
which holds all of them; ``allowed_modules`` narrows it back to one function's package so
the import guard (``STREAMFLOW_IMPORT_GUARD``, see ``worker.py``) refuses, as Lambda would,
a module that the function's package does not ship. ``bench/package.py`` sums the same
closure's installed bytes.
"""

from __future__ import annotations

from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name

from .config import PROJECT_ROOT


def requirement_lines(files: list[Path]) -> list[str]:
    lines = []
    for file in files:
        for raw in file.read_text().splitlines():
            line = raw.split(" #", 1)[0].strip()
            if line and not line.startswith("#"):
                lines.append(line)
    return lines


def installed_closure(requirements: list[str]) -> dict[str, int]:
    """``{canonical distribution name: installed bytes}`` of ``requirements`` and everything
    they need (markers and extras evaluated), from this venv's metadata; no ``.pyc``, no files
    outside site-packages. A requirement not installed here counts 0 (e.g. awslambdaric,
    which only the images need)."""
    from packaging.requirements import Requirement

    sizes: dict[str, int] = {}
    done: set[tuple[str, str]] = set()  # (distribution, extra) whose requirements were queued
    todo = [Requirement(line) for line in requirements]
    while todo:
        requirement = todo.pop()
        name = canonicalize_name(requirement.name)
        try:
            dist = metadata.distribution(requirement.name)
        except metadata.PackageNotFoundError:
            sizes.setdefault(name, 0)
            continue
        if name not in sizes:
            sizes[name] = sum(f.size or 0 for f in dist.files or []
                              if not str(f).startswith("..") and "__pycache__" not in f.parts and f.suffix != ".pyc")
        for extra in ("", *requirement.extras):
            if (name, extra) in done:
                continue
            done.add((name, extra))
            for line in dist.requires or []:
                child = Requirement(line)
                if child.marker is None:
                    if not extra:
                        todo.append(child)
                elif child.marker.evaluate({"extra": extra}) and (extra or not _needs_extra(child)):
                    todo.append(child)
    return sizes


def _needs_extra(requirement: Any) -> bool:
    return "extra" in str(requirement.marker)


@cache
def _providers() -> dict[str, tuple[str, ...]]:
    return {module: tuple(canonicalize_name(d) for d in dists) for module, dists in metadata.packages_distributions().items()}


def allowed_modules(requirements: list[str]) -> list[str]:
    """Top-level modules installed by the distributions of ``requirements``' closure."""
    closure = set(installed_closure(requirements))
    return sorted(module for module, dists in _providers().items() if closure.intersection(dists))


def function_requirements(stack: Any, logical: str, project_root: Path = PROJECT_ROOT) -> list[str]:
    """The requirement lines that ``logical``'s package installs on AWS."""
    from .image import image_of

    props = stack.function_properties(logical)
    if props.get("PackageType") == "Image":
        image = image_of(project_root, stack.resources[logical], props)
        return requirement_lines(list(image.requirements)) + list(image.pip_packages)
    files = []
    for layer in props.get("Layers") or []:
        logical_layer = layer.get("Ref") if isinstance(layer, dict) else None
        if logical_layer in stack.resources:
            requirements = project_root / str(stack.resources[logical_layer]["Properties"]["ContentUri"]) / "requirements.txt"
            if requirements.exists():
                files.append(requirements)
    return requirement_lines(files)
