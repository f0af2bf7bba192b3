"""What a person reads when a month is refused: the exact violation (file, column, rule,
example) for each kind of bad cell or key, as the quarantine report (_REJECTION.json) and
`streamflow status` show it. test_contract.py checks that each rule fires; this pins the
words and the row numbers (row N counts the header as row 1, as an editor does)."""

from __future__ import annotations

import pytest

from csv_edit import read_rows, with_cell, write_rows
from streamflow.contract import check_month
from streamflow.violations import Violation
from test_contract import _hand_written

CELLS = [
    ("subscriptions.csv", "contract_type", 1, "", "must not be empty", "row 3 value ''"),
    ("subscriptions.csv", "paperless_billing", 2, "Yes", "must be a boolean True/False", "row 4 value 'Yes'"),
    ("subscriptions.csv", "monthly_fee", 3, "abc", "must be a number", "row 5 value 'abc'"),
    ("subscriptions.csv", "months_active", 0, "3.5", "must be a whole number", "row 2 value '3.5'"),
    ("users.csv", "signup_date", 2, "2025-02-30", "must be a date YYYY-MM-DD", "row 4 value '2025-02-30'"),
    ("subscriptions.csv", "monthly_fee", 1, "-1", "must not be negative", "row 3 value -1.0"),
    ("payments_agg_90d.csv", "failed_payments_90d", 1, "-2", "must not be negative", "row 3 value -2"),
    ("subscriptions.csv", "net_service", 3, "Satellite", "must be one of DSL, Fiber optic, No", "row 5 value 'Satellite'"),
    ("users.csv", "user_gender", 0, "X", "must be one of Male, Female", "row 2 value 'X'"),
    ("labels.csv", "user_id", 2, "7590-vhveg", "must look like 7590-VHVEG", "row 4 value '7590-vhveg'"),
    ("payments_agg_90d.csv", "user_id", 1, "7590-VHVEG", "user_id must be unique", "row 2 value '7590-VHVEG'"),
    ("payments_agg_90d.csv", "user_id", 1, "1111-AAAAA", "user_id must exist in users.csv", "row 3 value '1111-AAAAA'"),
]


@pytest.mark.parametrize(("name", "column", "row", "value", "rule", "example"), CELLS,
                         ids=[f"{c[1]}={c[3]!r}" for c in CELLS])
def test_one_bad_cell_is_one_violation_with_its_rule_and_row(name, column, row, value, rule, example):
    files = _hand_written()
    files[name] = with_cell(files[name], column, row, value)
    result = check_month(files)
    assert result.violations == [Violation(name, column, rule, example)]
    assert result.tables == {}


def test_labels_of_one_class_are_refused_as_unfit_to_train_on():
    files = _hand_written()
    files["labels.csv"] = files["labels.csv"].replace(b"True", b"False")
    assert check_month(files).violations == [
        Violation("labels.csv", "churn_label", "must contain both classes (True and False)")]


def test_a_user_missing_from_a_per_user_table_is_named():
    files = _hand_written()
    header, rows = read_rows(files["subscriptions.csv"])
    files["subscriptions.csv"] = write_rows(header, rows[:3])
    assert check_month(files).violations == [
        Violation("subscriptions.csv", "user_id", "every user in users.csv needs a row here", "missing '9237-HQITU'")]


@pytest.mark.parametrize(("body", "violation"), [
    (b"", Violation("labels.csv", "", "must not be empty")),
    (b"  \n\n", Violation("labels.csv", "", "must not be empty")),
    (b"user_id,churn_label\n", Violation("labels.csv", "", "must have at least one data row")),
    (b"user_id,churn_label\n\xff\n", Violation("labels.csv", "", "must be UTF-8 text", "byte 20")),
    (b"user_id,churn_label\n7590-VHVEG,True,\n", Violation("labels.csv", "", "rows must have as many fields as the header",
                                                         "trailing comma?")),
], ids=["empty", "blank", "header_only", "not_utf8", "trailing_comma"])
def test_a_file_that_is_not_a_table_is_named_with_why(body, violation):
    assert check_month(_hand_written() | {"labels.csv": body}).violations == [violation]


def test_missing_and_unknown_files_and_columns_are_each_named():
    files = _hand_written()
    del files["labels.csv"]
    files["notes.txt"] = b"x"
    files["payments_agg_90d.csv"] = b"user_id,failed\n7590-VHVEG,0\n"
    assert check_month(files).violations == [
        Violation("labels.csv", "", "required file missing"),
        Violation("notes.txt", "", "unknown file"),
        Violation("payments_agg_90d.csv", "failed_payments_90d", "required column missing"),
        Violation("payments_agg_90d.csv", "failed", "unknown column"),
    ]
