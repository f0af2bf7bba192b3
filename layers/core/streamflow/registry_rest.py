"""Read the MLflow registry over its REST API with the standard library: no ``import mlflow``.

``import mlflow`` costs about a second of an API cold start, and the API only ever reads
(which version an alias names, that version's tree scorer or pipeline). Against a plain
HTTP server whose artifacts it proxies, these reads are a few GETs. Anything else (a server
needing credentials or TLS settings, artifacts not proxied) is not handled here: the caller
(``registry``) falls back to MLflow's client.
"""

from __future__ import annotations

import hashlib
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from collections import OrderedDict
from typing import Any

# MLflow's answers when an alias (or the model) does not exist.
MISSING_CODES = ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND")
_AUTH_ENV = ("MLFLOW_TRACKING_TOKEN", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD",
             "MLFLOW_TRACKING_INSECURE_TLS", "MLFLOW_TRACKING_SERVER_CERT_PATH", "MLFLOW_TRACKING_CLIENT_CERT_PATH")


def plain_http(uri: str) -> bool:
    """An MLflow server reached with no credentials or TLS settings (else MLflow's client)."""
    return uri.startswith(("http://", "https://")) and not any(os.environ.get(k) for k in _AUTH_ENV)


def _get(url: str, timeout: float = 30.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.read()


def alias_version_tags(uri: str, model_name: str, alias: str) -> tuple[str | None, dict[str, str]]:
    """The version an alias names and its tags; ``(None, {})`` when it does not exist.
    Raises on anything else (the caller then asks MLflow's client)."""
    query = urllib.parse.urlencode({"name": model_name, "alias": alias})
    try:
        body = json.loads(_get(f"{uri.rstrip('/')}/api/2.0/mlflow/registered-models/alias?{query}"))
    except urllib.error.HTTPError as exc:
        try:
            code = json.loads(exc.read()).get("error_code")
        except ValueError:
            code = None
        if code in MISSING_CODES:
            return None, {}
        raise
    version = body["model_version"]
    return str(version["version"]), {t["key"]: t.get("value", "") for t in version.get("tags", [])}


def _artifacts(uri: str, model_name: str, version: str) -> tuple[str, dict[str, Any]]:
    """(artifact base URL through the server's proxy, the model's sklearn flavor)."""
    import yaml

    base = uri.rstrip("/")
    query = urllib.parse.urlencode({"name": model_name, "version": version})
    artifact_uri = json.loads(_get(f"{base}/api/2.0/mlflow/model-versions/get-download-uri?{query}"))["artifact_uri"]
    if not artifact_uri.startswith("mlflow-artifacts:"):
        raise ValueError(f"artifacts not served by the tracking server: {artifact_uri}")
    path = urllib.parse.urlsplit(artifact_uri).path.strip("/")
    artifacts = f"{base}/api/2.0/mlflow-artifacts/artifacts/{urllib.parse.quote(path)}"
    return artifacts, yaml.safe_load(_get(f"{artifacts}/MLmodel"))["flavors"]["sklearn"]


def scorer_json(uri: str, model_name: str, version: str) -> bytes | None:
    """The version's ``tree_scorer.json`` through the server's artifact proxy: three GETs
    (MLflow's artifact repository makes five: it asks for a presigned URL of each file
    first, which this server refuses); None when the version was logged without one.
    Raises when the registry answers otherwise (the caller then asks MLflow's client)."""
    artifacts, flavor = _artifacts(uri, model_name, version)
    path = scorer_path(flavor)
    return None if path is None else _get(f"{artifacts}/{urllib.parse.quote(path)}")


def scorer_path(flavor: dict[str, Any]) -> str | None:
    """Where the tree scorer lies among a sklearn flavor's ``extra_files`` (None: not logged)."""
    from .scorer import FILE_NAME

    paths = [entry.get("path", "") for entry in flavor.get("extra_files") or []]
    return next((p for p in paths if p.rsplit("/", 1)[-1] == FILE_NAME), None)


def load_scorer(uri: str, model_name: str, version: str):
    """The version's logged ``TreeScorer`` (plain JSON), or None when it has none or the
    registry is not a plain HTTP server (callers then load the pipeline)."""
    from .scorer import TreeScorer

    if not plain_http(uri):
        return None
    try:
        body = scorer_json(uri, model_name, version)
        return None if body is None else TreeScorer.from_json(body)
    except Exception:  # noqa: BLE001 - no scorer: the pipeline serves
        return None


def load_pipeline(uri: str, model_name: str, version: str, trusted_types: list[str]) -> Any:
    """The registered version's skops pipeline, fetched through the server's artifact proxy
    and loaded with our own allow-list (not the one the model file carries)."""
    artifacts, flavor = _artifacts(uri, model_name, version)
    if flavor.get("serialization_format") != "skops":
        raise ValueError(f"not a skops model: {flavor.get('serialization_format')}")
    data = _get(f"{artifacts}/{urllib.parse.quote(flavor['pickled_model'])}", timeout=120)
    return pipeline_from_skops(data, trusted_types)


# Pipelines already loaded in this process, by the SHA-256 of their skops file (and the
# allow-list): a warm Compare (or ScoreShards child) meets last month's challenger again as
# this month's champion, and loading one is skops rebuilding some hundreds of NumPy arrays
# (≈ 0.06 s of a 0.1 s load of the 10k model here, the rest is the fetch). Keyed by
# content, a registry that was reset (version numbers reused) cannot hand back a stale
# model. Models are only read (predict_proba), never changed.
PIPELINES_KEPT = 4
_pipelines: OrderedDict[tuple[str, tuple[str, ...]], Any] = OrderedDict()


def pipeline_from_skops(data: bytes, trusted_types: list[str]) -> Any:
    """The pipeline in a skops file, loaded once per content while it is among the last
    ``PIPELINES_KEPT`` loaded."""
    import skops.io

    key = (hashlib.sha256(data).hexdigest(), tuple(sorted(trusted_types)))
    if key in _pipelines:
        _pipelines.move_to_end(key)
        return _pipelines[key]
    pipeline = skops.io.loads(data, trusted=list(trusted_types))
    _pipelines[key] = pipeline
    if len(_pipelines) > PIPELINES_KEPT:
        _pipelines.popitem(last=False)
    return pipeline
