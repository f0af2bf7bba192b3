"""The month data contract: one test per rule, plus valid months that must pass."""

from __future__ import annotations

import pandas as pd
import pytest

from csv_edit import read_rows, replaced, with_cell, write_rows
from streamflow.contract import ContractError, Violation, check_month, check_sizes
from streamflow.schema import MONTH_FILES, NULLABLE_COLUMNS, TABLE_COLUMNS


def only(result, file: str, column: str) -> Violation:
    """The single violation of ``file``/``column``; the month must be refused as a whole."""
    assert not result.ok
    assert result.tables == {}, "a refused month must not hand out tables"
    found = [v for v in result.violations if v.file == file and v.column == column]
    assert len(found) == 1, result.violations
    return found[0]


def file_line(body: bytes, example: str) -> str:
    """The line of the CSV file the example's ``row N`` points at (N counts the header as 1)."""
    n = int(example.split()[1])
    return body.decode("utf-8").splitlines()[n - 1]


# --- valid months ----------------------------------------------------------------------------


def test_generated_month_passes_and_is_typed(month0_files):
    result = check_month(month0_files)
    assert result.ok, result.summary()
    assert result.violations == []
    assert set(result.tables) == set(MONTH_FILES)
    for name, frame in result.tables.items():
        assert list(frame.columns) == TABLE_COLUMNS[name]
        assert len(frame) == 500
    labels = result.tables["labels.csv"]["churn_label"]
    assert pd.api.types.is_bool_dtype(labels)
    assert set(labels.dropna()) == {True, False}
    subs = result.tables["subscriptions.csv"]
    assert pd.api.types.is_bool_dtype(subs["paperless_billing"])
    assert pd.api.types.is_integer_dtype(subs["months_active"])
    assert pd.api.types.is_float_dtype(subs["monthly_fee"])
    assert pd.api.types.is_datetime64_any_dtype(result.tables["users.csv"]["signup_date"])
    # Empty add-ons become missing values, exactly for users without a net service.
    no_net = subs["net_service"] == "No"
    for column in NULLABLE_COLUMNS:
        assert pd.api.types.is_bool_dtype(subs[column])
        assert (subs[column].isna() == no_net).all(), column


HAND_WRITTEN = {
    "users.csv": """user_id,signup_date,user_gender,user_is_senior,has_family,has_dependents
7590-VHVEG,2024-03-01,Female,False,True,False
5575-GNVDE,2023-07-15,Male,False,False,False
3668-QPYBK,2025-10-02,Male,True,False,False
9237-HQITU,2025-11-20,Female,False,True,True
""",
    "subscriptions.csv": """user_id,months_active,plan_stream_tv,plan_stream_movies,contract_type,paperless_billing,monthly_fee,total_paid,net_service,add_on_security,add_on_backup,add_on_device_protect,add_on_support
7590-VHVEG,22,False,False,Month-to-month,True,29.85,29.85,DSL,False,True,False,False
5575-GNVDE,30,False,False,One year,False,56.95,1889.5,DSL,True,False,True,False
3668-QPYBK,3,False,False,Month-to-month,True,20.15,53.85,No,,,,
9237-HQITU,2,True,True,Two year,True,99.65,199.3,Fiber optic,False,False,False,True
""",
    "usage_agg_30d.csv": """user_id,watch_hours_30d,avg_session_mins_7d,unique_devices_30d,skips_7d,rebuffer_events_7d
7590-VHVEG,41.5,35.2,2,6,1
5575-GNVDE,12,40,1,3,0
3668-QPYBK,3.25,12.5,1,9,4
9237-HQITU,80.0,51.0,3,2,2
""",
    "payments_agg_90d.csv": """user_id,failed_payments_90d
7590-VHVEG,0
5575-GNVDE,0
3668-QPYBK,2
9237-HQITU,1
""",
    # Users without tickets may be absent from an aggregate table.
    "support_agg_90d.csv": """user_id,support_tickets_90d,ticket_avg_resolution_hrs_90d
3668-QPYBK,2,30.5
9237-HQITU,1,4
""",
    "labels.csv": """user_id,churn_label
7590-VHVEG,False
5575-GNVDE,False
3668-QPYBK,True
9237-HQITU,True
""",
}


