"""One real local stack for the integration suite, on spare ports beside any demo.

It is the same stack `make demo` runs: moto's server with the local Lambda executor, a
real `mlflow server`, the local API gateway, and template.yaml deployed into it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from streamflow_local.config import StackConfig
from streamflow_local.stack_client import seed
from streamflow_local.stack import deployed

from external import EXTERNAL, LogMirror, SkipLocalOnly, external_stack

TEST_USERS = 3000


@pytest.fixture(scope="session")
def stack(tmp_path_factory) -> StackConfig:
    state = tmp_path_factory.mktemp("stack")
    if EXTERNAL:  # an already deployed stack at AWS_ENDPOINT_URL (tests/integration/external.py)
        config = external_stack(state)
        with LogMirror(config, json.loads(config.stack_file.read_text())["functions"]):
            yield config
        return
    with deployed(StackConfig.on_spare_ports(state_dir=state, stack_name="sftest")) as config:
        yield config


def pytest_configure(config):
    if EXTERNAL:
        config.pluginmanager.register(SkipLocalOnly(), "streamflow-external-mode")


@pytest.fixture(scope="session")
def months(stack: StackConfig) -> list[Path]:
    return seed(stack.state_dir / "data", months=3, n_users=TEST_USERS)


# The modules share one stack and build on each other's state (who is champion): run them
# in this order, anything else after.
MODULE_ORDER = ["test_loop", "test_serving_rollback_approval", "test_robustness", "test_api_under_load"]


HERE = Path(__file__).parent
SHARED_STACK_FIXTURES = {"stack", "months"}


def integration_module(item) -> str | None:
    """The integration test module ``item`` is in (its file's stem); None for any other test."""
    return item.path.stem if HERE in item.path.parents else None


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups
def pytest_collection_modifyitems(session, config, items):
    def rank(item) -> int:
        name = integration_module(item)
        if name is None:
            return -1  # not an integration test: leave it where it is
        return MODULE_ORDER.index(name) if name in MODULE_ORDER else len(MODULE_ORDER)

    items.sort(key=rank)  # stable: keeps file order within a module
    for item in items:  # with pytest-xdist (``-n 2 --dist loadgroup``): see xdist_group
        group = xdist_group(item)
        if group:
            item.add_marker(pytest.mark.xdist_group(group))


def xdist_group(item) -> str | None:
    """The worker group of an integration test: every test on the shared stack in one group
    (one worker runs them in the order above, on one stack), each other module in its own
    (its private stacks are built once, on one worker)."""
    module = integration_module(item)
    if module is None:
        return None
    if SHARED_STACK_FIXTURES & set(getattr(item, "fixturenames", ())):
        return "shared-stack"
    return module
