"""ruff over every Python file of the repository, with the rules of pyproject.toml: undefined
names and unused imports (what a refactor leaves behind, in code paths no test may reach) and
bugbear's likely bugs. A name imported from a module that no longer has it is
test_every_module_imports.py's job. ruff lives in .venv-tools (`make tools`)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.dev_tools import tool

ROOT = Path(__file__).resolve().parents[2]


def _ruff(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(tool("ruff")), "check", "--no-cache", "--output-format", "concise", *args],
                          capture_output=True, text=True, cwd=cwd, timeout=120)


def test_the_repository_passes_ruff():
    result = _ruff(".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_rules_catch_a_broken_import_and_an_undefined_name(tmp_path):
    (tmp_path / "pyproject.toml").write_text((ROOT / "pyproject.toml").read_text())
    (tmp_path / "broken.py").write_text("from os.path import join, free_port\n\n\ndef f():\n    return missing\n")
    result = _ruff("broken.py", cwd=tmp_path)
    assert result.returncode == 1
    assert "F401" in result.stdout and "free_port" in result.stdout
    assert "F821" in result.stdout and "missing" in result.stdout
