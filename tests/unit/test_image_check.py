"""The image check's isolation and verdicts, on a tiny image laid out from a Dockerfile
(the real images are installed and probed by ``make images-check``: minutes of downloads)."""

from __future__ import annotations

from pathlib import Path

from streamflow_local.image import read_dockerfile
from streamflow_local.image_check import PLATFORMS, lay_out, probe, reached_the_network

APP = '''
import json, os, sys

def handler(event, context):
    try:
        import yaml  # in the project's venv, not in this image
        seen = "yaml"
    except ImportError:
        seen = None
    from botocore_stub import EndpointConnectionError
    raise EndpointConnectionError(json.dumps({"yaml": seen, "task_root": os.environ["LAMBDA_TASK_ROOT"],
                                              "month": event["month"]}))
'''
STUB = "class EndpointConnectionError(Exception):\n    pass\n"


def _image(tmp_path: Path):
    context = tmp_path / "context"
    (context / "fn").mkdir(parents=True)
    (context / "fn" / "app.py").write_text(APP)
    (context / "fn" / "botocore_stub.py").write_text(STUB)
    (context / "fn" / "Dockerfile").write_text(
        "FROM python:3.11-slim-bookworm\nENV LAMBDA_TASK_ROOT=/var/task\nWORKDIR /var/task\n"
        "COPY fn/app.py fn/botocore_stub.py ${LAMBDA_TASK_ROOT}/\nCMD [\"app.handler\"]\n")
    return read_dockerfile(context / "fn" / "Dockerfile", context)


def test_the_probe_sees_only_the_task_root_the_site_and_the_standard_library(tmp_path):
    image = _image(tmp_path)
    task, site = tmp_path / "task", tmp_path / "site"
    site.mkdir()
    lay_out(image, task)
    assert sorted(p.name for p in task.iterdir()) == ["app.py", "botocore_stub.py"]
    report = probe(image, site, task, timeout=60)
    assert report["path"] == [str(task), str(site)]
    assert report["handler_file"] == str(task / "app.py")
    assert report["modules"] == {} and report["failed_modules"] == {}
    raised = report["raised"]
    assert raised["type"] == "EndpointConnectionError"
    assert '"yaml": null' in raised["message"]  # the venv's PyYAML is not visible
    assert '"month": "month_001"' in raised["message"] and str(task) in raised["message"]
    assert reached_the_network(report)


def test_an_installed_module_that_cannot_import_is_reported(tmp_path):
    image = _image(tmp_path)
    task, site = tmp_path / "task", tmp_path / "site"
    (site / "broken").mkdir(parents=True)
    (site / "broken" / "__init__.py").write_text("import not_installed_anywhere\n")
    dist = site / "broken-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken\nVersion: 1.0\n")
    (dist / "top_level.txt").write_text("broken\n")
    lay_out(image, task)
    report = probe(image, site, task, timeout=60)
    assert "ModuleNotFoundError" in report["failed_modules"]["broken"]


def test_a_handler_that_fails_before_the_network_is_not_a_pass():
    assert not reached_the_network({"raised": {"type": "ImportError", "chain": []}})
    assert not reached_the_network({"returned": {}})
    assert reached_the_network({"raised": {"type": "RuntimeError", "chain": ["RegistryUnavailable"]}})


def test_wheels_up_to_the_images_glibc_are_accepted():
    assert PLATFORMS[0] == "manylinux_2_36_x86_64" and "manylinux_2_28_x86_64" in PLATFORMS
    assert "manylinux_2_17_x86_64" in PLATFORMS and "manylinux2014_x86_64" in PLATFORMS
    assert not any("2_37" in p or "aarch64" in p for p in PLATFORMS)
