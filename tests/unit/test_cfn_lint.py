"""template.yaml passes cfn-lint offline, and its state machine is the ASL file on disk."""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_cfn_lint_passes_on_template():
    cfn_lint = shutil.which("cfn-lint", path=str(Path(sys.executable).parent)) or shutil.which("cfn-lint")
    assert cfn_lint, "cfn-lint is installed by requirements.txt"
    result = subprocess.run([cfn_lint, str(ROOT / "template.yaml")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_state_machine_definition_is_valid_json_with_every_substitution_declared():
    from streamflow_local.template import load_template

    template = load_template(ROOT / "template.yaml")
    machine = template["Resources"]["PipelineStateMachine"]["Properties"]
    definition = (ROOT / machine["DefinitionUri"]).read_text()
    asl = json.loads(definition)
    used = set(re.findall(r"\$\{(\w+)\}", definition))
    assert used == set(machine["DefinitionSubstitutions"])
    tasks = 0
    for states in _state_sets(asl):
        for name, state in states.items():
            if state["Type"] == "Task":
                tasks += 1
                owner = name.removesuffix(NAMES_SHARDS)  # a Map's NameShards task: part of the Map's chain
                catch_all = [c for c in state["Catch"] if c["ErrorEquals"] == ["States.ALL"]]
                assert catch_all and state["Catch"][-1] is catch_all[0], name  # last, after specific ones
                assert _ends_of(states, catch_all[0]["Next"]) == {f"{owner}Failed"}, name  # in the same branch
                assert states[f"{owner}Failed"]["Type"] == "Fail", name
                assert state["Retry"], name
    functions = [k for k in machine["DefinitionSubstitutions"] if k.endswith("FunctionArn")]
    assert tasks >= len(functions)  # the walk reached the tasks inside the Parallel's branches


NAMES_SHARDS = "NameShards"


def _ends_of(states: dict, start: str) -> set[str]:
    """The states a failure handler ends in, following its Choice and Pass states (and a
    Map's ``<Map>NameShards`` task, which only rewrites the cause: its Next and its Catch)."""
    state = states[start]
    if state["Type"] == "Task" and start.endswith(NAMES_SHARDS):
        return set().union(*(_ends_of(states, n) for n in [state["Next"]] + [c["Next"] for c in state["Catch"]]))
    if state["Type"] == "Choice":
        return set().union(*(_ends_of(states, n) for n in [c["Next"] for c in state["Choices"]] + [state["Default"]]))
    if state["Type"] == "Pass":
        return _ends_of(states, state["Next"])
    return {start}


def test_every_fail_cause_is_the_one_line_error_message_of_its_step():
    """Catch → <Step>Caught (Choice) → read the Lambda error JSON's errorMessage, or keep a
    plain cause, or use the error name → <Step>Failed: 'Step failed: <message>'."""
    asl = json.loads((ROOT / "infra" / "statemachine" / "pipeline.asl.json").read_text())
    fails = 0
    for states in _state_sets(asl):
        for name, state in states.items():
            if state["Type"] != "Fail":
                continue
            if "Cause" in state:  # a fixed cause (e.g. a wait that timed out): one short line already
                assert "\n" not in state["Cause"] and len(state["Cause"]) <= 300, name
                continue
            fails += 1
            step = name.removesuffix("Failed")
            assert state["CausePath"] == f"States.Format('{step} failed: {{}}', $.error.Cause.errorMessage)", name
            assert state["ErrorPath"] == "$.error.Error", name
            caught = states[f"{step}Caught"]
            targets = [c["Next"] for c in caught["Choices"]] + [caught["Default"]]
            assert targets == [f"{step}ReadCause", f"{step}PlainCause", f"{step}NoCause"], name
            assert states[f"{step}ReadCause"]["Parameters"]["Cause.$"] == "States.StringToJson($.error.Cause)"
            for target in targets:
                assert states[target]["ResultPath"] == "$.error" and states[target]["Next"] == name
    assert fails >= 10


def test_a_failed_distributed_map_names_its_failed_shards_then_fails_as_before():
    """Each Distributed Map's Catch → <Map>NameShards (the Order function reads the failed
    children: map_failures.py) → <Map>Caught with the Map's error rewritten; if the look-up
    itself fails, its Catch goes to <Map>Caught with the Map's own error untouched."""
    asl = json.loads((ROOT / "infra" / "statemachine" / "pipeline.asl.json").read_text())
    maps = 0
    for states in _state_sets(asl):
        for name, state in states.items():
            if state["Type"] != "Map" or state["ItemProcessor"]["ProcessorConfig"]["Mode"] != "DISTRIBUTED":
                continue
            maps += 1
            assert state["Label"] == name  # the map run's ARN names the step
            (catch,) = state["Catch"]
            assert (catch["ErrorEquals"], catch["ResultPath"], catch["Next"]) == (["States.ALL"], "$.error",
                                                                                  f"{name}NameShards"), name
            task = states[f"{name}NameShards"]
            assert task["Type"] == "Task" and task["Resource"] == "${OrderFunctionArn}", name
            assert task["Parameters"] == {"action": "map_failure", "step": name, "month.$": "$.month",
                                          "execution.$": "$.execution", "execution_arn.$": "$$.Execution.Id",
                                          "error.$": "$.error"}, name
            assert task["ResultPath"] == "$.error" and task["Next"] == f"{name}Caught", name
            (fallback,) = task["Catch"]
            assert fallback["Next"] == f"{name}Caught" and fallback["ResultPath"] != "$.error", name
    assert maps == 4  # SplitParts, ValidateShards, PublishShards, ScoreShards


def _state_sets(machine: dict) -> list[dict]:
    """The top-level states and those of every Parallel branch, at any depth."""
    found = [machine["States"]]
    for state in machine["States"].values():
        for branch in state.get("Branches", []):
            found += _state_sets(branch)
    return found


def test_features_are_published_while_drift_and_training_run_and_joined_before_promotion():
    """The online-table write runs beside drift → train → compare; Promote waits for both."""
    asl = json.loads((ROOT / "infra" / "statemachine" / "pipeline.asl.json").read_text())
    states = asl["States"]
    assert states[states["BuildFeatures"]["Next"]]["Next"] == "FeaturesReady"  # via AwaitEarlierMonths
    parallel = states["FeaturesReady"]
    assert parallel["Type"] == "Parallel"
    starts = [branch["StartAt"] for branch in parallel["Branches"]]
    assert starts == ["PublishSharded", "DetectDrift"]
    publish = parallel["Branches"][0]["States"]
    assert publish["PublishSharded"]["Default"] == "PublishOnlineFeatures"  # one shard: the one-shot task
    (sharded,) = publish["PublishSharded"]["Choices"]
    assert (sharded["Variable"], sharded["NumericGreaterThan"], sharded["Next"]) == ("$.sharding.shards", 1,
                                                                                     "PublishShards")
    shards = publish["PublishShards"]
    assert shards["ItemReader"] == states["ValidateShards"]["ItemReader"]  # the same shard items
    assert shards["ItemProcessor"]["ProcessorConfig"]["Mode"] == "DISTRIBUTED"
    assert shards["MaxConcurrencyPath"] == states["ValidateShards"]["MaxConcurrencyPath"]
    assert shards["Next"] == "MarkMonthPublished" and publish["MarkMonthPublished"]["End"]
    assert publish["MarkMonthPublished"]["Parameters"]["action"] == "mark"
    decide = parallel["Branches"][1]["States"]
    assert {"TrainChallenger", "Compare"} <= set(decide)
    assert "Promote" not in decide and "Promote" in states
    assert states[parallel["Next"]]["Choices"][0]["Next"] == "PromoteNeeded"
