"""The StreamFlow month: its tables, their exact columns, and the model's features.

One place names every column so the generator, the data contract, feature building and
the API agree by construction.
"""

from __future__ import annotations

import re

MONTH_PATTERN = re.compile(r"^month_\d{3}$")
MANIFEST_NAME = "_MANIFEST.json"

TABLE_COLUMNS: dict[str, list[str]] = {
    "users.csv": [
        "user_id",
        "signup_date",
        "user_gender",
        "user_is_senior",
        "has_family",
        "has_dependents",
    ],
    "subscriptions.csv": [
        "user_id",
        "months_active",
        "plan_stream_tv",
        "plan_stream_movies",
        "contract_type",
        "paperless_billing",
        "monthly_fee",
        "total_paid",
        "net_service",
        "add_on_security",
        "add_on_backup",
        "add_on_device_protect",
        "add_on_support",
    ],
    "usage_agg_30d.csv": [
        "user_id",
        "watch_hours_30d",
        "avg_session_mins_7d",
        "unique_devices_30d",
        "skips_7d",
        "rebuffer_events_7d",
    ],
    "payments_agg_90d.csv": ["user_id", "failed_payments_90d"],
    "support_agg_90d.csv": [
        "user_id",
        "support_tickets_90d",
        "ticket_avg_resolution_hrs_90d",
    ],
    "labels.csv": ["user_id", "churn_label"],
}
MONTH_FILES: tuple[str, ...] = tuple(TABLE_COLUMNS)

BOOLEAN_COLUMNS: frozenset[str] = frozenset(
    {
        "user_is_senior",
        "has_family",
        "has_dependents",
        "plan_stream_tv",
        "plan_stream_movies",
        "paperless_billing",
        "add_on_security",
        "add_on_backup",
        "add_on_device_protect",
        "add_on_support",
        "churn_label",
    }
)
# Add-ons are empty for users without a net service, as in the course's CSVs.
NULLABLE_COLUMNS: frozenset[str] = frozenset(
    {"add_on_security", "add_on_backup", "add_on_device_protect", "add_on_support"}
)
INTEGER_COLUMNS: frozenset[str] = frozenset(
    {
        "months_active",
        "unique_devices_30d",
        "skips_7d",
        "rebuffer_events_7d",
        "failed_payments_90d",
        "support_tickets_90d",
    }
)
FLOAT_COLUMNS: frozenset[str] = frozenset(
    {
        "monthly_fee",
        "total_paid",
        "watch_hours_30d",
        "avg_session_mins_7d",
        "ticket_avg_resolution_hrs_90d",
    }
)
DATE_COLUMNS: frozenset[str] = frozenset({"signup_date"})
CATEGORIES: dict[str, tuple[str, ...]] = {
    "user_gender": ("Male", "Female"),
    "contract_type": ("Month-to-month", "One year", "Two year"),
    "net_service": ("DSL", "Fiber optic", "No"),
}

TARGET = "churn_label"
ID_COLUMN = "user_id"

NUMERIC_FEATURES: list[str] = [
    "months_active",
    "monthly_fee",
    "watch_hours_30d",
    "avg_session_mins_7d",
    "unique_devices_30d",
    "skips_7d",
    "rebuffer_events_7d",
    "failed_payments_90d",
    "support_tickets_90d",
    "ticket_avg_resolution_hrs_90d",
]
BOOLEAN_FEATURES: list[str] = ["paperless_billing", "plan_stream_tv", "plan_stream_movies"]
CATEGORICAL_FEATURES: list[str] = ["net_service"]
MODEL_FEATURES: list[str] = [
    "months_active",
    "monthly_fee",
    "paperless_billing",
    "plan_stream_tv",
    "plan_stream_movies",
    "net_service",
    "watch_hours_30d",
    "avg_session_mins_7d",
    "unique_devices_30d",
    "skips_7d",
    "rebuffer_events_7d",
    "failed_payments_90d",
    "support_tickets_90d",
    "ticket_avg_resolution_hrs_90d",
]
assert sorted(MODEL_FEATURES) == sorted(NUMERIC_FEATURES + BOOLEAN_FEATURES + CATEGORICAL_FEATURES)


def month_name(index: int) -> str:
    """``3`` → ``month_003``."""
    return f"month_{index:03d}"


def month_index(name: str) -> int:
    """``month_003`` → ``3``; raises ValueError for any other name."""
    if not MONTH_PATTERN.match(name):
        raise ValueError(f"month name {name!r} does not match month_NNN")
    return int(name.split("_")[1])
