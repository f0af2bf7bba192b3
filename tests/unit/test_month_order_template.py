"""The template and state machine wiring of time order: ReferenceMonth's modes, the backfill
switch, and the states that make months decide in month order."""

from __future__ import annotations

import json
import re
from pathlib import Path

from streamflow_local.template import Stack, load_template

ROOT = Path(__file__).resolve().parents[2]
ASL = json.loads((ROOT / "infra" / "statemachine" / "pipeline.asl.json").read_text())
TEMPLATE = load_template(ROOT / "template.yaml")


def test_reference_month_defaults_to_the_champion_and_accepts_the_three_modes():
    parameter = TEMPLATE["Parameters"]["ReferenceMonth"]
    assert parameter["Default"] == "champion"
    pattern = re.compile(parameter["AllowedPattern"])
    assert all(pattern.match(v) for v in ("champion", "previous", "month_000", "month_123"))
    assert not any(pattern.match(v) for v in ("Champion", "month_1", "latest", "previous_month"))


def test_backfill_promotion_is_off_unless_the_operator_allows_it():
    parameter = TEMPLATE["Parameters"]["AllowBackfillPromotion"]
    assert parameter["Default"] == "false" and parameter["AllowedValues"] == ["true", "false"]
    stack = Stack(TEMPLATE, name="sf", region="us-east-1", parameter_overrides={"AllowBackfillPromotion": "true"})
    for logical in ("CompareFunction", "PromoteFunction"):
        variables = stack.resolve(stack.function_properties(logical)["Environment"]["Variables"])
        assert variables["ALLOW_BACKFILL_PROMOTION"] == "true", logical
        assert variables["REFERENCE_MONTH"] == "champion", logical


def test_a_month_registers_first_waits_before_drift_and_releases_after_its_summary():
    states = ASL["States"]
    assert ASL["StartAt"] == "RegisterMonth" and states["RegisterMonth"]["Next"] == "ShardMonth"
    assert states["RegisterMonth"]["Parameters"]["action"] == "register"
    # one shard (Validate → BuildFeatures) or several (SplitParts → PartsSplit → ValidateShards → MergeShards →
    # ShardFeatures): both then wait
    split = states[states["ShardMonth"]["Next"]]
    assert {c["Next"] for c in split["Choices"]} | {split["Default"]} == {"Validate", "SplitParts"}
    assert states["SplitParts"]["Next"] == "PartsSplit" and states["PartsSplit"]["Next"] == "ValidateShards"
    assert states["ValidateShards"]["Next"] == "MergeShards" and states["MergeShards"]["Next"] == "ShardFeatures"
    assert states["ShardFeatures"]["Next"] == "AwaitEarlierMonths"
    gate = states[states["BuildFeatures"]["Next"]]
    assert states["BuildFeatures"]["Next"] == "AwaitEarlierMonths" and gate["Next"] == "FeaturesReady"
    # waits on a task token (no Lambda runs while it waits), for a bounded time with a readable cause
    assert gate["Resource"] == "arn:aws:states:::lambda:invoke.waitForTaskToken"
    assert gate["Parameters"]["Payload"]["task_token.$"] == "$$.Task.Token"
    assert gate["Parameters"]["Payload"]["action"] == "await"
    assert 0 < gate["TimeoutSeconds"] <= 7 * 86400
    timeout = next(c for c in gate["Catch"] if c["ErrorEquals"] == ["States.Timeout"])
    assert "earlier months" in states[timeout["Next"]]["Cause"] and states[timeout["Next"]]["Type"] == "Fail"
    assert states["Summary"]["Next"] == "ReleaseMonth" and states["ReleaseMonth"]["Next"] == "Done"
    assert states["ReleaseMonth"]["ResultPath"] is None  # the execution's output stays the summary


def test_a_month_that_fails_is_released_by_the_execution_status_change_event():
    function = TEMPLATE["Resources"]["OrderFunction"]["Properties"]
    event = function["Events"]["ExecutionEnded"]
    assert event["Type"] == "EventBridgeRule"
    pattern = event["Properties"]["Pattern"]
    assert pattern["source"] == ["aws.states"]
    assert pattern["detail-type"] == ["Step Functions Execution Status Change"]
    assert sorted(pattern["detail"]["status"]) == ["ABORTED", "FAILED", "TIMED_OUT"]
    stack = Stack(TEMPLATE, name="sf", region="us-east-1")
    assert stack.resolve(pattern["detail"]["stateMachineArn"]) == [stack.arn("PipelineStateMachine")]


def test_the_local_deploy_sets_every_template_parameter():
    stack = Stack(TEMPLATE, name="sf", region="us-east-1")
    assert set(stack.parameters) == set(TEMPLATE["Parameters"])
    assert stack.parameters["ReferenceMonth"] == "champion"
    assert stack.parameters["AllowBackfillPromotion"] == "false"


def test_the_readme_states_the_modes_defaults_and_the_wait_bound_the_code_has():
    readme = (ROOT / "README.md").read_text()
    default = TEMPLATE["Parameters"]["ReferenceMonth"]["Default"]
    assert f"| `{default}` (default) |" in readme and "| `previous` |" in readme and "| `month_NNN` |" in readme
    backfill = TEMPLATE["Parameters"]["AllowBackfillPromotion"]["Default"]
    assert f"`AllowBackfillPromotion` (default `{backfill}`)" in readme
    assert "**Months decide in month order.**" in readme
    hours = ASL["States"]["AwaitEarlierMonths"]["TimeoutSeconds"] // 3600
    assert f"the wait is bounded ({hours} h" in readme and f"waited {hours} h" in ASL["States"]["EarlierMonthsTimedOut"]["Cause"]
    assert "production_version=2 reference=month_000\n" in readme  # the [SUMMARY] example
