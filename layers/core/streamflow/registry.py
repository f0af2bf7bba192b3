"""The MLflow model registry through MLflow's client: log and register a challenger, read
and move aliases.

Aliases, not stages: ``Production`` is the champion, ``Previous`` the one it replaced.
Reads try ``registry_rest`` first (no ``import mlflow``: the API's cold start) and fall back
to MLflow's client for any server that path cannot talk to. The history of alias moves is
``alias_history``.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass

from . import registry_plugin, registry_rest
from .registry_rest import MISSING_CODES

PRODUCTION = "Production"
PREVIOUS = "Previous"
STAGING = "Staging"
EXPERIMENT = "streamflow-churn"
# Declared, not inferred: MLflow's pip-requirement inference costs ≈ 10 s a model here,
# the declared list ≈ 0.4 s for log + register.
MODEL_PIP_REQUIREMENTS = ["scikit-learn", "pandas<3", "skops"]
# skops refuses types it has not been told to trust; this one is written by our own
# training step (the gradient-boosting trees), never by a user.
SKOPS_TRUSTED_TYPES = ["sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"]

SIGNATURE_ROWS = 1000
OUTPUT_SIGNATURE_ROWS = 5

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
# No "View run at" lines: MLflow fetches the run again at its end to print them.
os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")


@dataclass(frozen=True)
class RegisteredModel:
    version: str
    run_id: str


def _mlflow(tracking_uri: str):
    import mlflow

    registry_plugin.quiet_outside_arn()
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    return mlflow


def client(tracking_uri: str):
    from mlflow import MlflowClient

    registry_plugin.quiet_outside_arn()
    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def _registry_client(mlflow_client):
    """The registry client ``MlflowClient``'s model calls end in, past their prompt check: a
    GET of the whole registered model (its versions included) before each alias or tag
    write, one more round trip per call for a model that is never a prompt (see
    ``set_version_tags``). MLflow is pinned; the public client is the fallback if it moves."""
    registry_client = getattr(mlflow_client, "_get_registry_client", None)
    return registry_client() if registry_client else mlflow_client


def set_version_tags(mlflow_client, model_name: str, version: str, tags: dict) -> None:
    """Set each tag on a model version.

    ``MlflowClient.set_model_version_tag`` first fetches the registered model to refuse
    prompts (MLflow 3): one more round trip per tag, 27 of the ≈ 95 registry calls of a
    month that is retrained and promoted. Our model is never a prompt, so the tags go to the
    registry client that method calls next (MLflow is pinned; the public call is the
    fallback if that ever moves).
    """
    set_tag = _registry_client(mlflow_client).set_model_version_tag
    for key, value in tags.items():
        set_tag(model_name, version, key, str(value))


def delete_version_tag(mlflow_client, model_name: str, version: str, key: str) -> None:
    """Delete a model version's tag, past the same prompt check as ``set_version_tags``."""
    _registry_client(mlflow_client).delete_model_version_tag(model_name, version, key)


def log_challenger(
    tracking_uri: str,
    model_name: str,
    model,
    example,
    params: dict,
    metrics: dict,
    tags: dict,
    scorer,
) -> RegisteredModel:
    """One MLflow run holding the model and its checked tree scorer (what the API serves
    from, see scorer_export.py), registered as a new version of ``model_name``.

    What ``log_model(registered_model_name=…)`` then one ``set_model_version_tag`` per tag
    would leave in the registry, in ≈ 19 REST calls instead of ≈ 31 (each ≈ 10 ms here): the
    run's tags go with its creation, params and metrics in one batch, the version is created
    with its tags."""
    mlflow = _mlflow(tracking_uri)
    from mlflow.entities import Metric, Param
    from mlflow.models import infer_signature
    from mlflow.utils.time import get_current_time_millis

    from .scorer import FILE_NAME

    # The signature is the columns' names and types: a head of the rows gives the same one
    # as all of them (scoring and inspecting every training row cost ≈ 0.1 s at 10k users),
    # and the output's (float64, one column) is that of a few predictions (≈ 3 ms, not 12).
    head = example.head(SIGNATURE_ROWS)
    signature = infer_signature(head, model.predict_proba(head.head(OUTPUT_SIGNATURE_ROWS))[:, 1])
    mlflow_client = client(tracking_uri)
    with tempfile.TemporaryDirectory() as tmp, _start_run(mlflow, tracking_uri, tags) as run:
        path = os.path.join(tmp, FILE_NAME)
        with open(path, "w") as handle:
            handle.write(scorer.to_json())
        run_id, now = run.info.run_id, get_current_time_millis()
        mlflow_client.log_batch(run_id, metrics=[Metric(k, v, now, 0, run_id=run_id) for k, v in metrics.items()],
                                params=[Param(k, str(v)) for k, v in params.items()])
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            signature=signature,
            # No input_example: MLflow would check that it serves (a pyfunc round trip
            # predicting on it), seconds of every TrainChallenger (see bench/); the
            # signature above is the model's input contract.
            pip_requirements=MODEL_PIP_REQUIREMENTS,
            skops_trusted_types=SKOPS_TRUSTED_TYPES,
            extra_files=[path],
        )
        version = _register(mlflow_client, model_name, info.model_id, tags)
    return RegisteredModel(version=version, run_id=run.info.run_id)


# Experiment id by tracking URI: a warm TrainChallenger worker logs a run every month.
_experiment_ids: dict[str, str] = {}


