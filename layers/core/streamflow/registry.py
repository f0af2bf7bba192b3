"""The MLflow model registry: log and register a challenger, read and move aliases.

Aliases, not stages: ``Production`` is the champion, ``Previous`` the one it replaced.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

PRODUCTION = "Production"
PREVIOUS = "Previous"
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
