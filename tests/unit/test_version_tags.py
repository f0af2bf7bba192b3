"""Version tags go to the registry without MLflow's per-tag prompt check (one GET a tag)."""

from __future__ import annotations

import json

import pytest
from mlflow import MlflowClient
from streamflow import alias_history, registry

MODEL = "streamflow_churn"


@pytest.fixture(scope="module")
def sqlite_uri(tmp_path_factory) -> str:
    """A real MLflow registry on SQLite (made once: its migrations take seconds)."""
    uri = f"sqlite:///{tmp_path_factory.mktemp('registry') / 'mlflow.db'}"
    MlflowClient(tracking_uri=uri, registry_uri=uri).create_registered_model(MODEL)
    return uri


@pytest.fixture()
def sqlite_registry(sqlite_uri, tmp_path, monkeypatch):
    """(uri, a new version); asking for the registered model from then on fails the test."""
    mlflow_client = MlflowClient(tracking_uri=sqlite_uri, registry_uri=sqlite_uri)
    version = mlflow_client.create_model_version(MODEL, source=str(tmp_path / "model"), run_id=None).version

    def refuse(self, name):
        raise AssertionError(f"get_registered_model({name!r}) called while tagging")

    monkeypatch.setattr(MlflowClient, "get_registered_model", refuse)
    return sqlite_uri, str(version)


def test_tags_are_set_without_fetching_the_registered_model(sqlite_registry):
    uri, version = sqlite_registry
    registry.tag_version(uri, MODEL, version, {"decision": "promote", "decision_delta": 0.01})
    tags = MlflowClient(tracking_uri=uri, registry_uri=uri).get_model_version(MODEL, version).tags
    assert tags["decision"] == "promote" and tags["decision_delta"] == "0.01"


def test_an_alias_move_is_recorded_in_the_history_and_plain_tags(sqlite_registry):
    uri, version = sqlite_registry
    for action in ("set", "removed"):
        alias_history.record_alias_move(uri, MODEL, version, registry.PRODUCTION, action, by="ops",
                                        reason=f"{action} by hand", at="2026-11-30T16:00:00+00:00")
    tags = MlflowClient(tracking_uri=uri, registry_uri=uri).get_model_version(MODEL, version).tags
    assert [e["action"] for e in json.loads(tags[alias_history.HISTORY_TAG])] == ["set", "removed"]
    assert tags["production"] == "removed 2026-11-30T16:00:00+00:00 by ops: removed by hand"
    assert not any(name.startswith("production_") for name in tags)


def test_a_move_replaces_the_per_field_tags_of_before_with_the_sentence(sqlite_registry):
    uri, version = sqlite_registry
    mlflow_client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    before = {"production_action": "set", "production_at": "2026-11-01T00:00:00+00:00", "production_by": "e-1",
              "production_reason": "month_001 won", "previous_action": "set"}
    registry.tag_version(uri, MODEL, version, before)
    alias_history.record_alias_move(uri, MODEL, version, registry.PRODUCTION, "removed", by="e-2",
                                    reason="month_002 won", at="2026-12-01T00:00:00+00:00")
    tags = mlflow_client.get_model_version(MODEL, version).tags
    assert tags["production"] == "removed 2026-12-01T00:00:00+00:00 by e-2: month_002 won"
    assert not any(name.startswith("production_") for name in tags)
    assert tags["previous_action"] == "set"  # another alias's tag: not this move's to touch


def test_two_moves_on_one_version_read_it_once_and_leave_the_tags_two_single_moves_leave(sqlite_uri, tmp_path,
                                                                                          monkeypatch):
    mlflow_client = MlflowClient(tracking_uri=sqlite_uri, registry_uri=sqlite_uri)
    one_by_one, together = (str(mlflow_client.create_model_version(MODEL, source=str(tmp_path / name), run_id=None)
                                .version) for name in ("a", "b"))
    at = "2026-12-01T05:00:00+00:00"
    moves = [alias_history.AliasMove(registry.PRODUCTION, "removed", "e-7", "month_004 won", at, {"replaced_by": "9"}),
             alias_history.AliasMove(registry.PREVIOUS, "set", "e-7", "month_004 won", at)]
    for move in moves:
        alias_history.record_alias_move(sqlite_uri, MODEL, one_by_one, move.alias, move.action, move.by, move.reason,
                                        move.at, **move.details)
    reads = []
    original = MlflowClient.get_model_version
    monkeypatch.setattr(MlflowClient, "get_model_version", lambda self, *a: reads.append(a) or original(self, *a))
    alias_history.record_alias_moves(sqlite_uri, MODEL, together, moves)
    assert len(reads) == 1
    monkeypatch.undo()
    assert (mlflow_client.get_model_version(MODEL, together).tags
            == mlflow_client.get_model_version(MODEL, one_by_one).tags)
    history = json.loads(mlflow_client.get_model_version(MODEL, together).tags[alias_history.HISTORY_TAG])
    assert [(e["alias"], e["action"]) for e in history] == [("Production", "removed"), ("Previous", "set")]
    assert history[0]["replaced_by"] == "9"


def test_aliases_move_and_go_without_fetching_the_registered_model(sqlite_registry):
    uri, version = sqlite_registry
    registry.move_alias(uri, MODEL, registry.STAGING, version)
    assert registry.alias_version(uri, MODEL, registry.STAGING) == version
    registry.delete_alias(uri, MODEL, registry.STAGING)
    registry.delete_alias(uri, MODEL, registry.STAGING)  # already gone: no error
    assert registry.alias_version(uri, MODEL, registry.STAGING) is None
