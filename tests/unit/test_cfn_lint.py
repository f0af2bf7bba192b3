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
    for name, state in asl["States"].items():
        if state["Type"] == "Task":
            catch_all = [c for c in state["Catch"] if c["ErrorEquals"] == ["States.ALL"]]
            assert catch_all and state["Catch"][-1] is catch_all[0], name  # last, after specific ones
            assert asl["States"][catch_all[0]["Next"]]["Type"] == "Fail", name
            assert state["Retry"], name
