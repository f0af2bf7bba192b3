"""The month generator: deterministic bytes, exact schema, persistent users, drift over time."""

import hashlib
import json
import re

import numpy as np
import pandas as pd
import pytest

from csv_edit import read_rows
from streamflow.generator import build_manifest, generate_month, month_csv_bytes, write_month
from streamflow.schema import BOOLEAN_COLUMNS, MANIFEST_NAME, MONTH_FILES, NULLABLE_COLUMNS, TABLE_COLUMNS

ID_SHAPE = re.compile(r"^\d{4}-[A-Z]{5}$")


def _bytes(month, n=300, seed=42):
    return month_csv_bytes(generate_month(month, n_users=n, seed=seed))


def test_same_arguments_give_the_same_bytes():
    assert _bytes(1, seed=5) == _bytes(1, seed=5)


def test_a_different_seed_gives_different_bytes_in_every_file():
    a, b = _bytes(0, seed=1), _bytes(0, seed=2)
    for name in MONTH_FILES:
        assert a[name] != b[name], name


def test_a_different_month_gives_different_behaviour():
    a, b = _bytes(0), _bytes(1)
    assert a["usage_agg_30d.csv"] != b["usage_agg_30d.csv"]
    assert a["labels.csv"] != b["labels.csv"]


def test_every_file_has_exactly_the_schema_columns_in_order(month0_files):
    assert set(month0_files) == set(MONTH_FILES)
    for name, body in month0_files.items():
        header, rows = read_rows(body)
        assert header == TABLE_COLUMNS[name], name
        assert all(len(row) == len(header) for row in rows), name


def test_files_are_utf8_with_unix_line_ends_and_no_index(month0_files):
    for name, body in month0_files.items():
        text = body.decode("utf-8")
        assert "\r" not in text, name
        assert text.endswith("\n"), name
        assert text.splitlines()[0].split(",")[0] == "user_id", name


def test_one_row_per_user_in_every_table_with_the_requested_size():
    tables = generate_month(0, n_users=257, seed=3)
    for name, frame in tables.items():
        assert len(frame) == 257, name


def test_user_ids_look_like_the_course_ids_and_are_unique():
    users = generate_month(0, n_users=3000, seed=11)["users.csv"]
    ids = users["user_id"]
    assert ids.map(lambda u: bool(ID_SHAPE.match(u))).all()
    assert ids.is_unique


def test_every_table_lists_the_same_users(month0_files):
    _, users = read_rows(month0_files["users.csv"])
    expected = [row[0] for row in users]
    for name, body in month0_files.items():
        _, rows = read_rows(body)
        assert [row[0] for row in rows] == expected, name


def test_users_persist_across_months_and_grow_older():
    m0, m3 = generate_month(0, 200, 8), generate_month(3, 200, 8)
    assert list(m0["users.csv"]["user_id"]) == list(m3["users.csv"]["user_id"])
    assert list(m0["users.csv"]["user_gender"]) == list(m3["users.csv"]["user_gender"])
    tenure_gain = m3["subscriptions.csv"]["months_active"] - m0["subscriptions.csv"]["months_active"]
    assert (tenure_gain == 3).all()


def test_booleans_are_written_as_True_or_False(month0_files):
    for name, body in month0_files.items():
        header, rows = read_rows(body)
        for column in BOOLEAN_COLUMNS.intersection(header):
            i = header.index(column)
            allowed = {"True", "False"} | ({""} if column in NULLABLE_COLUMNS else set())
            values = {row[i] for row in rows}
            assert values <= allowed, (name, column, values - allowed)
            assert {"True", "False"} <= values, (name, column)  # both occur in 500 users


def test_add_ons_are_empty_exactly_when_there_is_no_net_service(month0_files):
    header, rows = read_rows(month0_files["subscriptions.csv"])
    net = header.index("net_service")
    add_ons = [header.index(c) for c in sorted(NULLABLE_COLUMNS)]
    assert {row[net] for row in rows} == {"DSL", "Fiber optic", "No"}
    for row in rows:
        empty = [row[i] == "" for i in add_ons]
        if row[net] == "No":
            assert all(empty), row
        else:
            assert not any(empty), row


def test_signup_dates_are_iso_dates_before_the_month(month0_files):
    header, rows = read_rows(month0_files["users.csv"])
    i = header.index("signup_date")
    dates = pd.to_datetime([row[i] for row in rows], format="%Y-%m-%d")
    assert (dates < pd.Timestamp("2026-01-01")).all()


def test_both_classes_occur_with_a_plausible_churn_rate(month0_files):
    _, rows = read_rows(month0_files["labels.csv"])
    rate = np.mean([row[1] == "True" for row in rows])
    assert 0.1 < rate < 0.6


def test_later_months_drift_in_covariates():
    m0, m1 = generate_month(0, 2000, 42), generate_month(1, 2000, 42)
    u0, u1 = m0["usage_agg_30d.csv"], m1["usage_agg_30d.csv"]
    assert u1["watch_hours_30d"].mean() < u0["watch_hours_30d"].mean()
    assert u1["avg_session_mins_7d"].mean() < u0["avg_session_mins_7d"].mean()
    assert u1["rebuffer_events_7d"].mean() > u0["rebuffer_events_7d"].mean()
    assert u1["skips_7d"].mean() > u0["skips_7d"].mean()
    assert m1["subscriptions.csv"]["monthly_fee"].mean() > m0["subscriptions.csv"]["monthly_fee"].mean()


def test_at_least_one_user_is_required():
    with pytest.raises(ValueError):
        generate_month(0, n_users=0)


def test_manifest_names_each_file_with_its_size_and_sha256(month0_files):
    manifest = build_manifest("month_000", month0_files, {"generator": {"seed": 42}})
    assert manifest["month"] == "month_000"
    assert manifest["generator"] == {"seed": 42}
    assert list(manifest["files"]) == sorted(month0_files)
    for name, body in month0_files.items():
        assert manifest["files"][name]["bytes"] == len(body)
        assert manifest["files"][name]["sha256"] == hashlib.sha256(body).hexdigest()


def test_manifest_changes_when_a_file_changes(month0_files):
    changed = dict(month0_files, **{"labels.csv": month0_files["labels.csv"] + b"\n"})
    assert build_manifest("month_000", changed) != build_manifest("month_000", month0_files)


def test_write_month_writes_the_files_and_then_a_matching_manifest(tmp_path):
    folder = write_month(tmp_path, 2, n_users=120, seed=9)
    assert folder == tmp_path / "month_002"
    expected = _bytes(2, n=120, seed=9)
    assert sorted(p.name for p in folder.iterdir()) == sorted([*MONTH_FILES, MANIFEST_NAME])
    for name, body in expected.items():
        assert (folder / name).read_bytes() == body, name
    manifest = json.loads((folder / MANIFEST_NAME).read_text())
    assert manifest == build_manifest("month_002", expected, {"generator": {"seed": 9, "n_users": 120}})
