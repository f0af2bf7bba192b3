"""The MLflow model registry: log and register a challenger, read and move aliases.

Aliases, not stages: ``Production`` is the champion, ``Previous`` the one it replaced.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

PRODUCTION = "Production"
PREVIOUS = "Previous"
STAGING = "Staging"
HISTORY_TAG = "alias_history"
HISTORY_KEEP = 10  # entries kept in the tag (MLflow caps tag values at 5,000 characters)
EXPERIMENT = "streamflow-churn"
# Declared, not inferred: inference costs ~10 s a model (measured in DESIGN.md).
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

    mlflow.set_experiment(EXPERIMENT)
    signature = infer_signature(example, model.predict_proba(example)[:, 1])
    with mlflow.start_run(run_name=f"train-{tags.get('month', '')}") as run:
        mlflow.set_tags(tags)
        mlflow.log_params(params)
        mlflow.log_metrics(metrics)
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            signature=signature,
            input_example=example.head(3),
            pip_requirements=MODEL_PIP_REQUIREMENTS,
            skops_trusted_types=SKOPS_TRUSTED_TYPES,
            registered_model_name=model_name,
        )
    version = str(info.registered_model_version)
    mlflow_client = client(tracking_uri)
    for key, value in tags.items():
        mlflow_client.set_model_version_tag(model_name, version, key, str(value))
    return RegisteredModel(version=version, run_id=run.info.run_id)


def alias_version(tracking_uri: str, model_name: str, alias: str = PRODUCTION) -> str | None:
    """The version an alias names, or None when the alias (or the model) does not exist."""
    from mlflow.exceptions import MlflowException

    try:
        return str(client(tracking_uri).get_model_version_by_alias(model_name, alias).version)
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):
            return None
        raise


def load_version(tracking_uri: str, model_name: str, version: str):
    """The scikit-learn pipeline of one registered version (so predict_proba is there)."""
    mlflow = _mlflow(tracking_uri)
    return mlflow.sklearn.load_model(f"models:/{model_name}/{version}")


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


def record_alias_move(tracking_uri: str, model_name: str, version: str, alias: str, action: str,
                      by: str, reason: str, at: str, **details: Any) -> None:
    """Append who moved which alias onto/off this version, when and why, to its tags.

    The latest move is also spelled out in plain tags so the MLflow UI shows it at a glance.
    """
    mlflow_client = client(tracking_uri)
    current = mlflow_client.get_model_version(model_name, version).tags.get(HISTORY_TAG, "[]")
    try:
        history = json.loads(current)
    except ValueError:
        history = []
    entry = {"alias": alias, "action": action, "at": at, "by": by, "reason": reason,
             **{k: v for k, v in details.items() if v is not None}}
    history = (history + [entry])[-HISTORY_KEEP:]
    encoded = json.dumps(history, separators=(",", ":"))
    while len(encoded) > 5000 and len(history) > 1:
        history = history[1:]
        encoded = json.dumps(history, separators=(",", ":"))
    mlflow_client.set_model_version_tag(model_name, version, HISTORY_TAG, encoded)
    prefix = alias.lower()
    for key, value in (("action", action), ("at", at), ("by", by), ("reason", reason)):
        mlflow_client.set_model_version_tag(model_name, version, f"{prefix}_{key}", str(value)[:5000])