def _hand_written(**overrides: str) -> dict[str, bytes]:
    texts = {**HAND_WRITTEN, **overrides}
    return {name: text.encode("utf-8") for name, text in texts.items()}


def test_hand_written_month_in_the_course_style_passes():
    result = check_month(_hand_written())
    assert result.ok, result.summary()
    subs = result.tables["subscriptions.csv"].set_index("user_id")
    assert subs.loc["3668-QPYBK", "add_on_backup"] is pd.NA
    assert bool(subs.loc["7590-VHVEG", "add_on_backup"]) is True
    assert subs.loc["5575-GNVDE", "total_paid"] == pytest.approx(1889.5)
    assert subs.loc["9237-HQITU", "months_active"] == 2
    assert result.tables["users.csv"].set_index("user_id").loc["7590-VHVEG", "signup_date"] == pd.Timestamp("2024-03-01")
    assert len(result.tables["support_agg_90d.csv"]) == 2


def test_hand_written_month_with_windows_line_ends_and_a_bom_passes():
    files = {name: ("\ufeff" + text).replace("\n", "\r\n").encode("utf-8") for name, text in HAND_WRITTEN.items()}
    result = check_month(files)
    assert result.ok, result.summary()
    assert list(result.tables["users.csv"].columns) == TABLE_COLUMNS["users.csv"]
    assert result.tables["users.csv"]["user_id"].iloc[0] == "7590-VHVEG"


def test_lowercase_and_uppercase_booleans_are_accepted(month0_files, month0_tables):
    text = month0_files["subscriptions.csv"].decode("utf-8")
    lower = text.replace(",True", ",true").replace(",False", ",false")
    upper = text.replace(",True", ",TRUE").replace(",False", ",FALSE")
    assert lower != text and upper != text
    for variant in (lower, upper):
        result = check_month(replaced(month0_files, "subscriptions.csv", variant.encode("utf-8")))
        assert result.ok, result.summary()
        pd.testing.assert_frame_equal(result.tables["subscriptions.csv"], month0_tables["subscriptions.csv"])


def test_empty_add_on_is_accepted_even_for_a_net_user(month0_files):
    subs = month0_files["subscriptions.csv"]
    header, rows = read_rows(subs)
    row = next(i for i, r in enumerate(rows) if r[header.index("net_service")] != "No")
    result = check_month(replaced(month0_files, "subscriptions.csv", with_cell(subs, "add_on_backup", row, "")))
    assert result.ok, result.summary()
    assert result.tables["subscriptions.csv"]["add_on_backup"].iloc[row] is pd.NA


def test_whole_number_written_with_a_decimal_point_is_accepted(month0_files):
    subs = with_cell(month0_files["subscriptions.csv"], "months_active", 0, "7.0")
    result = check_month(replaced(month0_files, "subscriptions.csv", subs))
    assert result.ok, result.summary()
    assert result.tables["subscriptions.csv"]["months_active"].iloc[0] == 7


# --- files -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", MONTH_FILES)
def test_missing_file(month0_files, name):
    result = check_month(replaced(month0_files, name, None))
    violation = only(result, name, "")
    assert "missing" in violation.rule


def test_unknown_extra_file(month0_files):
    result = check_month(replaced(month0_files, "notes.csv", b"a,b\n1,2\n"))
    violation = only(result, "notes.csv", "")
    assert "unknown file" in violation.rule


def test_empty_file(month0_files):
    violation = only(check_month(replaced(month0_files, "payments_agg_90d.csv", b"")), "payments_agg_90d.csv", "")
    assert "empty" in violation.rule


def test_header_only(month0_files):
    body = b"user_id,failed_payments_90d\n"
    violation = only(check_month(replaced(month0_files, "payments_agg_90d.csv", body)), "payments_agg_90d.csv", "")
    assert "row" in violation.rule


def test_non_utf8_bytes(month0_files):
    body = month0_files["users.csv"].decode("utf-8").replace("Male", "Mäle", 1).encode("latin-1")
    violation = only(check_month(replaced(month0_files, "users.csv", body)), "users.csv", "")
    assert "UTF-8" in violation.rule
    offset = int(violation.example.split()[-1])
    assert body[offset] == "ä".encode("latin-1")[0]


