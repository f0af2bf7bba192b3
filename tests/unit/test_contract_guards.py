"""Contract rules that one-line slips would silently drop, each checked on an otherwise valid month.

A month that breaks exactly one rule and is consistent everywhere else: a missing rule then
lets the month through (the tests in test_contract.py edit one file, so other rules, such
as the cross-table keys, would still refuse it and hide the slip).
"""

from __future__ import annotations

import re

import pytest

from csv_edit import read_rows, replaced, write_rows
from streamflow.contract import ID_REGEX, REQUIRED_PER_USER, check_month
from streamflow.schema import MONTH_FILES


def _without_user(files: dict[str, bytes], name: str, user_id: str) -> dict[str, bytes]:
    header, rows = read_rows(files[name])
    kept = [r for r in rows if r[0] != user_id]
    assert len(kept) == len(rows) - 1
    return replaced(files, name, write_rows(header, kept))


def _renamed_everywhere(files: dict[str, bytes], old: str, new: str) -> dict[str, bytes]:
    """The month with one user's id replaced in every file (keys stay consistent)."""
    out = {}
    for name, body in files.items():
        header, rows = read_rows(body)
        out[name] = write_rows(header, [[new if i == 0 and cell == old else cell for i, cell in enumerate(r)]
                                        for r in rows])
    return out


def _a_user(files: dict[str, bytes], index: int = 7) -> str:
    return read_rows(files["users.csv"])[1][index][0]


@pytest.mark.parametrize("name", ["subscriptions.csv", "labels.csv"])
def test_a_user_without_a_row_in_a_per_user_table_is_refused(month0_files, name):
    """Without a subscription row a user would silently get monthly_fee 0.0 and net_service
    "No" (features.py fills gaps of the aggregate tables); without a label row, no target."""
    user = _a_user(month0_files)
    result = check_month(_without_user(month0_files, name, user))
    assert not result.ok and result.tables == {}
    assert [(v.file, v.column, v.rule) for v in result.violations] == [
        (name, "user_id", "every user in users.csv needs a row here")]
    assert repr(user) in result.violations[0].example


def test_the_per_user_tables_are_exactly_subscriptions_and_labels():
    assert set(REQUIRED_PER_USER) == {"subscriptions.csv", "labels.csv"}


@pytest.mark.parametrize("name", ["usage_agg_30d.csv", "payments_agg_90d.csv", "support_agg_90d.csv"])
def test_a_user_without_events_may_be_absent_from_an_aggregate_table(month0_files, name):
    result = check_month(_without_user(month0_files, name, _a_user(month0_files)))
    assert result.ok, result.summary()
    assert set(result.tables) == set(MONTH_FILES)


@pytest.mark.parametrize("bad", ["7590-VHVEGX", "X7590-VHVEG", "17590-VHVEG", "7590-VHVE",
                                 "7590_VHVEG", "759O-VHVEG"])
def test_a_user_id_of_the_wrong_shape_is_refused_even_when_every_file_agrees(month0_files, bad):
    user = _a_user(month0_files)
    result = check_month(_renamed_everywhere(month0_files, user, bad))
    assert not result.ok and result.tables == {}
    users = [v for v in result.violations if v.file == "users.csv" and v.column == "user_id"]
    assert users and "7590-VHVEG" in users[0].rule and repr(bad) in users[0].example


def test_a_user_id_of_the_right_shape_renamed_everywhere_passes(month0_files):
    """The control for the test above: the renaming itself keeps the month valid."""
    result = check_month(_renamed_everywhere(month0_files, _a_user(month0_files), "0000-QQQQQ"))
    assert result.ok, result.summary()
    assert "0000-QQQQQ" in set(result.tables["users.csv"]["user_id"])


def test_id_regex_is_anchored_at_both_ends():
    assert re.fullmatch(r"\^.*\$", ID_REGEX)
    assert re.search(ID_REGEX, "7590-VHVEG") and not re.search(ID_REGEX, "7590-VHVEGX")


def test_the_summary_lists_up_to_the_limit_then_counts_the_rest():
    from streamflow.contract import ContractResult
    from streamflow.violations import Violation

    violations = [Violation(f"f{i}.csv", "", f"rule {i}") for i in range(4)]
    result = ContractResult(violations=violations)
    assert result.summary() == "f0.csv: rule 0; f1.csv: rule 1; f2.csv: rule 2; f3.csv: rule 3"
    assert result.summary(limit=4) == result.summary()
    assert result.summary(limit=3) == "f0.csv: rule 0; f1.csv: rule 1; f2.csv: rule 2; and 1 more"
    assert result.summary(limit=2) == "f0.csv: rule 0; f1.csv: rule 1; and 2 more"
    assert ContractResult().summary() == "" and ContractResult().ok
