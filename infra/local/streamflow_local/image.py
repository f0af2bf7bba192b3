"""What an image function's Dockerfile assembles, for the local deploy (no Docker here).

``sam build`` builds an ``PackageType: Image`` function from its ``Metadata``
(``Dockerfile``, ``DockerContext``); Lambda then runs the image's ``CMD`` handler from its
task root. The local deploy reads the same Dockerfile instead of running it: the files its
``COPY`` instructions put under the task root become the function's code (zipped and
deployed like a zip function, so the executor runs it unchanged), its ``CMD`` (or the
template's ``ImageConfig.Command``) is the handler, and the requirement files its ``RUN pip
install -r`` lines read are what this virtual environment must hold (``requirements.txt``
includes them; ``tests/unit/test_images.py`` checks it), except AWS's ``sagemaker-mlflow``
plugin (``layers/registry/requirements.txt``), kept out of it on purpose: the local registry
is a plain URI (README, "The registry: the stack's or yours").

Only the few instructions the project's Dockerfiles use are understood; anything else is
an error, so the local function never silently differs from the image.
"""

from __future__ import annotations

import io
import json
import posixpath
import re
import shlex
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_TASK_ROOT = "/var/task"  # Lambda's LAMBDA_TASK_ROOT
SKIP_PARTS = {"__pycache__", ".pytest_cache"}  # as .dockerignore leaves them out
_VAR = re.compile(r"\$\{(\w+)\}|\$(\w+)")
_PYTHON_BASE = re.compile(r"(?:^|/)python:(\d+)\.(\d+)")
_PIP_VALUE_OPTIONS = {"-r", "--requirement", "-c", "--constraint", "-t", "--target", "-i", "--index-url",
                      "--extra-index-url", "-f", "--find-links", "--platform", "--python-version", "--prefix"}


class DockerfileError(ValueError):
    pass


@dataclass(frozen=True)
class ImageBuild:
    """The parts of one image that the local deploy needs."""

    dockerfile: Path
    context: Path
    base: str
    task_root: str
    handler: str
    files: tuple[tuple[Path, str], ...]  # (file in the context, its path under the task root)
    requirements: tuple[Path, ...]  # files in the context that ``pip install -r`` reads
    constraints: tuple[Path, ...] = field(default=())  # … and ``-c`` reads
    pip_packages: tuple[str, ...] = field(default=())  # requirements named on the pip line itself
    entrypoint: tuple[str, ...] = field(default=())

    @property
    def runtime(self) -> str:
        """``python3.11`` for a ``python:3.11…`` or ``lambda/python:3.11`` base image."""
        match = _PYTHON_BASE.search(self.base)
        if not match:
            raise DockerfileError(f"{self.dockerfile}: base image {self.base!r} is not a python:X.Y image")
        return f"python{match.group(1)}.{match.group(2)}"

    def code_paths(self) -> list[str]:
        return sorted(dest for _, dest in self.files)

    def code_zip(self) -> bytes:
        """The task root's files as a zip, as ``zip_folder`` lays out a zip function's code."""
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for source, dest in sorted(self.files, key=lambda item: item[1]):
                info = zipfile.ZipInfo(dest, date_time=(2020, 1, 1, 0, 0, 0))
                info.external_attr = 0o644 << 16
                archive.writestr(info, source.read_bytes(), zipfile.ZIP_DEFLATED)
        return buffer.getvalue()


def _instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with comments dropped and continuation lines joined."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        keyword, _, rest = line.partition(" ")
        out.append((keyword.upper(), rest.strip()))
    if pending:
        raise DockerfileError("the Dockerfile ends inside a continued line")
    return out


def _expand(text: str, env: dict[str, str]) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name not in env:
            raise DockerfileError(f"${name} is not set by an ENV before it is used")
        return env[name]

    return _VAR.sub(value, text)


def _json_or_shell(args: str) -> list[str]:
    if args.startswith("["):
        value = json.loads(args)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise DockerfileError(f"not a JSON list of strings: {args}")
        return value
    return shlex.split(args)


def _files_under(source: Path) -> list[tuple[Path, str]]:
    """(file, path relative to ``source``) for a directory, or the file itself."""
    if source.is_dir():
        return [(p, p.relative_to(source).as_posix()) for p in sorted(source.rglob("*"))
                if p.is_file() and not SKIP_PARTS.intersection(p.relative_to(source).parts) and p.suffix != ".pyc"]
    return [(source, source.name)]


def _pip_install_arguments(words: list[str]) -> list[str]:
    """The requirement specifiers named directly on ``pip install`` command lines."""
    found: list[str] = []
    installing, skip_value, last = False, False, ""
    for word in words:
        if word in ("&&", "||", ";"):
            installing = False
        elif installing:
            if skip_value:
                skip_value = False
            elif word in _PIP_VALUE_OPTIONS:
                skip_value = True
            elif not word.startswith("-"):
                found.append(word)
        elif word == "install" and last in ("pip", "pip3"):
            installing = True
        last = word
    return found


