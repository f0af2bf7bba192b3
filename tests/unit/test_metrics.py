"""EMF metrics (Powertools Metrics, namespace StreamFlow) read off each step's result; the
grep-able log messages stay exactly as they were."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from streamflow import metrics
from streamflow.handlers import lambda_step
from streamflow.logs import logger


@dataclass
class Context:
    function_name: str = "sftest-compare"
    memory_limit_in_mb: int = 2048
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:sftest-compare"
    aws_request_id: str = "req-1"


def _records(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def _emf(records: list[dict]) -> dict:
    (blob,) = [r for r in records if "_aws" in r]
    return blob


def test_compare_emits_emf_and_keeps_the_compare_line(capsys, caplog):
    def fake_compare(settings, event):
        logger.info("[COMPARE] new_auc=0.8246 prod_auc=0.6693 delta=0.01 promote=True")
        return {"new_auc": 0.8246, "prod_auc": 0.6693, "prod_version": "1", "delta": 0.01, "promote": True}

    handler = lambda_step(fake_compare, measure=metrics.compare)
    result = handler({"month": "month_001", "execution": "month_001-abc"}, Context())
    assert result["promote"] is True
    (record,) = [r for r in caplog.records if r.name == logger.name]
    log = json.loads(logger.registered_formatter.format(record))  # the JSON line Powertools writes
    assert log["message"] == "[COMPARE] new_auc=0.8246 prod_auc=0.6693 delta=0.01 promote=True"
    assert log["month"] == "month_001" and log["execution"] == "month_001-abc"
    emf = _emf(_records(capsys.readouterr().out))
    directive = emf["_aws"]["CloudWatchMetrics"][0]
    assert directive["Namespace"] == "StreamFlow"
    assert {m["Name"] for m in directive["Metrics"]} == {"PromotionRecommended", "ChallengerAuc", "ChampionAuc"}
    assert directive["Dimensions"] == [["service"]]
    values = {name: emf[name] if isinstance(emf[name], list) else [emf[name]]
              for name in ("ChallengerAuc", "ChampionAuc", "PromotionRecommended")}
    assert values == {"ChallengerAuc": [0.8246], "ChampionAuc": [0.6693], "PromotionRecommended": [1.0]}
    assert emf["month"] == "month_001" and emf["execution"] == "month_001-abc"  # metadata, not dimensions


@pytest.mark.parametrize("measure, result, expected", [
    (metrics.drift, {"drift_share": 0.3571, "retrain": True}, {"DriftShare": 0.3571, "RetrainingTriggered": 1.0}),
    (metrics.drift, {"drift_share": 0.0, "retrain": False}, {"DriftShare": 0.0, "RetrainingTriggered": 0.0}),
    (metrics.train, {"version": "2", "val_auc": 0.83}, {"ChallengerValAuc": 0.83}),
    (metrics.compare, {"new_auc": 0.8, "prod_auc": None, "promote": True}, {"ChallengerAuc": 0.8,
                                                                             "PromotionRecommended": 1.0}),
    (metrics.promote, {"promoted": True}, {"Promotions": 1.0}),
    (metrics.promote, {"promoted": False}, {"Promotions": 0.0}),
    (metrics.summary, {"retrained": False}, {"MonthsProcessed": 1.0, "Retrained": 0.0}),
])
def test_each_step_measures_its_result(measure, result, expected):
    assert {name: value for name, _, value in measure({}, result)} == expected


def test_a_step_without_measure_emits_no_metrics(capsys):
    handler = lambda_step(lambda settings, event: {"ok": True})
    assert handler({"month": "month_000"}, Context()) == {"ok": True}
    assert not [r for r in _records(capsys.readouterr().out) if "_aws" in r]
