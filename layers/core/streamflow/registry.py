"""The MLflow model registry: log and register a challenger, read and move aliases.

Aliases, not stages: ``Production`` is the champion, ``Previous`` the one it replaced.
"""

from __future__ import annotations

import json
import os
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

PRODUCTION = "Production"
PREVIOUS = "Previous"
STAGING = "Staging"
HISTORY_TAG = "alias_history"
HISTORY_KEEP = 10  # entries kept in the tag (MLflow caps tag values at 5,000 characters)
TAG_VALUE_LIMIT = 5000
EXPERIMENT = "streamflow-churn"
# Declared, not inferred: MLflow's pip-requirement inference costs ≈ 10 s a model here,
# the declared list ≈ 0.4 s for log + register.
MODEL_PIP_REQUIREMENTS = ["scikit-learn", "pandas<3", "skops"]
# skops refuses types it has not been told to trust; this one is written by our own
# training step (the gradient-boosting trees), never by a user.
SKOPS_TRUSTED_TYPES = ["sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"]

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")


@dataclass(frozen=True)
class RegisteredModel:
    version: str
    run_id: str


def _mlflow(tracking_uri: str):
    import mlflow

    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    return mlflow


def client(tracking_uri: str):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def log_challenger(
    tracking_uri: str,
    model_name: str,
    model,
    example,
    params: dict,
    metrics: dict,
    tags: dict,
) -> RegisteredModel:
    """One MLflow run holding the model, registered as a new version of ``model_name``."""
    mlflow = _mlflow(tracking_uri)
    from mlflow.models import infer_signature

    from . import scorer_export
    from .scorer import FILE_NAME

    mlflow.set_experiment(EXPERIMENT)
    signature = infer_signature(example, model.predict_proba(example)[:, 1])
    scorer = scorer_export.build(model, rows=example.head(256).to_dict("index"))
    with tempfile.TemporaryDirectory() as tmp, mlflow.start_run(run_name=f"train-{tags.get('month', '')}") as run:
        extra_files = None
        if scorer is not None:  # the API serves from this when present (see scorer_export.py)
            path = os.path.join(tmp, FILE_NAME)
            with open(path, "w") as handle:
                handle.write(scorer.to_json())
            extra_files = [path]
        mlflow.set_tags(tags)
        mlflow.log_params(params)
        mlflow.log_metrics(metrics)
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            signature=signature,
            # No input_example: MLflow would check that it serves (a pyfunc round trip
            # predicting on it), seconds of every TrainChallenger (see bench/); the
            # signature above is the model's input contract.
            pip_requirements=MODEL_PIP_REQUIREMENTS,
            skops_trusted_types=SKOPS_TRUSTED_TYPES,
            registered_model_name=model_name,
            extra_files=extra_files,
        )
    version = str(info.registered_model_version)
    mlflow_client = client(tracking_uri)
    for key, value in tags.items():
        mlflow_client.set_model_version_tag(model_name, version, key, str(value))
    return RegisteredModel(version=version, run_id=run.info.run_id)


def alias_version(tracking_uri: str, model_name: str, alias: str = PRODUCTION) -> str | None:
    """The version an alias names, or None when the alias (or the model) does not exist."""
    if _plain_http(tracking_uri):
        try:
            return _rest_alias_version(tracking_uri, model_name, alias)
        except Exception:  # noqa: BLE001 - MLflow's client answers (or raises) instead
            pass
    from mlflow.exceptions import MlflowException

    try:
        return str(client(tracking_uri).get_model_version_by_alias(model_name, alias).version)
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):
            return None
        raise


def alias_version_tags(tracking_uri: str, model_name: str, alias: str = PRODUCTION) -> tuple[str | None, dict[str, str]]:
    """The version an alias names and its tags (e.g. ``month``: what it was trained on);
    ``(None, {})`` when the alias does not exist. One call (plain REST when it can)."""
    if _plain_http(tracking_uri):
        try:
            query = urllib.parse.urlencode({"name": model_name, "alias": alias})
            body = json.loads(_get(f"{tracking_uri.rstrip('/')}/api/2.0/mlflow/registered-models/alias?{query}"))
            version = body["model_version"]
            return str(version["version"]), {t["key"]: t.get("value", "") for t in version.get("tags", [])}
        except urllib.error.HTTPError as exc:
            try:
                code = json.loads(exc.read()).get("error_code")
            except ValueError:
                code = None
            if code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):  # as alias_version
                return None, {}
        except Exception:  # noqa: BLE001 - MLflow's client answers (or raises) instead
            pass
    from mlflow.exceptions import MlflowException

    try:
        version = client(tracking_uri).get_model_version_by_alias(model_name, alias)
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):
            return None, {}
        raise
    return str(version.version), dict(version.tags or {})


def load_version(tracking_uri: str, model_name: str, version: str):
    """The scikit-learn pipeline of one registered version (so predict_proba is there).

    From a plain HTTP MLflow server whose artifacts it proxies, a skops model is fetched
    with two REST calls and loaded with our own skops allow-list: no ``import mlflow``
    (≈ 1 s of an API cold start) and no download of the model's other files. Anything
    else, or any surprise on that path, goes through MLflow's client.
    """
    if _plain_http(tracking_uri):
        try:
            return _load_version_over_rest(tracking_uri, model_name, version)
        except Exception:  # noqa: BLE001 - MLflow's client answers (or raises) instead
            pass
    mlflow = _mlflow(tracking_uri)
    return mlflow.sklearn.load_model(f"models:/{model_name}/{version}")


