"""The champion pinned in the API function's own configuration: its version and an S3 copy
of its tree scorer, so the API cold-starts without a registry call.

Why a copy: the registry's artifact location depends on how the registry is run (proxied
``mlflow-artifacts:`` URIs locally, a SageMaker bucket, a server behind credentials), and
reading it would give the API the registry's credentials or a wide S3 grant. Promote (and
rollback) fetch ``tree_scorer.json`` from the registry, which they talk to anyway, put it at
``<SERVING_PREFIX><version>/tree_scorer.json`` in the stack's data bucket, and write
``CHAMPION_VERSION``, ``CHAMPION_SCORER_URI`` and ``CHAMPION_SCORER_SHA256`` in one
configuration update. The API reads exactly that object with its own role (``s3:GetObject``
on the prefix, template.yaml) and checks its SHA-256 before serving it.

The functions above the I/O line are pure.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

from .scorer import FILE_NAME

CHAMPION_ENV = "CHAMPION_VERSION"
SCORER_URI_ENV = "CHAMPION_SCORER_URI"
SCORER_SHA_ENV = "CHAMPION_SCORER_SHA256"
# What Promote writes into the API's environment (a local re-deploy keeps them, see deploy.py).
PIN_VARIABLES = (CHAMPION_ENV, SCORER_URI_ENV, SCORER_SHA_ENV)


class ScorerCopyMismatch(RuntimeError):
    """The object at the pinned location is not the scorer Promote pinned (changed or partial)."""


@dataclass(frozen=True)
class ScorerCopy:
    uri: str
    sha256: str


@dataclass(frozen=True)
class Pin:
    version: str
    scorer: ScorerCopy | None  # None: a version without a copy (served through the registry)


def split_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/key`` → (bucket, key); a readable error for anything else."""
    if not uri.startswith("s3://"):
        raise ValueError(f"not an s3:// location: {uri!r}")
    bucket, _, key = uri[len("s3://"):].partition("/")
    if not bucket or not key:
        raise ValueError(f"an s3:// location needs a bucket and a key: {uri!r}")
    return bucket, key


def scorer_uri(prefix: str, version: str) -> str:
    """Where the copy of ``version``'s scorer lives under the stack's serving prefix."""
    split_s3_uri(prefix + FILE_NAME)  # the prefix itself must name a bucket
    if not prefix.endswith("/"):
        raise ValueError(f"a serving prefix ends with '/': {prefix!r}")
    if not version or "/" in version:
        raise ValueError(f"not a model version: {version!r}")
    return f"{prefix}{version}/{FILE_NAME}"


def check_under_prefix(uri: str, prefix: str) -> None:
    """The API reads only below its own prefix (what its role may read); no prefix: any."""
    split_s3_uri(uri)
    if prefix and not uri.startswith(prefix):
        raise ValueError(f"pinned scorer {uri} is outside this function's serving prefix {prefix}")


def sha256_hex(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def verify(body: bytes, expected: str) -> bytes:
    """``body`` when its SHA-256 is the pinned one (else ScorerCopyMismatch)."""
    actual = sha256_hex(body)
    if actual != expected:
        raise ScorerCopyMismatch(f"scorer copy has SHA-256 {actual}, the pin says {expected}")
    return body


def pinned_variables(variables: Mapping[str, str], pin: Pin) -> dict[str, str]:
    """The API's environment with ``pin`` written in; the copy's variables removed when the
    version has none, so a stale copy of another version is never served."""
    out = {k: v for k, v in variables.items() if k not in PIN_VARIABLES}
    out[CHAMPION_ENV] = pin.version
    if pin.scorer is not None:
        out[SCORER_URI_ENV] = pin.scorer.uri
        out[SCORER_SHA_ENV] = pin.scorer.sha256
    return out


def read_pin(env: Mapping[str, str]) -> Pin | None:
    """The pin in an environment, or None (nothing pinned: an older deploy or no champion yet)."""
    version = env.get(CHAMPION_ENV, "").strip()
    if not version:
        return None
    uri, sha = env.get(SCORER_URI_ENV, "").strip(), env.get(SCORER_SHA_ENV, "").strip()
    return Pin(version=version, scorer=ScorerCopy(uri=uri, sha256=sha) if uri and sha else None)


# --- I/O -------------------------------------------------------------------------------------

def publish_scorer(prefix: str, version: str, body: bytes) -> ScorerCopy:
    """Put ``body`` (the version's ``tree_scorer.json``, already parsed once by the caller) at
    its serving location; the same bytes again are a no-op in effect (same key, same hash)."""
    from . import storage

    uri = scorer_uri(prefix, version)
    bucket, key = split_s3_uri(uri)
    storage.put_bytes(bucket, key, body, content_type="application/json")
    return ScorerCopy(uri=uri, sha256=sha256_hex(body))


def read_scorer(copy: ScorerCopy, prefix: str):
    """The pinned scorer, read from S3 with this function's own role and checked."""
    from . import storage
    from .scorer import TreeScorer

    check_under_prefix(copy.uri, prefix)
    bucket, key = split_s3_uri(copy.uri)
    return TreeScorer.from_json(verify(storage.get_bytes(bucket, key), copy.sha256))
