"""Where the tests find the tools that live in venvs of their own: sam, actionlint, checkov
(.venv-tools, `make tools`) and the AWS CLI (.venv-awscli, `make awscli`)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TOOLS_BIN = Path(os.environ.get("STREAMFLOW_TOOLS_VENV", ROOT / ".venv-tools")) / "bin"
AWSCLI_BIN = Path(os.environ.get("STREAMFLOW_AWSCLI_VENV", ROOT / ".venv-awscli")) / "bin"


def tool(name: str, folder: Path = TOOLS_BIN, make_target: str = "tools") -> Path:
    """The tool's path; skip when its venv lacks it, or fail where `make test` requires it
    (STREAMFLOW_REQUIRE_TOOLS=1)."""
    path = folder / name
    if not path.exists():
        message = f"{path} is missing: run `make {make_target}`"
        if os.environ.get("STREAMFLOW_REQUIRE_TOOLS") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return path
