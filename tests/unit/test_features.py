"""Feature building: one row per user, the model's columns, zero counts for absent users."""

from __future__ import annotations

from decimal import Decimal

import pandas as pd
import pytest

from csv_edit import read_rows, replaced, write_rows
from streamflow.contract import check_month
from streamflow.features import build_features, normalise_feature_types
from streamflow.schema import BOOLEAN_FEATURES, MODEL_FEATURES, NUMERIC_FEATURES, TARGET

AGGREGATES = ("usage_agg_30d.csv", "payments_agg_90d.csv", "support_agg_90d.csv")


@pytest.fixture
def month0_features(month0_tables):
    # Built for each test, not once a module: `make mutate` runs, for a mutant of
    # build_features, only the tests that call it, and a cached frame is called by one.
    return build_features(month0_tables)


def test_one_row_per_user_indexed_by_user_id(month0_tables, month0_features):
    users = month0_tables["users.csv"]["user_id"]
    assert month0_features.index.name == "user_id"
    assert month0_features.index.is_unique
    assert set(month0_features.index) == set(users)
    assert len(month0_features) == len(users)


def test_columns_are_the_model_features_then_the_label(month0_features):
    assert list(month0_features.columns) == MODEL_FEATURES + [TARGET]


def test_without_labels_there_is_no_label_column(month0_tables):
    tables = {k: v for k, v in month0_tables.items() if k != "labels.csv"}
    frame = build_features(tables)
    assert list(frame.columns) == MODEL_FEATURES


def test_dtypes_are_what_the_model_expects(month0_features):
    for column in BOOLEAN_FEATURES + [TARGET]:
        assert month0_features[column].dtype == bool, column
    for column in NUMERIC_FEATURES:
        assert month0_features[column].dtype == "float64", column
    assert set(month0_features["net_service"]) == {"DSL", "Fiber optic", "No"}
    assert month0_features.notna().all().all()


def test_values_come_from_the_right_user_in_each_table(month0_tables, month0_features):
    for user in list(month0_features.index[::97]):
        row = month0_features.loc[user]
        for name in ("subscriptions.csv", *AGGREGATES, "labels.csv"):
            source = month0_tables[name].set_index("user_id").loc[user]
            for column in source.index:
                if column in row.index:
                    assert row[column] == source[column], (user, name, column)


def test_users_missing_from_aggregate_tables_get_zero_counts(month0_files):
    dropped = {}
    files = dict(month0_files)
    for i, name in enumerate(AGGREGATES):
        header, rows = read_rows(files[name])
        dropped[name] = rows[i][0]
        files = replaced(files, name, write_rows(header, rows[:i] + rows[i + 1:]))
    result = check_month(files)
    assert result.ok, result.summary()
    frame = build_features(result.tables)
    assert len(frame) == 500
    for name, user in dropped.items():
        for column in result.tables[name].columns.drop("user_id"):
            assert frame.loc[user, column] == 0.0, (name, column)
    # Their other features are untouched.
    usage_user = dropped["usage_agg_30d.csv"]
    fee = result.tables["subscriptions.csv"].set_index("user_id").loc[usage_user, "monthly_fee"]
    assert frame.loc[usage_user, "monthly_fee"] == fee
    assert frame.notna().all().all()


def test_normalise_feature_types_from_online_store_values():
    """An item read back from DynamoDB: numbers as Decimal/str, a missing boolean, no net service."""
    row = {column: Decimal("2") for column in NUMERIC_FEATURES}
    row["monthly_fee"] = "70.35"
    row["skips_7d"] = None
    row.update(paperless_billing=True, plan_stream_tv=None, plan_stream_movies=False, net_service=None)
    frame = pd.DataFrame([row], index=pd.Index(["7590-VHVEG"], name="user_id"))
    out = normalise_feature_types(frame)
    assert out.loc["7590-VHVEG", "monthly_fee"] == pytest.approx(70.35)
    assert out.loc["7590-VHVEG", "months_active"] == 2.0
    assert out.loc["7590-VHVEG", "skips_7d"] == 0.0
    assert out["plan_stream_tv"].dtype == bool and not out.loc["7590-VHVEG", "plan_stream_tv"]
    assert bool(out.loc["7590-VHVEG", "paperless_billing"]) is True
    assert out.loc["7590-VHVEG", "net_service"] == "No"
    for column in NUMERIC_FEATURES:
        assert out[column].dtype == "float64", column
    assert frame.loc["7590-VHVEG", "net_service"] is None, "the input frame must not be modified"


def test_normalise_feature_types_is_idempotent(month0_features):
    again = normalise_feature_types(month0_features)
    pd.testing.assert_frame_equal(again, month0_features)


def test_a_user_without_a_label_is_refused_by_the_contract_not_crashed_on_later(month0_files):
    """A user in users.csv with no row in labels.csv would make build_features fail on
    ``frame[TARGET].astype(bool)``: the contract must stop that month first."""
    header, rows = read_rows(month0_files["labels.csv"])
    result = check_month(replaced(month0_files, "labels.csv", write_rows(header, rows[1:])))
    assert not result.ok
    assert [(v.file, v.column, v.rule) for v in result.violations] == [
        ("labels.csv", "user_id", "every user in users.csv needs a row here")]


@pytest.mark.parametrize(("name", "labelled"), [("subscriptions.csv", True), ("payments_agg_90d.csv", True),
                                               ("labels.csv", True), ("support_agg_90d.csv", False)])
def test_a_table_with_a_user_twice_is_refused_not_joined_into_two_rows(month0_tables, name, labelled):
    """The contract refuses such a table first; the join checks it again rather than give a
    user two rows (two labels, or features counted twice), with or without labels."""
    tables = {k: v for k, v in month0_tables.items() if labelled or k != "labels.csv"}
    tables[name] = pd.concat([tables[name], tables[name].iloc[[3]]], ignore_index=True)
    with pytest.raises(pd.errors.MergeError):
        build_features(tables)


def test_tables_are_joined_on_user_id_only_even_when_they_share_another_column(month0_tables, month0_features):
    """A column two tables happen to share (here added by hand; the contract refuses unknown
    columns) must not become a join key, or no row would match and features would be lost."""
    tables = dict(month0_tables)
    tables["subscriptions.csv"] = tables["subscriptions.csv"].assign(note="subscription", memo="subscription")
    tables["usage_agg_30d.csv"] = tables["usage_agg_30d.csv"].assign(memo="usage")
    tables["labels.csv"] = tables["labels.csv"].assign(note="label")
    pd.testing.assert_frame_equal(build_features(tables), month0_features)
