"""The local stack's state as one file (``snapshot save``/``load``), and ``reset``.

The state is what lives in the state folder (``STREAMFLOW_STATE_DIR``, default
``.local-stack``): ``STATE_ENTRIES`` below. A snapshot is a tar archive (gzip when the name
ends in ``.gz``/``.tgz``) whose first member, ``MANIFEST``, names the format and its
version, the moto version the emulator's checkpoints were pickled with, when it was made,
the stack name, and every member with its size and SHA-256. Loading checks all of that
into a temporary folder before it touches the state, so a corrupt or foreign file changes
nothing; it refuses while the stack runs.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import shutil
import sqlite3
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from .config import StackConfig
from .persistence import CHECKPOINT_PATH

FORMAT = "streamflow-snapshot"
FORMAT_VERSION = 1
MANIFEST = "streamflow-snapshot.json"
# What the stack's state is: the emulator's checkpoints, the registry database, the
# deploy's description (names, ARNs, API key), the import-guard files the functions'
# configuration names, and the logs.
STATE_ENTRIES = ("aws", "mlflow.db", "stack.json", "import-guard", "logs")
# Derived or run-time files, removed by reset but never saved: unzipped function code
# (rebuilt from the emulator on the next call), pid and hold files, downloaded reports.
RUNTIME_ENTRIES = ("lambda", "reports", "stack.pid", "mlflow.pid", "mlflow.hold", "mlflow.db-journal")


class SnapshotError(RuntimeError):
    """The snapshot cannot be written or read; nothing in the state was changed."""


class StackRunning(SnapshotError):
    pass


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(8 * 1024 * 1024), b""):
            digest.update(block)
    return digest.hexdigest()


def _moto_version() -> str:
    from moto import __version__

    return __version__


def _files(root: Path) -> list[Path]:
    found: list[Path] = []
    for entry in STATE_ENTRIES:
        path = root / entry
        if path.is_file():
            found.append(path)
        elif path.is_dir():
            found.extend(p for p in sorted(path.rglob("*")) if p.is_file() and not p.name.startswith("."))
    return found


def _copy_registry(source: Path, target: Path) -> None:
    """A consistent copy of the SQLite registry, even while the MLflow server writes."""
    with sqlite3.connect(f"file:{source}?mode=ro", uri=True) as src, sqlite3.connect(target) as dst:
        src.backup(dst)


def _request_checkpoint(config: StackConfig) -> None:
    import requests

    response = requests.post(f"{config.aws_endpoint}{CHECKPOINT_PATH}", timeout=300)
    if response.status_code != 200:
        raise SnapshotError(f"the running stack did not write a checkpoint: HTTP {response.status_code} "
                            f"{response.text[:200]}")


def _copy_checkpoint(source: Path, target: Path) -> None:
    """The files one checkpoint's index names (a running stack may write the next meanwhile)."""
    index_text = (source / "index.json").read_text()
    index = json.loads(index_text)
    (target / "blobs").mkdir(parents=True)
    for entry in index.get("services", {}).values():
        shutil.copy2(source / entry["file"], target / entry["file"])
        for blob in entry.get("blobs", []):
            if not (target / "blobs" / blob).exists():
                os.link(source / "blobs" / blob, target / "blobs" / blob) if _same_device(source, target) else \
                    shutil.copy2(source / "blobs" / blob, target / "blobs" / blob)
    for journal in sorted(source.glob("*-journal-*.jsonl")):  # writes since the pickles
        shutil.copy2(journal, target / journal.name)
    (target / "index.json").write_text(index_text)


def _same_device(a: Path, b: Path) -> bool:
    return a.stat().st_dev == b.stat().st_dev


def _tar_mode(path: Path, write: bool) -> str:
    gz = path.name.endswith((".gz", ".tgz"))
    return ("w:gz" if gz else "w") if write else "r:*"


