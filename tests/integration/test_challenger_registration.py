"""TrainChallenger's logging and registration against a real ``mlflow server`` (SQLite,
artifacts proxied from a local folder): what it leaves in the registry, in how many REST
calls (each ≈ 10 ms here; ``log_model(registered_model_name=…)`` then one call per version
tag made 31 of them a month)."""

from __future__ import annotations

import json

import pytest
import requests
from streamflow import registry, registry_rest
from streamflow.contract import check_month
from streamflow.features import build_features
from streamflow.generator import generate_month, month_csv_bytes
from streamflow.scorer_export import checked
from streamflow.split import split_by_user
from streamflow.training import model_input, train
from mlflow_server import plain_mlflow_server

MODEL = "challenger_registration"
MOST_CALLS = 20  # a month after the first (experiment and registered model known)


@pytest.fixture(scope="module")
def mlflow_uri(tmp_path_factory):
    with plain_mlflow_server(tmp_path_factory.mktemp("mlflow")) as uri:
        yield uri


@pytest.fixture(scope="module")
def trained():
    frame = build_features(check_month(month_csv_bytes(generate_month(1, n_users=3000, seed=5))).tables)
    rows = split_by_user(frame)[0]
    model = train(rows)
    return model, model_input(rows)


def test_a_challenger_is_logged_and_registered_in_few_calls(mlflow_uri, trained, monkeypatch):
    model, example = trained
    scorer = checked(model, example.head(64).to_dict("index"))
    tags = {"month": "month_001", "val_auc": 0.8125, "execution": "exec-1", "drift_share": "", "reference_month": "none"}
    params = {"train_rows": len(example), "training_users": len(example), "month": "month_001", "sampled": False}

    def log():
        return registry.log_challenger(mlflow_uri, MODEL, model, example, params=params,
                                       metrics={"val_auc": 0.8125}, tags=tags, scorer=scorer)

    log()  # the first month creates the experiment and the registered model
    calls = []
    real = requests.Session.request
    monkeypatch.setattr(requests.Session, "request",
                        lambda self, method, url, *a, **k: calls.append((method, url)) or real(self, method, url, *a, **k))
    registered = log()
    monkeypatch.undo()
    assert len(calls) <= MOST_CALLS, "\n".join(f"{method} {url}" for method, url in calls)

    client = registry.client(mlflow_uri)
    version = client.get_model_version(MODEL, registered.version)
    assert version.tags == {key: str(value) for key, value in tags.items()}
    assert version.run_id == registered.run_id and version.status == "READY"
    run = client.get_run(registered.run_id)
    assert run.data.params == {key: str(value) for key, value in params.items()}
    assert run.data.metrics == {"val_auc": 0.8125} and run.info.status == "FINISHED"
    assert {key: str(value) for key, value in tags.items()}.items() <= run.data.tags.items()
    model_id = version.source.removeprefix("models:/")
    logged = client.get_logged_model(model_id)
    assert logged.source_run_id == registered.run_id and logged.params == run.data.params
    assert [(m.key, m.value) for m in logged.metrics] == [("val_auc", 0.8125)]
    listed = json.loads(logged.tags["mlflow.modelVersions"])
    assert [(entry["name"], str(entry["version"])) for entry in listed] == [(MODEL, registered.version)]
    files = {artifact.path for artifact in client.list_logged_model_artifacts(model_id)}
    assert {"MLmodel", "model.skops", "requirements.txt", "conda.yaml", "python_env.yaml", "extra_files"} <= files
    # What Compare, Promote and the API read back: the pipeline, the tree scorer, the tags.
    assert (registry.load_version(mlflow_uri, MODEL, registered.version).predict_proba(example.head(20))
            == model.predict_proba(example.head(20))).all()
    assert registry.scorer_json(mlflow_uri, MODEL, registered.version) == scorer.to_json().encode()
    gets = []
    real_get = registry_rest._get
    monkeypatch.setattr(registry_rest, "_get", lambda url, *a, **k: gets.append(url) or real_get(url, *a, **k))
    assert registry_rest.scorer_json(mlflow_uri, MODEL, registered.version) == scorer.to_json().encode()
    monkeypatch.undo()
    assert len(gets) == 3, gets  # the download URI, MLmodel, the scorer: no presigned-URL attempts
    assert registry_rest.load_scorer(mlflow_uri, MODEL, registered.version) is not None
    registry.move_alias(mlflow_uri, MODEL, registry.PRODUCTION, registered.version)
    assert registry.alias_version_tags(mlflow_uri, MODEL) == (registered.version, version.tags)
