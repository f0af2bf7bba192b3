"""The words a person reads when a month is refused: each violation, the error that carries
them (at most three shown, then how many more: the text is the one-line cause of a Fail state), and the size limit. Exact texts: operators
and runbooks grep for them."""

from __future__ import annotations

import pytest

from streamflow.violations import ContractError, Violation, check_sizes


def _violations(n: int) -> list[Violation]:
    return [Violation(f"f{i}.csv", "c" if i % 2 else "", f"rule {i}", "e" if i % 3 == 0 else "") for i in range(n)]


def test_a_violation_reads_where_then_what():
    assert str(Violation("users.csv", "user_id", "must be unique", "row 3 value 'x'")) == (
        "users.csv:user_id: must be unique (e.g. row 3 value 'x')")
    assert str(Violation("users.csv", "", "required file missing")) == "users.csv: required file missing"
    assert str(Violation("users.csv", "user_id", "must be unique")) == "users.csv:user_id: must be unique"
    assert Violation("a", "b", "c").example == ""


@pytest.mark.parametrize("n", [1, 2, 3])
def test_up_to_three_violations_are_all_shown(n):
    error = ContractError("month_004", _violations(n))
    assert str(error) == "month_004 breaks the data contract: " + "; ".join(str(v) for v in _violations(n))
    assert error.month == "month_004" and error.violations == _violations(n)
    assert isinstance(error, ValueError)


@pytest.mark.parametrize("n", [4, 25])
def test_past_three_the_rest_are_counted(n):
    error = ContractError("month_004", _violations(n))
    shown = "; ".join(str(v) for v in _violations(n)[:3])
    assert str(error) == f"month_004 breaks the data contract: {shown}; and {n - 3} more (see _REJECTION.json)"
    assert error.violations == _violations(n)


def test_files_over_the_limit_are_named_with_their_size():
    assert check_sizes({"users.csv": 1001, "labels.csv": 1000, "usage.csv": 5000}, max_file_bytes=1000) == [
        Violation("users.csv", "", "file larger than the limit of 1000 bytes", "1001 bytes"),
        Violation("usage.csv", "", "file larger than the limit of 1000 bytes", "5000 bytes"),
    ]
    assert check_sizes({}, max_file_bytes=0) == []
    assert check_sizes({"empty.csv": 0}, max_file_bytes=0) == []
