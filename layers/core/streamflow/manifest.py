"""The month manifest (``_MANIFEST.json``): what an uploader declares, and nothing more.

It names the month and, for every file of it, the size and SHA-256 the uploader wrote;
ingest accepts the month only when the bucket holds exactly those bytes. Promotion policy
(threshold, delta, reference month, the approval gate) belongs to the stack's template
parameters: a manifest that carries a policy key is refused unless the stack was deployed
with ``AllowManifestOverrides=true``, and then each value is checked before it is used.

The pydantic model below is the contract; ``docs/manifest.schema.json`` is its JSON Schema
(``python -m streamflow.manifest`` prints it; a unit test keeps the file equal to it).
Pure: no I/O here except reading local files in ``manifest_for_folder``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .parts import PART_NAME
from .schema import MANIFEST_NAME, MONTH_PATTERN
from .violations import Violation

HASH_CHUNK = 1024 * 1024
REFERENCE_MODES = ("champion", "previous")
# Policy key → the template parameter that sets it.
POLICY_KEYS: dict[str, str] = {
    "threshold": "DriftThreshold",
    "delta": "PromotionDelta",
    "reference_month": "ReferenceMonth",
    "require_approval": "RequireApproval",
    "approval_timeout_seconds": "ApprovalTimeoutSeconds",
}
# Other spellings of the same policy: refused always (with the key to use when overrides are on).
POLICY_ALIASES: dict[str, str] = {
    "drift_threshold": "threshold",
    "promotion_delta": "delta",
    "reference": "reference_month",
    "approval": "require_approval",
    "approval_timeout": "approval_timeout_seconds",
}
# A plain file name (``users.csv``) or a part of a partitioned table (``users/part-00000.csv``, see ``parts``).
FILE_NAME_PATTERN = re.compile(r"^(?:[A-Za-z0-9][A-Za-z0-9._-]*|[a-z0-9_]+/part-\d{5}\.csv)$")
MAX_APPROVAL_TIMEOUT_SECONDS = 31_536_000  # a Step Functions standard execution lasts at most a year


class FileEntry(BaseModel):
    """One uploaded file: its exact size and the lowercase hex SHA-256 of its bytes."""

    model_config = ConfigDict(extra="forbid", strict=True)

    bytes: int = Field(ge=0, description="Size of the file in bytes.")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="SHA-256 of the file's bytes, 64 lowercase hex digits.")


class Manifest(BaseModel):
    """``months/<month>/_MANIFEST.json``, uploaded after the month's files."""

    model_config = ConfigDict(extra="allow", strict=True, title="StreamFlow month manifest",
                              json_schema_extra={"$schema": "https://json-schema.org/draft/2020-12/schema"})

    month: str = Field(pattern=MONTH_PATTERN.pattern, description="The month, as in the key months/<month>/.")
    files: dict[str, FileEntry] = Field(
        min_length=1,
        description="Every file of the month (no others may be under months/<month>/), by name: "
                    "a table's CSV (users.csv) or each part of a partitioned table (users/part-00000.csv).",
        json_schema_extra={"propertyNames": {"pattern": FILE_NAME_PATTERN.pattern,
                                             "not": {"const": MANIFEST_NAME}}},
    )
    threshold: float | None = Field(
        default=None, ge=0, le=1,
        description="Policy (template parameter DriftThreshold). Refused unless AllowManifestOverrides=true.")
    delta: float | None = Field(
        default=None, ge=0, lt=1,
        description="Policy (template parameter PromotionDelta). Refused unless AllowManifestOverrides=true.")
    reference_month: str | None = Field(
        default=None, pattern=r"^(champion|previous|month_\d{3})$",
        description="Policy (template parameter ReferenceMonth): champion, previous or an existing month_NNN. "
                    "Refused unless AllowManifestOverrides=true.")
    require_approval: bool | None = Field(
        default=None,
        description="Policy (template parameter RequireApproval). Refused unless AllowManifestOverrides=true.")
    approval_timeout_seconds: int | None = Field(
        default=None, ge=1, le=MAX_APPROVAL_TIMEOUT_SECONDS,
        description="Policy (template parameter ApprovalTimeoutSeconds). Refused unless AllowManifestOverrides=true.")


class ManifestError(ValueError):
    """The manifest is unreadable, breaks its schema, carries policy it may not, or does not
    match the bytes in the bucket. ``violations`` name each broken rule."""

    def __init__(self, key: str, violations: list[Violation]):
        self.key = key
        self.violations = violations
        shown = "; ".join(str(v) for v in violations[:5])
        more = f"; and {len(violations) - 5} more" if len(violations) > 5 else ""
        super().__init__(f"{key}: {shown}{more}")

    @property
    def violation(self) -> Violation:
        return self.violations[0]


def json_schema() -> dict[str, Any]:
    """The manifest's JSON Schema (what ``docs/manifest.schema.json`` holds)."""
    schema = Manifest.model_json_schema()
    for name in POLICY_KEYS:  # optional: shown as their type, not as "or null"
        prop = schema["properties"][name]
        (typed,) = [option for option in prop.pop("anyOf") if option.get("type") != "null"]
        del prop["default"]
        prop.update(typed)
    return schema


def _location(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc)


