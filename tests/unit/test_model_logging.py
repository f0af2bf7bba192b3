"""What TrainChallenger logs and Compare loads, against a real MLflow registry (SQLite, files
in a temporary folder): the logged signature is the one all the training rows give, though
only a head of them is scored for it; a pipeline is loaded once per skops file's content."""

from __future__ import annotations

import pytest
import skops.io
from streamflow import registry, registry_rest
from streamflow.contract import check_month
from streamflow.features import build_features
from streamflow.generator import generate_month, month_csv_bytes
from streamflow.scorer_export import checked
from streamflow.split import split_by_user
from streamflow.training import model_input, train

MODEL = "streamflow_churn"


@pytest.fixture(scope="module")
def trained():
    frame = build_features(check_month(month_csv_bytes(generate_month(1, n_users=3000, seed=5))).tables)
    rows = split_by_user(frame)[0]
    assert len(rows) > registry.SIGNATURE_ROWS  # else the head would be every row
    return train(rows), model_input(rows)


def test_the_logged_signature_is_that_of_every_training_row(trained, tmp_path, monkeypatch):
    import mlflow
    from mlflow.models import infer_signature

    model, example = trained
    monkeypatch.chdir(tmp_path)  # the SQLite store's artifacts go under ./mlruns
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    registered = registry.log_challenger(uri, MODEL, model, example, params={}, metrics={"val_auc": 0.5},
                                         tags={"month": "month_001"}, scorer=checked(model, None))
    logged = mlflow.models.get_model_info(f"models:/{MODEL}/{registered.version}").signature
    assert logged.to_dict() == infer_signature(example, model.predict_proba(example)[:, 1]).to_dict()


def test_a_version_is_created_with_its_tags(trained, tmp_path, monkeypatch):
    """No reader ever sees the new version without its ``month`` (one call, not one per tag);
    the run and the logged model hold what ``log_model(registered_model_name=…)`` left."""
    import json

    from mlflow import MlflowClient
    from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore

    model, example = trained
    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    created = []
    real = SqlAlchemyStore.create_model_version
    monkeypatch.setattr(SqlAlchemyStore, "create_model_version",
                        lambda self, *a, **k: created.append(real(self, *a, **k)) or created[-1])
    tags = {"month": "month_002", "val_auc": 0.75, "reference_month": "none"}
    for _ in range(2):  # the registered model created, then found
        registered = registry.log_challenger(uri, MODEL, model, example, params={"train_rows": len(example)},
                                             metrics={"val_auc": 0.75}, tags=tags, scorer=checked(model, None))
    expected = {key: str(value) for key, value in tags.items()}
    assert [dict(version.tags) for version in created] == [expected, expected]
    client = MlflowClient(uri, uri)
    version = client.get_model_version(MODEL, registered.version)
    assert version.tags == expected and version.run_id == registered.run_id
    run = client.get_run(registered.run_id)
    assert run.data.params == {"train_rows": str(len(example))} and run.data.metrics == {"val_auc": 0.75}
    assert expected.items() <= run.data.tags.items() and run.info.run_name == "train-month_002"
    logged = client.get_logged_model(version.source.removeprefix("models:/"))
    listed = json.loads(logged.tags["mlflow.modelVersions"])
    assert [(entry["name"], str(entry["version"])) for entry in listed] == [(MODEL, registered.version)]
    assert logged.source_run_id == registered.run_id and [m.key for m in logged.metrics] == ["val_auc"]


def test_a_pipeline_is_loaded_once_per_file_content(trained, monkeypatch):
    model, example = trained
    trusted = registry.SKOPS_TRUSTED_TYPES
    data = skops.io.dumps(model)
    loads = []
    real = skops.io.loads
    monkeypatch.setattr(skops.io, "loads", lambda d, trusted: loads.append(d) or real(d, trusted=trusted))
    monkeypatch.setattr(registry_rest, "_pipelines", type(registry_rest._pipelines)())
    first = registry_rest.pipeline_from_skops(data, trusted)
    assert registry_rest.pipeline_from_skops(bytes(data), trusted) is first and len(loads) == 1
    assert (first.predict_proba(example.head(50)) == model.predict_proba(example.head(50))).all()
    # Other content (another model) is loaded; the oldest beyond PIPELINES_KEPT is dropped.
    others = [skops.io.dumps(train_rows) for train_rows in _other_models(trained, registry_rest.PIPELINES_KEPT)]
    for other in others:
        assert registry_rest.pipeline_from_skops(other, trusted) is not first
    assert len(loads) == 1 + len(others)
    assert registry_rest.pipeline_from_skops(data, trusted) is not first and len(loads) == 2 + len(others)


def _other_models(trained, count):
    """``count`` models whose skops files differ from the fixture's (one more tree each)."""
    from sklearn.base import clone

    model, example = trained
    labels = model.predict(example)
    models = []
    for extra in range(1, count + 1):
        other = clone(model)
        other.set_params(model__max_iter=5 + extra)
        models.append(other.fit(example, labels))
    return models
