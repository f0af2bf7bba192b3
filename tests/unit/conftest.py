"""Shared, session-scoped data for the unit suite: one valid month, generated once."""

from __future__ import annotations

import functools

import pytest

from streamflow.contract import check_month
from streamflow.generator import generate_month, month_csv_bytes

UNIT_USERS = 500
UNIT_SEED = 42


@functools.cache
def _generated_month0() -> dict[str, bytes]:
    # Kept by the process, not the session: `make mutate` runs many sessions in forks of
    # one process, and the generator is not among the mutated modules.
    return month_csv_bytes(generate_month(0, n_users=UNIT_USERS, seed=UNIT_SEED))


@pytest.fixture(scope="session")
def month0_files() -> dict[str, bytes]:
    """A valid month_000 as the uploaded bytes, {file name: bytes}. Treat as read-only."""
    return _generated_month0()


@pytest.fixture(scope="session")
def month0_tables(month0_files):
    """The typed tables check_month makes of ``month0_files``. Treat as read-only."""
    result = check_month(month0_files)
    assert result.ok, result.summary()
    return result.tables
