"""Where the tests find the developer tools of .venv-tools (sam, actionlint, checkov)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOOLS_BIN = Path(os.environ.get("STREAMFLOW_TOOLS_VENV", ROOT / ".venv-tools")) / "bin"


def tool(name: str) -> Path:
    """The tool's path; skip when .venv-tools lacks it, or fail where `make test` requires it
    (STREAMFLOW_REQUIRE_TOOLS=1)."""
    path = TOOLS_BIN / name
    if not path.exists():
        message = f"{path} is missing: run `make tools`"
        if os.environ.get("STREAMFLOW_REQUIRE_TOOLS") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return path
