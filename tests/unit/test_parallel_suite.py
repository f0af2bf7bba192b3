"""`make test` runs the suite on pytest-xdist workers (``--dist loadgroup``): the integration
tests that share one stack (and build on each other's state, in ``MODULE_ORDER``) must all
run on one worker, in that order, and each module with its own stacks on one worker.

Both halves of that are checked here: that xdist keeps a group added by a collection hook on
one worker in collection order with the pytest installed (pytest 9.2 silently broke it:
pytest-dev/pytest-xdist#1386), and that the integration suite's hook puts its tests in the
groups it should.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

SAMPLE_CONFTEST = '''
import pytest

@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(session, config, items):
    items.sort(key=lambda item: item.path.stem != "test_first")  # as MODULE_ORDER does
    for item in items:
        if item.path.stem in ("test_first", "test_second"):
            item.add_marker(pytest.mark.xdist_group("shared"))
'''


def _pytest(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env={**os.environ, **(env or {})})


def test_a_group_added_at_collection_stays_on_one_worker_in_collection_order(tmp_path):
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "conftest.py").write_text(SAMPLE_CONFTEST)
    for name in ("test_second", "test_first", "test_other"):
        (tmp_path / f"{name}.py").write_text("".join(f"def test_{i}():\n    pass\n" for i in range(6)))
    run = _pytest(["-n", "2", "--dist", "loadgroup", "-v", "-p", "no:cacheprovider"], tmp_path)
    assert run.returncode == 0, run.stdout[-3000:]
    ran = re.findall(r"^\[(gw\d)\] \[\s*\d+%\] PASSED (\S+)", run.stdout, flags=re.M)
    grouped = [(worker, test) for worker, test in ran if test.endswith("@shared")]
    assert [test for _, test in grouped] == ([f"test_first.py::test_{i}@shared" for i in range(6)]
                                             + [f"test_second.py::test_{i}@shared" for i in range(6)])
    assert len({worker for worker, _ in grouped}) == 1
    assert len(ran) == 18


PLUGIN = '''
import json
import os


def pytest_collection_finish(session):
    suite = next(plugin for plugin in session.config.pluginmanager.get_plugins()
                 if str(getattr(plugin, "__file__", "")).endswith(os.path.join("integration", "conftest.py")))
    with open(os.environ["GROUPS_OUT"], "w") as out:
        json.dump({"module_order": suite.MODULE_ORDER, "shared_fixtures": sorted(suite.SHARED_STACK_FIXTURES),
                   "items": [{"module": item.path.stem, "fixtures": sorted(item.fixturenames),
                              "groups": [mark.args[0] for mark in item.iter_markers("xdist_group")]}
                             for item in session.items]}, out)
'''


def test_the_integration_tests_are_grouped_by_the_stack_they_use(tmp_path):
    (tmp_path / "groups_plugin.py").write_text(PLUGIN)
    out = tmp_path / "groups.json"
    run = _pytest(["tests/integration", "--collect-only", "-q", "-p", "groups_plugin"], REPO,
                  env={"PYTHONPATH": str(tmp_path), "GROUPS_OUT": str(out)})
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    collected = json.loads(out.read_text())
    items, module_order = collected["items"], collected["module_order"]
    assert len(items) > 50
    shared = [item for item in items if set(collected["shared_fixtures"]) & set(item["fixtures"])]
    assert shared and all(item["groups"] == ["shared-stack"] for item in shared)
    others = [item for item in items if item not in shared]
    assert others and all(item["groups"] == [item["module"]] for item in others)
    # one worker runs the shared group in collection order: MODULE_ORDER's modules first, in order
    modules = list(dict.fromkeys(item["module"] for item in shared))
    assert modules[:len(module_order)] == module_order