def test_missing_file_and_bad_file_are_both_reported(month0_files):
    files = replaced(replaced(month0_files, "labels.csv", None), "users.csv", b"")
    result = check_month(files)
    assert {(v.file, v.column) for v in result.violations} == {("labels.csv", ""), ("users.csv", "")}


# --- columns -----------------------------------------------------------------------------------


def test_missing_column(month0_files):
    header, rows = read_rows(month0_files["usage_agg_30d.csv"])
    i = header.index("skips_7d")
    body = write_rows(header[:i] + header[i + 1:], [r[:i] + r[i + 1:] for r in rows])
    result = check_month(replaced(month0_files, "usage_agg_30d.csv", body))
    violation = only(result, "usage_agg_30d.csv", "skips_7d")
    assert "missing" in violation.rule
    assert len(result.violations) == 1


def test_renamed_column_is_a_missing_and_an_unknown_column(month0_files):
    body = month0_files["support_agg_90d.csv"].replace(b"support_tickets_90d", b"tickets_90d", 1)
    result = check_month(replaced(month0_files, "support_agg_90d.csv", body))
    assert "missing" in only(result, "support_agg_90d.csv", "support_tickets_90d").rule
    assert "unknown" in only(result, "support_agg_90d.csv", "tickets_90d").rule
    assert len(result.violations) == 2


# --- values ------------------------------------------------------------------------------------


def _bad_cell(files, name, column, row, value):
    body = with_cell(files[name], column, row, value)
    result = check_month(replaced(files, name, body))
    violation = only(result, name, column)
    # The example points at the right line of the file and quotes the value.
    assert violation.example.startswith(f"row {row + 2} ")
    assert repr(value) in violation.example or str(value) in violation.example
    assert file_line(body, violation.example).split(",")[0] == read_rows(body)[1][row][0]
    return violation


def test_text_in_a_numeric_column(month0_files):
    violation = _bad_cell(month0_files, "subscriptions.csv", "monthly_fee", 3, "abc")
    assert "number" in violation.rule


def test_text_in_an_integer_column(month0_files):
    violation = _bad_cell(month0_files, "usage_agg_30d.csv", "skips_7d", 10, "many")
    assert "number" in violation.rule


def test_fractional_value_in_an_integer_column(month0_files):
    violation = _bad_cell(month0_files, "subscriptions.csv", "months_active", 7, "3.5")
    assert "whole" in violation.rule


@pytest.mark.parametrize("value", ["2026-13-01", "01/02/2026", "yesterday", "2025-02-30"])
def test_unparsable_date(month0_files, value):
    violation = _bad_cell(month0_files, "users.csv", "signup_date", 4, value)
    assert "date" in violation.rule and "YYYY-MM-DD" in violation.rule


@pytest.mark.parametrize("value", ["01/02/2026", "2026/01/02", "2 Jan 2026", "20260102"])
def test_a_date_in_another_format_is_refused_in_the_first_row_too(month0_files, value):
    """Only YYYY-MM-DD is a date: pandas left to guess would take the first row's format for
    the whole column, accept that row and refuse the good ones below it."""
    violation = _bad_cell(month0_files, "users.csv", "signup_date", 0, value)
    assert violation.rule == "must be a date YYYY-MM-DD"


@pytest.mark.parametrize("value", ["Yes", "No", "yes", "1", "0", "T"])
def test_booleans_other_than_true_false_are_rejected(month0_files, value):
    violation = _bad_cell(month0_files, "subscriptions.csv", "paperless_billing", 2, value)
    assert "boolean" in violation.rule


def test_yes_no_label_is_rejected(month0_files):
    violation = _bad_cell(month0_files, "labels.csv", "churn_label", 0, "Yes")
    assert "boolean" in violation.rule


@pytest.mark.parametrize(
    ("name", "column"),
    [
        ("subscriptions.csv", "monthly_fee"),
        ("subscriptions.csv", "total_paid"),
        ("payments_agg_90d.csv", "failed_payments_90d"),
        ("usage_agg_30d.csv", "rebuffer_events_7d"),
    ],
)
def test_negative_fee_or_count(month0_files, name, column):
    violation = _bad_cell(month0_files, name, column, 5, "-1")
    assert "negative" in violation.rule


def test_net_service_outside_its_categories(month0_files):
    violation = _bad_cell(month0_files, "subscriptions.csv", "net_service", 1, "Satellite")
    assert "DSL" in violation.rule and "Fiber optic" in violation.rule and "No" in violation.rule


