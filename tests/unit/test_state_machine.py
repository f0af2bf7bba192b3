"""The state machine's error handling and limits, read from the ASL file that deploys.

Every Task retries Lambda's transient errors the same way and catches everything else into
a Fail state (so no error ends an execution without a readable cause); it retries the
registry's and the lease's errors only when its step can raise them; and no Task waits
longer than its function may run.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

from streamflow_local.template import Stack, load_template

ROOT = Path(__file__).resolve().parents[2]
ASL = json.loads((ROOT / "infra" / "statemachine" / "pipeline.asl.json").read_text())
STANDARD_RETRY = {
    "ErrorEquals": ["Lambda.ServiceException", "Lambda.AWSLambdaException", "Lambda.SdkClientException",
                    "Lambda.TooManyRequestsException"],
    "IntervalSeconds": 1, "MaxAttempts": 3, "BackoffRate": 2.0,
}
WAITS_FOR_A_TOKEN = "arn:aws:states:::lambda:invoke.waitForTaskToken"


def all_states(states: dict | None = None) -> dict[str, dict]:
    """Every state by name, those inside Parallel branches and Map processors included."""
    found: dict[str, dict] = {}
    for name, state in (ASL["States"] if states is None else states).items():
        found[name] = state
        for branch in state.get("Branches", []):
            found.update(all_states(branch["States"]))
        processor = state.get("ItemProcessor") or state.get("Iterator")
        if processor:
            found.update(all_states(processor["States"]))
    return found


STATES = all_states()
TASKS = sorted(name for name, state in STATES.items() if state["Type"] == "Task")


@pytest.fixture(scope="module")
def stack() -> Stack:
    return Stack(load_template(ROOT / "template.yaml"), name="streamflow", region="us-east-1")


def function_of(task: str, stack: Stack) -> str:
    """The template's logical function a Task invokes (through DefinitionSubstitutions)."""
    state = STATES[task]
    reference = state.get("Parameters", {}).get("FunctionName") or state["Resource"]
    placeholder = re.fullmatch(r"\$\{(\w+)\}", reference).group(1)
    machine = next(iter(stack.of_type("AWS::Serverless::StateMachine")))
    target = stack.resources[machine]["Properties"]["DefinitionSubstitutions"][placeholder]
    return target["Fn::GetAtt"][0] if isinstance(target["Fn::GetAtt"], list) else target["Fn::GetAtt"].split(".")[0]


def reachable_ends(start: str) -> set[str]:
    """Names of the states a Catch's target leads to, through Choice and Pass states (and a
    Distributed Map's ``<Map>NameShards`` task)."""
    ends, todo, seen = set(), [start], set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        state = STATES[name]
        if state["Type"] == "Choice":
            todo += [choice["Next"] for choice in state["Choices"]] + ([state["Default"]] if "Default" in state else [])
        elif state["Type"] == "Pass":
            todo.append(state["Next"])
        elif state["Type"] == "Task" and name.endswith("NameShards"):  # rewrites a Map's cause, then on
            todo += [state["Next"]] + [catch["Next"] for catch in state["Catch"]]
        else:
            ends.add(name)
    return ends


@pytest.mark.parametrize("task", TASKS)
def test_every_task_retries_lambdas_transient_errors_the_standard_way(task):
    assert STATES[task]["Retry"][0] == STANDARD_RETRY


@pytest.mark.parametrize("task", TASKS)
def test_every_task_catches_every_error_into_a_fail_state(task):
    catch_all = [c for c in STATES[task].get("Catch", []) if c["ErrorEquals"] == ["States.ALL"]]
    assert len(catch_all) == 1, task
    ends = reachable_ends(catch_all[0]["Next"])
    assert ends and all(STATES[end]["Type"] == "Fail" for end in ends), (task, ends)


@pytest.mark.parametrize("task", TASKS)
def test_no_task_waits_longer_than_its_function_may_run(task, stack):
    """A token wait is bounded by its own TimeoutSeconds(Path): its function only hands out the token."""
    if STATES[task]["Resource"] == WAITS_FOR_A_TOKEN:
        assert "TimeoutSeconds" in STATES[task] or "TimeoutSecondsPath" in STATES[task]
        return
    function_timeout = int(stack.function_properties(function_of(task, stack)).get("Timeout", 3))
    assert 0 < STATES[task]["TimeoutSeconds"] <= function_timeout, (task, function_timeout)


def _step_of(function: str) -> str | None:
    """The ``steps.<name>`` a function's handler wraps (None when it calls no step)."""
    folder = ROOT / "functions" / function.removesuffix("Function").lower()
    names = [node.attr for node in ast.walk(ast.parse((folder / "app.py").read_text()))
             if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "steps"]
    return names[0] if names else None


def _reaches(step: str, target: str) -> bool:
    """Does ``steps.<step>`` reach ``target`` (a name or ``module.attr``), through the
    module's own functions it calls?"""
    tree = ast.parse((ROOT / "layers" / "core" / "streamflow" / "steps.py").read_text())
    functions = {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}

    def names(node: ast.AST) -> set[str]:
        """What the function calls (a local variable named like a step is not a call)."""
        out = set()
        for call in (sub.func for sub in ast.walk(node) if isinstance(sub, ast.Call)):
            if isinstance(call, ast.Name):
                out.add(call.id)
            elif isinstance(call, ast.Attribute) and isinstance(call.value, ast.Name):
                out.add(f"{call.value.id}.{call.attr}")
        return out

    todo, seen = [step], set()
    while todo:
        name = todo.pop()
        if name in seen or name not in functions:
            continue
        seen.add(name)
        used = names(functions[name])
        if target in used:
            return True
        todo += [n for n in used if n in functions]
    return False


@pytest.mark.parametrize("task", TASKS)
def test_registry_and_lease_errors_are_retried_only_where_the_step_can_raise_them(task, stack):
    retried = {error for retry in STATES[task]["Retry"] for error in retry["ErrorEquals"]}
    step = _step_of(function_of(task, stack))
    can_raise = {
        "RegistryUnavailable": step is not None and _reaches(step, "registry_call"),
        "LeaseBusy": step is not None and _reaches(step, "lease.hold"),
    }
    for error, possible in can_raise.items():
        assert (error in retried) == possible, (task, step, error)


def test_the_registry_retry_covers_the_steps_that_read_the_registry():
    """The control for the test above: the steps known to call MLflow are found calling it."""
    assert _reaches("detect_drift", "registry_call") and _reaches("promote", "lease.hold")
    assert not _reaches("validate", "registry_call") and not _reaches("compare", "lease.hold")
