"""Month tables → one row per user with the model's features (and the label if known)."""

from __future__ import annotations

import pandas as pd

from .schema import BOOLEAN_FEATURES, ID_COLUMN, MODEL_FEATURES, TARGET


def build_features(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Join the typed tables on ``user_id``; index is user_id, columns MODEL_FEATURES + label.

    Users missing from an aggregate table had no events in its window: counts are 0.
    """
    frame = tables["users.csv"][[ID_COLUMN]]
    frame = frame.merge(tables["subscriptions.csv"], on=ID_COLUMN, how="left", validate="one_to_one")
    for name in ("usage_agg_30d.csv", "payments_agg_90d.csv", "support_agg_90d.csv"):
        frame = frame.merge(tables[name], on=ID_COLUMN, how="left", validate="one_to_one")
    columns = list(MODEL_FEATURES)
    if "labels.csv" in tables:
        frame = frame.merge(tables["labels.csv"], on=ID_COLUMN, how="left", validate="one_to_one")
        columns.append(TARGET)
    frame = frame.set_index(ID_COLUMN)[columns]
    return normalise_feature_types(frame)


def normalise_feature_types(frame: pd.DataFrame) -> pd.DataFrame:
    """The dtypes the model is trained and served with, whatever the source (CSV, DynamoDB)."""
    frame = frame.copy()
    for column in MODEL_FEATURES:
        if column in BOOLEAN_FEATURES:
            frame[column] = frame[column].fillna(False).astype(bool)
        elif column == "net_service":
            frame[column] = frame[column].fillna("No").astype(str)
        else:
            frame[column] = pd.to_numeric(frame[column]).fillna(0).astype("float64")
    if TARGET in frame.columns:
        frame[TARGET] = frame[TARGET].astype(bool)
    return frame