def parse(key: str, body: bytes, month: str, allow_overrides: bool = False) -> Manifest:
    """Bytes → a manifest of ``month`` that keeps the schema, or ManifestError naming every fault.

    Policy keys are refused before their values are looked at when overrides are off."""
    if not MONTH_PATTERN.match(month):
        # the name in the rule: a Violation's example reads "(e.g. …)", which fits a value, not the one name
        raise ManifestError(key, [Violation(MANIFEST_NAME, "", f"month name must match month_NNN, not {month!r}")])
    try:
        raw = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ManifestError(key, [Violation(MANIFEST_NAME, "", "must be valid JSON", str(exc))]) from exc
    if not isinstance(raw, dict):
        raise ManifestError(key, [Violation(MANIFEST_NAME, "", "must be a JSON object", type(raw).__name__)])
    present = policy_keys_in(raw)
    if present and not allow_overrides:
        raise ManifestError(key, [policy_refusal(present)])
    try:
        manifest = Manifest.model_validate(raw)
    except ValidationError as exc:
        violations = [Violation(MANIFEST_NAME, _location(error["loc"]), error["msg"],
                                repr(error.get("input"))[:80] if error["type"] != "missing" else "")
                      for error in exc.errors()]
        raise ManifestError(key, violations) from None
    bad_names = [name for name in manifest.files if name == MANIFEST_NAME or not FILE_NAME_PATTERN.match(name)]
    if bad_names:
        raise ManifestError(key, [Violation(MANIFEST_NAME, "files", "file names are plain names of the month's files "
                                            "or parts <table>/part-NNNNN.csv",
                                            repr(bad_names[0]))])
    if manifest.month != month:
        raise ManifestError(key, [Violation(MANIFEST_NAME, "month", f"names month {manifest.month!r}, uploaded as {month}")])
    return manifest


def policy_keys_in(raw: dict[str, Any]) -> list[str]:
    """The policy keys (and aliases of them) a manifest carries, in file order."""
    return [key for key in raw if key in POLICY_KEYS or key in POLICY_ALIASES]


def policy_refusal(present: list[str]) -> Violation:
    """Why a manifest with policy keys is refused, and where policy is set instead."""
    parameters = ", ".join(dict.fromkeys(POLICY_KEYS.get(k) or POLICY_KEYS[POLICY_ALIASES[k]] for k in present))
    rule = (f"policy keys {', '.join(present)} are not accepted: promotion policy is set by the stack's template "
            f"parameters ({parameters}), not by the uploader; remove them from the manifest "
            "(a stack deployed with AllowManifestOverrides=true accepts checked values)")
    return Violation(MANIFEST_NAME, ",".join(present), rule)


def policy_overrides(key: str, manifest: Manifest, allow: bool,
                     month_exists: Callable[[str], bool]) -> dict[str, Any]:
    """The policy values a manifest may set: none when ``allow`` is off (any policy key is an
    error), else its valid values (types and ranges were checked by the model; a named
    reference month must exist). ManifestError otherwise."""
    raw = manifest.model_dump(exclude_unset=True)
    present = policy_keys_in(raw)
    if not present:
        return {}
    if not allow:
        raise ManifestError(key, [policy_refusal(present)])
    aliases = [k for k in present if k in POLICY_ALIASES]
    if aliases:
        raise ManifestError(key, [Violation(MANIFEST_NAME, k, f"unknown policy key, use {POLICY_ALIASES[k]!r}")
                                  for k in aliases])
    values = {k: raw[k] for k in present}
    reference = values.get("reference_month")
    if reference is not None:
        if reference == manifest.month:
            raise ManifestError(key, [Violation(MANIFEST_NAME, "reference_month",
                                                "must be another month than the one uploaded", reference)])
        if reference not in REFERENCE_MODES and not month_exists(reference):
            raise ManifestError(key, [Violation(MANIFEST_NAME, "reference_month",
                                                "names a month that has not been processed", reference)])
    return values  # typed by the model: threshold and delta are floats even when given as 1 or 0


def sha256_of_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def month_files_in(folder: Path) -> list[tuple[str, Path]]:
    """(name in the month, path) of every file of a month's folder: its plain files and the
    parts in its table folders (``users/part-00000.csv``); the manifest, hidden files and
    anything else are left out."""
    folder = Path(folder)
    found: list[tuple[str, Path]] = []
    for path in sorted(folder.iterdir()):
        if path.name.startswith("."):
            continue
        if path.is_file() and path.name != MANIFEST_NAME:
            found.append((path.name, path))
        elif path.is_dir():
            found += [(f"{path.name}/{part.name}", part) for part in sorted(path.iterdir())
                      if part.is_file() and PART_NAME.match(f"{path.name}/{part.name}")]
    return found


def manifest_for_folder(folder: Path, month: str | None = None) -> dict[str, Any]:
    """The manifest of every file in ``folder`` (its name is the month unless given), parts
    of partitioned tables included, hashed in 1 MiB chunks: what ``streamflow manifest
    <folder>`` writes."""
    folder = Path(folder)
    month = month or folder.name
    manifest = {"month": month,
                "files": {name: {"bytes": path.stat().st_size, "sha256": sha256_of_file(path)}
                          for name, path in month_files_in(folder)}}
    Manifest.model_validate(manifest)  # a folder that cannot make a valid manifest fails here, not at ingest
    return manifest


if __name__ == "__main__":
    print(json.dumps(json_schema(), indent=2))
