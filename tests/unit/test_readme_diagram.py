"""README's mermaid diagram of the loop is the state machine that deploys.

Its node names are the ASL's state names, so it cannot drift unseen: every state (those in
the Parallel's branches too) appears in the diagram, every arrow between two states is a
transition of ``infra/statemachine/pipeline.asl.json``, and each Task's error chain
(``<Task>Caught`` → ``…ReadCause``/``…PlainCause``/``…NoCause`` → ``<Task>Failed``) is one
node that names its states, reached from the Task by an ``error`` arrow.
"""

from __future__ import annotations

import re
from pathlib import Path

from test_state_machine import ASL, STATES, all_states

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
ERROR_CHAIN = ("Caught", "ReadCause", "PlainCause", "NoCause", "Failed")

# A node's shape and label after its id: ["…"], ("…"), {"…"}, [("…")], (["…"]), ((…)), [[…]], {{…}}.
_LABEL = re.compile(r'(\w+)\s*(\[\(.*?\)\]|\(\[.*?\]\)|\(\(.*?\)\)|\[\[.*?\]\]|\{\{.*?\}\}'
                    r'|\["[^"]*"\]|\("[^"]*"\)|\{"[^"]*"\}|\[[^\]"]*\]|\([^)"]*\)|\{[^}"]*\})')
# An arrow, with its text if any: -->, -- text -->, -- "text" -->, -.->, -. text .->, ==>, ---, -->|text|.
_ARROW = re.compile(r'\s*(?:--\s*"[^"]*"\s*-->|--\s*[^">-][^>]*?\s*-->|-\.\s*"[^"]*"\s*\.->|-\.\s*[^".]+?\s*\.->'
                    r'|-->|-\.->|==>|---)\s*(?:\|[^|]*\|)?\s*')


def mermaid_block(text: str) -> str:
    blocks = re.findall(r"```mermaid\n(.*?)```", text, re.S)
    assert len(blocks) == 1, f"README should hold one mermaid diagram, found {len(blocks)}"
    return blocks[0]


def diagram(block: str) -> tuple[dict[str, str], list[tuple[str, str, str]]]:
    """(label of each node that has one, every arrow as (from, to, its text))."""
    labels: dict[str, str] = {}
    edges: list[tuple[str, str, str]] = []
    for raw in block.splitlines():
        line = raw.strip()
        if not line or line.startswith(("%%", "flowchart", "graph", "subgraph", "end", "classDef", "class ", "style ")):
            continue

        def keep_label(match: re.Match) -> str:
            labels[match.group(1)] = match.group(2)
            return match.group(1)

        bare = re.sub(r":::\w+", "", _LABEL.sub(keep_label, line))
        arrows = [m.group(0) for m in _ARROW.finditer(bare)]
        nodes = _ARROW.split(bare)
        assert all(re.fullmatch(r"\w+", n.strip()) for n in nodes), f"cannot read this diagram line: {raw!r}"
        for (a, b), arrow in zip(zip(nodes, nodes[1:]), arrows):
            text = re.sub(r'^[-.=\s"]+|[-.=>\s"]+$', "", arrow)
            edges.append((a.strip(), b.strip(), text))
    return labels, edges


def transitions(states: dict, after: str | None = None) -> set[tuple[str, str]]:
    """Every (from, to) the ASL allows: Next, Default, Choices' Next, Catch's Next; a Parallel
    reaches each branch's StartAt, and a branch's end reaches the Parallel's Next; a Map's
    processor has its own (a child execution ends there)."""
    found: set[tuple[str, str]] = set()
    for name, state in states.items():
        targets = [state.get("Next"), state.get("Default")]
        targets += [rule.get("Next") for rule in state.get("Choices", [])]
        targets += [catch.get("Next") for catch in state.get("Catch", [])]
        found |= {(name, target) for target in targets if target}
        if state.get("End") and after:
            found.add((name, after))
        for branch in state.get("Branches", []):
            found.add((name, branch["StartAt"]))
            found |= transitions(branch["States"], after=state.get("Next"))
        if "ItemProcessor" in state:  # a Map's child executions: their own transitions
            found |= transitions(state["ItemProcessor"]["States"])
    return found


LABELS, EDGES = diagram(mermaid_block(README))


def test_the_diagram_is_read():
    assert len(EDGES) >= 30 and {"Validate", "FeaturesReady", "Promote"} <= {a for a, _, _ in EDGES}


def test_every_state_of_the_asl_is_in_the_diagram():
    block = mermaid_block(README)
    missing = [name for name in STATES if not re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", block)]
    assert not missing, f"states of pipeline.asl.json missing from README's diagram: {missing}"


def test_every_arrow_between_states_is_a_transition_of_the_asl():
    allowed = transitions(ASL["States"])
    false = [(a, b) for a, b, _ in EDGES if a in STATES and b in STATES and (a, b) not in allowed]
    assert not false, f"README's diagram draws transitions the ASL does not have: {false}"


def test_each_task_error_chain_is_one_node_reached_by_an_error_arrow():
    tasks = [name for name, state in STATES.items()
             if state["Type"] == "Task" and f"{name}Caught" in STATES]
    assert len(tasks) >= 10
    for task in tasks:
        chain = [f"{task}{suffix}" for suffix in ERROR_CHAIN]
        nodes = [b for a, b, text in EDGES if a == task and text == "error"]
        assert len(nodes) == 1, f"{task} should have one `-- error -->` arrow, has {nodes}"
        label = LABELS.get(nodes[0], "")
        assert all(re.search(rf"\b{state}\b", label) for state in chain), \
            f"{nodes[0]} should name {chain}, its label is {label!r}"


def test_the_retries_under_the_diagram_name_the_tasks_that_retry_the_registry():
    registry = [name for name, state in all_states().items()
                if any("RegistryUnavailable" in r["ErrorEquals"] for r in state.get("Retry", []))]
    lease = [name for name, state in all_states().items()
             if any("LeaseBusy" in r["ErrorEquals"] for r in state.get("Retry", []))]
    prose = " ".join(README.split())
    listed = re.search(r"The Tasks whose step talks to the MLflow registry \(([^)]*)\) also retry "
                       r"`RegistryUnavailable`[^,]*, and (\w+) `LeaseBusy`", prose)
    assert listed, "README no longer says which Tasks retry RegistryUnavailable and LeaseBusy"
    assert sorted(listed.group(1).split(", ")) == sorted(registry)
    assert [listed.group(2)] == lease