def read_dockerfile(dockerfile: Path, context: Path, command: list[str] | None = None) -> ImageBuild:
    """Parse ``dockerfile`` (sources relative to ``context``); ``command`` overrides its CMD."""
    context = context.resolve()
    env: dict[str, str] = {}
    base = ""
    workdir = "/"
    copied: dict[str, Path] = {}  # absolute path in the image → file in the context
    requirements: list[Path] = []
    constraints: list[Path] = []
    pip_packages: list[str] = []
    entrypoint: list[str] = []
    cmd: list[str] = []
    for keyword, args in _instructions(dockerfile.read_text()):
        if keyword == "FROM":
            if base:
                raise DockerfileError(f"{dockerfile}: one FROM only (multi-stage builds are not read locally)")
            base = args.split()[0]
        elif keyword == "ENV":
            if "=" not in args.split()[0]:
                key, _, value = args.partition(" ")
                env[key] = _expand(value.strip(), env)
            else:
                for pair in shlex.split(args):
                    key, _, value = pair.partition("=")
                    env[key] = _expand(value, env)
        elif keyword == "WORKDIR":
            workdir = posixpath.normpath(posixpath.join(workdir, _expand(args, env)))
        elif keyword == "COPY":
            parts = shlex.split(args)
            if any(p.startswith("--") for p in parts):
                raise DockerfileError(f"{dockerfile}: COPY flags are not read locally: {args}")
            if len(parts) < 2:
                raise DockerfileError(f"{dockerfile}: COPY needs a source and a destination: {args}")
            *sources, dest = parts
            dest = posixpath.join(workdir, _expand(dest, env))
            for name in sources:
                if any(c in name for c in "*?["):
                    raise DockerfileError(f"{dockerfile}: COPY with a wildcard is not read locally: {name}")
                source = (context / name).resolve()
                if not source.is_relative_to(context) or not source.exists():
                    raise DockerfileError(f"{dockerfile}: COPY source {name} is not in the context {context}")
                into_dir = source.is_dir() or len(sources) > 1 or dest.endswith("/")
                for file, relative in _files_under(source):
                    target = posixpath.join(dest, relative) if into_dir else dest
                    copied[posixpath.normpath(target)] = file
        elif keyword == "RUN":
            words = shlex.split(_expand(args, env))
            for flag, path in zip(words, words[1:]):
                if flag in ("-r", "--requirement", "-c", "--constraint"):
                    target = posixpath.normpath(posixpath.join(workdir, path))
                    if target not in copied:
                        raise DockerfileError(f"{dockerfile}: pip reads {path}, which no COPY put there")
                    (requirements if flag in ("-r", "--requirement") else constraints).append(copied[target])
            pip_packages.extend(_pip_install_arguments(words))
        elif keyword == "ENTRYPOINT":
            entrypoint = _json_or_shell(args)
        elif keyword == "CMD":
            cmd = _json_or_shell(args)
        else:
            raise DockerfileError(f"{dockerfile}: {keyword} is not read by the local deploy")
    if not base:
        raise DockerfileError(f"{dockerfile}: no FROM")
    handler_args = command or cmd
    if len(handler_args) != 1:
        raise DockerfileError(f"{dockerfile}: CMD (or ImageConfig.Command) must name one handler, got {handler_args}")
    task_root = posixpath.normpath(env.get("LAMBDA_TASK_ROOT", DEFAULT_TASK_ROOT))
    files = tuple(sorted(((source, posixpath.relpath(target, task_root)) for target, source in copied.items()
                          if target.startswith(task_root + "/")), key=lambda item: item[1]))
    if not files:
        raise DockerfileError(f"{dockerfile}: nothing is copied under the task root {task_root}")
    return ImageBuild(dockerfile=dockerfile, context=context, base=base, task_root=task_root,
                      handler=handler_args[0], files=files, requirements=tuple(requirements),
                      constraints=tuple(constraints), pip_packages=tuple(pip_packages), entrypoint=tuple(entrypoint))


def image_of(project_root: Path, resource: dict[str, Any], properties: dict[str, Any]) -> ImageBuild:
    """The image of a ``PackageType: Image`` function, from its SAM ``Metadata``."""
    metadata = resource.get("Metadata") or {}
    if "Dockerfile" not in metadata:
        raise DockerfileError("an Image function needs Metadata.Dockerfile (and DockerContext) for sam build")
    context = project_root / str(metadata.get("DockerContext", "."))
    command = (properties.get("ImageConfig") or {}).get("Command")
    if (properties.get("ImageConfig") or {}).get("EntryPoint") or (properties.get("ImageConfig") or {}).get(
            "WorkingDirectory"):
        raise DockerfileError("ImageConfig.EntryPoint/WorkingDirectory are not supported by the local deploy")
    return read_dockerfile(context / str(metadata["Dockerfile"]), context, command)