def test_contract_type_outside_its_categories(month0_files):
    violation = _bad_cell(month0_files, "subscriptions.csv", "contract_type", 1, "month-to-month")
    assert "Month-to-month" in violation.rule


@pytest.mark.parametrize(
    ("name", "column"),
    [("subscriptions.csv", "contract_type"), ("subscriptions.csv", "monthly_fee"), ("users.csv", "user_is_senior")],
)
def test_empty_non_nullable_value_is_rejected(month0_files, name, column):
    violation = _bad_cell(month0_files, name, column, 6, "")
    assert "empty" in violation.rule


def test_user_id_of_the_wrong_shape(month0_files):
    violation = _bad_cell(month0_files, "users.csv", "user_id", 8, "7590-vhveg")
    assert "7590-VHVEG" in violation.rule


# --- keys --------------------------------------------------------------------------------------


def test_duplicate_user_id(month0_files):
    header, rows = read_rows(month0_files["usage_agg_30d.csv"])
    body = write_rows(header, rows + [rows[3]])
    violation = only(check_month(replaced(month0_files, "usage_agg_30d.csv", body)), "usage_agg_30d.csv", "user_id")
    assert "unique" in violation.rule
    assert rows[3][0] in violation.example


def test_user_id_absent_from_users_csv(month0_files):
    header, rows = read_rows(month0_files["users.csv"])
    known = {r[0] for r in rows}
    stranger = next(f"{d:04d}-ZZZZZ" for d in range(10_000) if f"{d:04d}-ZZZZZ" not in known)
    body = with_cell(month0_files["payments_agg_90d.csv"], "user_id", 12, stranger)
    result = check_month(replaced(month0_files, "payments_agg_90d.csv", body))
    violation = only(result, "payments_agg_90d.csv", "user_id")
    assert "users.csv" in violation.rule
    assert stranger in violation.example
    assert len(result.violations) == 1


def test_labels_with_a_single_class(month0_files):
    body = month0_files["labels.csv"].replace(b",True\n", b",False\n")
    assert b",True" not in body
    violation = only(check_month(replaced(month0_files, "labels.csv", body)), "labels.csv", "churn_label")
    assert "True" in violation.rule and "False" in violation.rule


# --- reporting ---------------------------------------------------------------------------------


def test_violation_text_names_file_column_rule_and_example():
    text = str(Violation("users.csv", "signup_date", "must be a date YYYY-MM-DD", "row 3 value 'x'"))
    assert text == "users.csv:signup_date: must be a date YYYY-MM-DD (e.g. row 3 value 'x')"
    assert str(Violation("labels.csv", "", "required file missing")) == "labels.csv: required file missing"


def test_summary_and_error_cap_the_list(month0_files):
    files = {"extra_%02d.csv" % i: b"x" for i in range(12)}  # 12 unknown + 6 missing files
    result = check_month(files)
    assert len(result.violations) == 18
    assert result.summary().endswith("; and 8 more")
    assert result.summary(limit=20).count(";") == 17
    error = ContractError("month_004", result.violations)
    assert "month_004" in str(error) and "and 15 more (see _REJECTION.json)" in str(error)  # short: it is the Fail cause
    assert error.violations == result.violations
    assert result.as_dicts()[0].keys() == {"file", "column", "rule", "example"}


# --- known gaps (documented bugs; see the report) ------------------------------------------------


def test_rows_with_a_trailing_comma_are_reported_not_raised(month0_files):
    """Every data row has one field more than the header (a trailing comma, common in hand-made CSVs).

    pandas then silently uses the first column as the index, and ``_first_bad`` /
    the pandera example do ``int(index)`` on a user id: check_month raises ValueError
    instead of returning a violation.
    """
    header, rows = read_rows(month0_files["payments_agg_90d.csv"])
    body = ",".join(header).encode() + b"\n" + b"".join((",".join(r) + ",\n").encode() for r in rows)
    result = check_month(replaced(month0_files, "payments_agg_90d.csv", body))
    assert not result.ok
    assert all(v.file == "payments_agg_90d.csv" for v in result.violations)