# --- registered models without importing MLflow --------------------------------------------
_AUTH_ENV = ("MLFLOW_TRACKING_TOKEN", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD",
             "MLFLOW_TRACKING_INSECURE_TLS", "MLFLOW_TRACKING_SERVER_CERT_PATH", "MLFLOW_TRACKING_CLIENT_CERT_PATH")


def _plain_http(uri: str) -> bool:
    """An MLflow server reached with no credentials or TLS settings (else MLflow's client)."""
    return uri.startswith(("http://", "https://")) and not any(os.environ.get(k) for k in _AUTH_ENV)


def _get(url: str, timeout: float = 30.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.read()


def _rest_alias_version(uri: str, model_name: str, alias: str) -> str | None:
    query = urllib.parse.urlencode({"name": model_name, "alias": alias})
    try:
        body = json.loads(_get(f"{uri.rstrip('/')}/api/2.0/mlflow/registered-models/alias?{query}"))
    except urllib.error.HTTPError as exc:
        try:
            code = json.loads(exc.read()).get("error_code")
        except ValueError:
            code = None
        if code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):  # as alias_version
            return None
        raise
    return str(body["model_version"]["version"])


def _artifacts_over_rest(uri: str, model_name: str, version: str) -> tuple[str, dict[str, Any]]:
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


def load_scorer(tracking_uri: str, model_name: str, version: str):
    """The version's logged ``TreeScorer`` (plain JSON), or None when it has none or the
    registry is not a plain HTTP server (callers then load the pipeline)."""
    from .scorer import FILE_NAME, TreeScorer

    if not _plain_http(tracking_uri):
        return None
    try:
        artifacts, flavor = _artifacts_over_rest(tracking_uri, model_name, version)
        paths = [entry.get("path", "") for entry in flavor.get("extra_files") or []]
        path = next((p for p in paths if p.rsplit("/", 1)[-1] == FILE_NAME), None)
        if path is None:
            return None
        return TreeScorer.from_json(_get(f"{artifacts}/{urllib.parse.quote(path)}"))
    except Exception:  # noqa: BLE001 - no scorer: the pipeline serves
        return None


def _load_version_over_rest(uri: str, model_name: str, version: str) -> Any:
    """The registered version's skops pipeline, fetched through the server's artifact proxy."""
    import skops.io

    artifacts, flavor = _artifacts_over_rest(uri, model_name, version)
    if flavor.get("serialization_format") != "skops":
        raise ValueError(f"not a skops model: {flavor.get('serialization_format')}")
    data = _get(f"{artifacts}/{urllib.parse.quote(flavor['pickled_model'])}", timeout=120)
    # Our own allow-list, not the one the model file carries.
    return skops.io.loads(data, trusted=list(SKOPS_TRUSTED_TYPES))


def tag_version(tracking_uri: str, model_name: str, version: str, tags: dict) -> None:
    mlflow_client = client(tracking_uri)
    for key, value in tags.items():
        mlflow_client.set_model_version_tag(model_name, version, key, str(value))


def move_alias(tracking_uri: str, model_name: str, alias: str, version: str) -> None:
    client(tracking_uri).set_registered_model_alias(model_name, alias, version)


def delete_alias(tracking_uri: str, model_name: str, alias: str) -> None:
    """Remove an alias; no error when it is already gone."""
    from mlflow.exceptions import MlflowException

    try:
        client(tracking_uri).delete_registered_model_alias(model_name, alias)
    except MlflowException as exc:
        if exc.error_code not in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):
            raise


def appended_history(current: str, entry: dict[str, Any]) -> str:
    """The history tag's value with ``entry`` appended: the newest ``HISTORY_KEEP`` entries,
    fewer when they would not fit MLflow's 5,000 characters (an unreadable tag restarts)."""
    try:
        history = json.loads(current)
    except ValueError:
        history = []
    if not isinstance(history, list):
        history = []
    history = (history + [entry])[-HISTORY_KEEP:]
    encoded = json.dumps(history, separators=(",", ":"))
    while len(encoded) > TAG_VALUE_LIMIT and len(history) > 1:
        history = history[1:]
        encoded = json.dumps(history, separators=(",", ":"))
    return encoded


def record_alias_move(tracking_uri: str, model_name: str, version: str, alias: str, action: str,
                      by: str, reason: str, at: str, **details: Any) -> None:
    """Append who moved which alias onto/off this version, when and why, to its tags.

    The latest move is also spelled out in plain tags so the MLflow UI shows it at a glance.
    """
    mlflow_client = client(tracking_uri)
    current = mlflow_client.get_model_version(model_name, version).tags.get(HISTORY_TAG, "[]")
    entry = {"alias": alias, "action": action, "at": at, "by": by, "reason": reason,
             **{k: v for k, v in details.items() if v is not None}}
    mlflow_client.set_model_version_tag(model_name, version, HISTORY_TAG, appended_history(current, entry))
    prefix = alias.lower()
    for key, value in (("action", action), ("at", at), ("by", by), ("reason", reason)):
        mlflow_client.set_model_version_tag(model_name, version, f"{prefix}_{key}", str(value)[:TAG_VALUE_LIMIT])
