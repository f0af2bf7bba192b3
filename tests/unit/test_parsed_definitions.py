"""Each execution in the emulator used to run moto's ANTLR grammar over its whole definition
(≈ 0.3 s for the template's ASL) before its first state. The stack keeps each definition's
syntax tree (``moto_patches._parsed_definitions_kept``); these tests hold what must not
change with it: every execution still gets a program of its own, a broken definition is
refused every time, and what is kept is bounded."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from aws_endpoint import state_machines_endpoint
from streamflow_local import moto_patches

# A Choice on the input, so two executions of one definition must take different paths.
DEFINITION = json.dumps({
    "StartAt": "Which",
    "States": {
        "Which": {"Type": "Choice", "Choices": [{"Variable": "$.n", "NumericGreaterThan": 10, "Next": "Big"}],
                  "Default": "Small"},
        "Big": {"Type": "Pass", "Result": "big", "ResultPath": "$.size", "Next": "Wait"},
        "Small": {"Type": "Pass", "Result": "small", "ResultPath": "$.size", "Next": "Wait"},
        "Wait": {"Type": "Wait", "Seconds": 1, "End": True},
    },
})


@pytest.fixture()
def grammar_runs(monkeypatch):
    """How many times moto's grammar parsed a definition, by definition text."""
    from moto.stepfunctions.parser.asl.parse import asl_parser

    moto_patches.install()
    runs: dict[str, int] = {}
    original = asl_parser.ASLParser.state_machine

    def counted(self):
        text = self.getInputStream().tokenSource.inputStream.strdata
        runs[text] = runs.get(text, 0) + 1
        return original(self)

    monkeypatch.setattr(asl_parser.ASLParser, "state_machine", counted)
    return runs


def test_executions_of_one_definition_parse_it_once_and_each_evaluates_its_own_program(grammar_runs):
    with state_machines_endpoint() as (_, sfn):
        machine = sfn.create_state_machine(name=f"kept-{time.time_ns()}", definition=DEFINITION,
                                           roleArn="arn:aws:iam::123456789012:role/r")["stateMachineArn"]
        inputs = [{"n": n} for n in (1, 50, 2, 99)]
        # All four run at once (each waits 1 s), so a program shared between them would show.
        arns = [sfn.start_execution(stateMachineArn=machine, name=f"e{i}", input=json.dumps(value))["executionArn"]
                for i, value in enumerate(inputs)]

        def finished(arn):
            deadline = time.monotonic() + 60
            while (description := sfn.describe_execution(executionArn=arn))["status"] == "RUNNING":
                assert time.monotonic() < deadline
                time.sleep(0.1)
            return description

        with ThreadPoolExecutor(4) as pool:
            descriptions = list(pool.map(finished, arns))
    assert [d["status"] for d in descriptions] == ["SUCCEEDED"] * 4
    assert [json.loads(d["output"])["size"] for d in descriptions] == ["small", "big", "small", "big"]
    assert grammar_runs.get(DEFINITION) == 1  # created (validated) once, started four times


def test_a_definition_that_does_not_parse_is_refused_every_time(grammar_runs):
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser, ASLParserException

    broken = DEFINITION.replace('"StartAt"', '"StartAtt"')
    for _ in range(2):
        with pytest.raises(ASLParserException):
            AmazonStateLanguageParser.parse(broken)
    assert grammar_runs[broken] == 2


def test_only_the_newest_definitions_are_kept(grammar_runs):
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

    kept = moto_patches.PARSED_DEFINITIONS_KEPT
    definitions = [DEFINITION.replace('"big"', f'"big-{i}-{time.time_ns()}"') for i in range(kept + 1)]
    for definition in definitions:
        AmazonStateLanguageParser.parse(definition)
    AmazonStateLanguageParser.parse(definitions[-1])  # kept: no new grammar run
    AmazonStateLanguageParser.parse(definitions[1])  # kept, and now the newest
    AmazonStateLanguageParser.parse(definitions[0])  # pushed out by the last one: parsed again
    assert [grammar_runs[d] for d in definitions] == [2] + [1] * kept
    first, second = AmazonStateLanguageParser.parse(definitions[1]), AmazonStateLanguageParser.parse(definitions[1])
    assert first[1] is second[1] and first[0] is not second[0]