def test_file_over_the_size_limit_is_refused_before_it_is_read():
    violations = check_sizes({"users.csv": 1_000, "labels.csv": 1_001}, max_file_bytes=1_000)
    assert [(v.file, v.column) for v in violations] == [("labels.csv", "")]
    assert "larger than the limit of 1000 bytes" in violations[0].rule and "1001 bytes" in violations[0].example
    assert check_sizes({"users.csv": 10}, max_file_bytes=1_000) == []


def test_a_json_document_in_place_of_a_csv_is_rejected(month0_files):
    result = check_month(replaced(month0_files, "users.csv", b'{"users": [{"user_id": "7590-VHVEG"}]}\n'))
    assert not result.ok
    assert {v.file for v in result.violations} == {"users.csv"}
    assert any(v.rule == "required column missing" and v.column == "user_id" for v in result.violations)


def test_a_binary_file_in_place_of_a_csv_is_rejected(month0_files):
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10"
    result = check_month(replaced(month0_files, "support_agg_90d.csv", png))
    assert [(v.file, v.rule) for v in result.violations] == [("support_agg_90d.csv", "must be UTF-8 text")]


# --- CSV dialect and the texts of parser errors ----------------------------------------------


def test_a_file_the_csv_parser_cannot_read_is_refused_with_the_parsers_first_line(month0_files):
    header, rows = read_rows(month0_files["users.csv"])
    body = write_rows(header, rows[:3]) + b'7590-VHVEG,"2024-01-01,Male,False,False,False\n'  # quote never closed
    result = check_month(replaced(month0_files, "users.csv", body))
    violation = only(result, "users.csv", "")
    assert violation.rule == "must be a CSV file"
    assert violation.example and "\n" not in violation.example and "EOF inside string" in violation.example


def test_a_parser_message_is_cut_to_its_first_line_of_at_most_120_characters():
    from streamflow.contract import first_line

    assert first_line("x" * 200 + "\nsecond") == "x" * 120
    assert first_line("short\nsecond") == "short"
    assert first_line("") == ""


def test_a_quoted_value_after_a_space_keeps_its_quotes_as_rfc_4180_says(month0_files):
    """A space before the opening quote makes the quotes part of the value (RFC 4180, pandas'
    default): ` "One year"` is not the category One year."""
    header, rows = read_rows(month0_files["subscriptions.csv"])
    column = header.index("contract_type")
    lines = month0_files["subscriptions.csv"].decode().splitlines()
    cells = lines[1 + 2].split(",")
    cells[column] = ' "One year"'
    lines[1 + 2] = ",".join(cells)
    result = check_month(replaced(month0_files, "subscriptions.csv", ("\n".join(lines) + "\n").encode()))
    violation = only(result, "subscriptions.csv", "contract_type")
    assert violation.rule.startswith("must be one of") and violation.example.startswith("row 4 ")


def test_every_broken_rule_of_a_table_is_reported_not_only_the_first(month0_files):
    body = with_cell(month0_files["subscriptions.csv"], "monthly_fee", 1, "-5")
    body = with_cell(body, "contract_type", 2, "Weekly")
    result = check_month(replaced(month0_files, "subscriptions.csv", body))
    assert not result.ok
    found = {(v.column, v.rule, v.example) for v in result.violations if v.file == "subscriptions.csv"}
    assert found == {("monthly_fee", "must not be negative", "row 3 value -5.0"),
                     ("contract_type", "must be one of Month-to-month, One year, Two year", "row 4 value 'Weekly'")}


def test_a_missing_file_does_not_hide_what_is_wrong_in_the_files_after_it(month0_files):
    files = replaced(month0_files, "users.csv", None)
    files = replaced(files, "labels.csv", with_cell(files["labels.csv"], "churn_label", 2, "maybe"))
    found = {(v.file, v.rule) for v in check_month(files).violations}
    assert found == {("users.csv", "required file missing"), ("labels.csv", "must be a boolean True/False")}


def test_parse_table_hands_out_no_table_when_a_rule_is_broken(month0_files):
    from streamflow.contract import parse_table

    table, violations = parse_table("subscriptions.csv",
                                    with_cell(month0_files["subscriptions.csv"], "monthly_fee", 0, "-1"))
    assert table is None and [v.rule for v in violations] == ["must not be negative"]
    table, violations = parse_table("subscriptions.csv", month0_files["subscriptions.csv"])
    assert violations == [] and len(table) == 500
