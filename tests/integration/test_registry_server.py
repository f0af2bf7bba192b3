"""The stack's registry is a plain `mlflow server`: its process group holds the server and
nothing else (MLflow 3's job runner, eight huey consumers for GenAI jobs the registry never
runs, is off: ``stack.registry_server_env``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from external import EXTERNAL

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(EXTERNAL, reason="looks at the local stack's processes")]


def _session_members(leader: int) -> list[str]:
    """The command lines of every process in ``leader``'s session."""
    members = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            if int(stat[3]) == leader:  # field 6 of /proc/<pid>/stat: the session id
                members.append((proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
        except (OSError, IndexError, ValueError):
            continue
    return members


def test_the_registry_server_runs_without_mlflows_job_runner(stack):
    leader = int((stack.state_dir / "mlflow.pid").read_text())
    members = _session_members(leader)
    assert any("mlflow server" in command for command in members), members
    assert not [command for command in members if "huey" in command], members
