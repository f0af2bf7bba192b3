"""The sagemaker-mlflow plugin as RegistryPluginLayer holds it, for the tests of both folders
that drive it: `make registry-plugin`'s build when there is one, else built into a temp folder
by the layer's own Makefile (as `sam build` builds it)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYER = ROOT / "layers" / "registry"
BUILT = ROOT / "build" / "registry-plugin" / "python"


def registry_plugin_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder to put on a Python path so that ``import sagemaker_mlflow`` finds the pinned plugin."""
    if (BUILT / "sagemaker_mlflow").is_dir():
        return BUILT
    out = tmp_path_factory.mktemp("registry-plugin")
    subprocess.run(["make", "--no-print-directory", "-C", str(LAYER), "build-RegistryPluginLayer",
                    f"ARTIFACTS_DIR={out}", f"PYTHON={sys.executable}"], check=True, timeout=300)
    return out / "python"