def _start_run(mlflow, tracking_uri: str, tags: dict):
    """``mlflow.start_run`` in the ``EXPERIMENT`` (looked up once per process and URI; looked
    up again if that id is missing or deleted), the run's tags set as it is created."""
    from mlflow.exceptions import MlflowException

    run_name, tags = f"train-{tags.get('month', '')}", {key: str(value) for key, value in tags.items()}
    cached = _experiment_ids.get(tracking_uri)
    if cached is not None:
        try:
            return mlflow.start_run(experiment_id=cached, run_name=run_name, tags=tags)
        except MlflowException as exc:
            if exc.error_code not in MISSING_CODES:  # e.g. unreachable: not worth a second try
                raise
            _experiment_ids.pop(tracking_uri, None)
    experiment_id = mlflow.set_experiment(EXPERIMENT).experiment_id
    _experiment_ids[tracking_uri] = experiment_id
    return mlflow.start_run(experiment_id=experiment_id, run_name=run_name, tags=tags)


def _register(mlflow_client, model_name: str, model_id: str, tags: dict) -> str:
    """A new version of ``model_name`` (created if missing) from a logged model, with its tags,
    as ``log_model(registered_model_name=…)`` registers one (source ``models:/<model_id>``; the
    logged model's ``mlflow.modelVersions`` tag names the version) but in one call, tags
    included, when the registered model exists. The server creates it READY (no polling)."""
    from mlflow.exceptions import MlflowException
    from mlflow.utils.mlflow_tags import MLFLOW_MODEL_VERSIONS

    def create():
        return mlflow_client.create_model_version(model_name, f"models:/{model_id}", tags=tags, model_id=model_id)

    try:
        version = create()
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        try:
            mlflow_client.create_registered_model(model_name)
        except MlflowException as again:  # created meanwhile by another worker
            if again.error_code not in ("RESOURCE_ALREADY_EXISTS", "ALREADY_EXISTS"):
                raise
        version = create()
    # An MLflow server names the version in the logged model's tag as it creates it (MLflow's
    # client then appended the same entry again, the version as a string); other stores
    # (a local database) leave it to the client.
    entry = {"name": model_name, "version": version.version}
    listed = json.loads(mlflow_client.get_logged_model(model_id).tags.get(MLFLOW_MODEL_VERSIONS) or "[]")
    if not any(e.get("name") == model_name and str(e.get("version")) == str(version.version) for e in listed):
        mlflow_client.set_logged_model_tags(model_id, {MLFLOW_MODEL_VERSIONS: json.dumps([*listed, entry])})
    return str(version.version)


def alias_version(tracking_uri: str, model_name: str, alias: str = PRODUCTION) -> str | None:
    """The version an alias names, or None when the alias (or the model) does not exist."""
    return alias_version_tags(tracking_uri, model_name, alias)[0]


def alias_version_tags(tracking_uri: str, model_name: str, alias: str = PRODUCTION) -> tuple[str | None, dict[str, str]]:
    """The version an alias names and its tags (e.g. ``month``: what it was trained on);
    ``(None, {})`` when the alias does not exist. One call (plain REST when it can)."""
    if registry_rest.plain_http(tracking_uri):
        try:
            return registry_rest.alias_version_tags(tracking_uri, model_name, alias)
        except Exception:  # noqa: BLE001 - MLflow's client answers (or raises) instead
            pass
    from mlflow.exceptions import MlflowException

    try:
        version = client(tracking_uri).get_model_version_by_alias(model_name, alias)
    except MlflowException as exc:
        if exc.error_code in MISSING_CODES:
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
    if registry_rest.plain_http(tracking_uri):
        try:
            return registry_rest.load_pipeline(tracking_uri, model_name, version, SKOPS_TRUSTED_TYPES)
        except Exception:  # noqa: BLE001 - MLflow's client answers (or raises) instead
            pass
    mlflow = _mlflow(tracking_uri)
    return mlflow.sklearn.load_model(f"models:/{model_name}/{version}")


def scorer_json(tracking_uri: str, model_name: str, version: str) -> bytes | None:
    """The ``tree_scorer.json`` logged with a version (plain REST when it can, else MLflow's
    client: any server and any credentials MLflow itself reads); None when the version was
    logged without one. Promote copies it to where the API reads it (``champion_pin``)."""
    if registry_rest.plain_http(tracking_uri):
        try:
            return registry_rest.scorer_json(tracking_uri, model_name, version)
        except Exception:  # noqa: BLE001 - MLflow's client answers (or raises) instead
            pass
    import yaml
    from mlflow.store.artifact.models_artifact_repo import ModelsArtifactRepository

    _mlflow(tracking_uri)
    repo = ModelsArtifactRepository(f"models:/{model_name}/{version}")
    with tempfile.TemporaryDirectory() as tmp:
        with open(repo.download_artifacts("MLmodel", tmp)) as handle:
            flavor = (yaml.safe_load(handle).get("flavors") or {}).get("sklearn") or {}
        path = registry_rest.scorer_path(flavor)
        if path is None:
            return None
        with open(repo.download_artifacts(path, tmp), "rb") as handle:
            return handle.read()


def tag_version(tracking_uri: str, model_name: str, version: str, tags: dict) -> None:
    set_version_tags(client(tracking_uri), model_name, version, tags)


def move_alias(tracking_uri: str, model_name: str, alias: str, version: str) -> None:
    _registry_client(client(tracking_uri)).set_registered_model_alias(model_name, alias, version)


def delete_alias(tracking_uri: str, model_name: str, alias: str) -> None:
    """Remove an alias; no error when it is already gone."""
    from mlflow.exceptions import MlflowException

    try:
        _registry_client(client(tracking_uri)).delete_registered_model_alias(model_name, alias)
    except MlflowException as exc:
        if exc.error_code not in MISSING_CODES:
            raise