def save(config: StackConfig, target: Path) -> dict[str, Any]:
    """Write the state into ``target``; a running stack first writes a checkpoint."""
    from .stack import running_pid

    state = config.state_dir
    if not (state / "aws" / "index.json").exists() and running_pid(config) is None:
        raise SnapshotError(f"no saved stack state in {state} (start it with `streamflow up --deploy` first)")
    with tempfile.TemporaryDirectory(prefix="streamflow-snapshot-", dir=state) as staging_name:
        staging = Path(staging_name)
        running = running_pid(config) is not None
        for _attempt in range(5):
            if running:
                _request_checkpoint(config)
            try:
                _copy_checkpoint(state / "aws", staging / "aws")
                break
            except FileNotFoundError:  # a newer checkpoint replaced a file while we copied
                shutil.rmtree(staging / "aws", ignore_errors=True)
        else:
            raise SnapshotError("the running stack kept replacing its checkpoint; try again")
        for entry in STATE_ENTRIES:
            source = state / entry
            if entry == "aws":
                continue
            if entry == "mlflow.db" and source.exists():
                _copy_registry(source, staging / entry)
            elif source.is_dir():
                shutil.copytree(source, staging / entry, ignore=shutil.ignore_patterns(".*"))
            elif source.is_file():
                shutil.copy2(source, staging / entry)
        files = _files(staging)
        manifest = {
            "format": FORMAT, "format_version": FORMAT_VERSION, "moto": _moto_version(),
            "created_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "stack_name": config.stack_name,
            "contents": [{"path": p.relative_to(staging).as_posix(), "bytes": p.stat().st_size, "sha256": _sha256(p)}
                         for p in files],
        }
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
        target = Path(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.partial")
        with tarfile.open(partial, _tar_mode(target, write=True), **({"compresslevel": 1} if target.name.endswith(
                (".gz", ".tgz")) else {})) as archive:
            archive.add(staging / MANIFEST, arcname=MANIFEST)
            for path in files:
                archive.add(path, arcname=path.relative_to(staging).as_posix())
        os.replace(partial, target)
    return manifest


def read_manifest(archive: tarfile.TarFile, source: Path) -> dict[str, Any]:
    first = archive.next()
    if first is None or first.name != MANIFEST or not first.isfile():
        raise SnapshotError(f"{source}: not a StreamFlow snapshot (no {MANIFEST} at its start)")
    handle = archive.extractfile(first)
    try:
        manifest = json.loads(handle.read() if handle else b"")
    except ValueError as exc:
        raise SnapshotError(f"{source}: its {MANIFEST} is not JSON ({exc})") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise SnapshotError(f"{source}: not a StreamFlow snapshot (format {manifest.get('format')!r})"
                            if isinstance(manifest, dict) else f"{source}: not a StreamFlow snapshot")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise SnapshotError(f"{source}: snapshot format version {manifest.get('format_version')}, "
                            f"this StreamFlow reads version {FORMAT_VERSION}")
    if manifest.get("moto") != _moto_version():
        raise SnapshotError(f"{source}: made with moto {manifest.get('moto')}, this stack runs moto "
                            f"{_moto_version()} (the emulator's state is moto's objects: versions must match)")
    return manifest


def _safe_member(name: str) -> bool:
    path = PurePosixPath(name)
    return not path.is_absolute() and ".." not in path.parts and bool(path.parts) and path.parts[0] in STATE_ENTRIES


def inspect(source: Path) -> dict[str, Any]:
    """The snapshot's manifest (checked: format, version, moto)."""
    try:
        with tarfile.open(source, "r:*") as archive:
            return read_manifest(archive, source)
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise SnapshotError(f"{source}: not a readable snapshot ({exc})") from exc


@dataclass(frozen=True)
class Loaded:
    manifest: dict[str, Any]
    replaced: list[str]


def load(config: StackConfig, source: Path) -> Loaded:
    """Replace the state with the snapshot's, after checking every member against its manifest."""
    from .stack import running_pid

    source = Path(source)
    if running_pid(config) is not None:
        raise StackRunning(f"the local stack in {config.state_dir} is running: stop it first (`streamflow down`); "
                           "nothing was changed")
    state = config.state_dir
    state.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="streamflow-load-", dir=state) as staging_name:
        staging = Path(staging_name)
        try:
            with tarfile.open(source, "r:*") as archive:
                manifest = read_manifest(archive, source)
                if manifest.get("stack_name") != config.stack_name:
                    raise SnapshotError(f"{source}: a snapshot of stack {manifest.get('stack_name')!r}; this stack is "
                                        f"{config.stack_name!r} (set STREAMFLOW_STACK_NAME={manifest.get('stack_name')})")
                members = []
                for member in archive:
                    if member.name == MANIFEST:
                        continue
                    if not member.isfile() or not _safe_member(member.name):
                        raise SnapshotError(f"{source}: unexpected member {member.name!r}")
                    members.append(member)
                archive.extractall(staging, members=members, filter="data")
        except (tarfile.TarError, OSError, EOFError, ValueError) as exc:
            if isinstance(exc, SnapshotError):
                raise
            raise SnapshotError(f"{source}: not a readable snapshot ({exc}); nothing was changed") from exc
        _verify(staging, manifest, source)
        replaced = _swap(state, staging)
    return Loaded(manifest=manifest, replaced=replaced)


def _verify(staging: Path, manifest: dict[str, Any], source: Path) -> None:
    listed = {item["path"]: item for item in manifest.get("contents", [])}
    present = {p.relative_to(staging).as_posix() for p in _files(staging)}
    if set(listed) != present:
        missing, extra = sorted(set(listed) - present), sorted(present - set(listed))
        raise SnapshotError(f"{source}: contents differ from its manifest (missing {missing[:3]}, "
                            f"unlisted {extra[:3]}); nothing was changed")
    for path, item in listed.items():
        file = staging / path
        if file.stat().st_size != item["bytes"] or _sha256(file) != item["sha256"]:
            raise SnapshotError(f"{source}: {path} is corrupt (size or SHA-256 differs from the manifest); "
                                "nothing was changed")
    if not (staging / "aws" / "index.json").exists():
        raise SnapshotError(f"{source}: holds no emulator state (aws/index.json); nothing was changed")


def _swap(state: Path, staging: Path) -> list[str]:
    """Move the current state aside, the snapshot's in; the old state is deleted last."""
    trash = Path(tempfile.mkdtemp(prefix="streamflow-old-", dir=state))
    replaced = []
    for entry in STATE_ENTRIES + RUNTIME_ENTRIES:
        if (state / entry).exists():
            os.replace(state / entry, trash / entry)
            replaced.append(entry)
    for entry in STATE_ENTRIES:
        if (staging / entry).exists():
            os.replace(staging / entry, state / entry)
    shutil.rmtree(trash, ignore_errors=True)
    return replaced


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def reset(config: StackConfig, everything: bool = False) -> list[tuple[str, int]]:
    """Stop the stack if it runs and delete its state; returns (path, bytes) removed.

    ``data/`` (the generated months, inputs rather than state) stays unless ``everything``.
    """
    from .stack import down

    down(config)
    state = config.state_dir
    removed: list[tuple[str, int]] = []
    if everything:
        if state.exists():
            removed.append((str(state), _size(state)))
            shutil.rmtree(state)
        return removed
    for entry in STATE_ENTRIES + RUNTIME_ENTRIES:
        path = state / entry
        if path.exists():
            removed.append((str(path), _size(path)))
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    return removed
