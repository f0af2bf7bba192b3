"""Data drift of the model features, reference month vs current month, with Evidently.

``import evidently`` costs seconds, so it happens inside the call: only the drift
function pays for it.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from .schema import BOOLEAN_FEATURES, CATEGORICAL_FEATURES, MODEL_FEATURES, NUMERIC_FEATURES

DRIFTED_COLUMNS_METRIC = "DriftedColumnsCount"


@dataclass(frozen=True)
class DriftResult:
    drift_share: float
    drifted_columns: int
    columns: int
    html: bytes
    snapshot: Any = None  # Evidently's run: the month's monitoring snapshot (``monitoring``)


def _as_evidently_frame(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame[MODEL_FEATURES].reset_index(drop=True)  # a text index trips its plots
    for column in BOOLEAN_FEATURES:
        out[column] = out[column].astype(str)
    return out


def _drifted_columns(snapshot_dict: dict) -> tuple[float, int]:
    for metric in snapshot_dict["metrics"]:
        config_type = str(metric.get("config", {}).get("type", ""))
        if config_type.endswith(DRIFTED_COLUMNS_METRIC):
            value = metric["value"]
            return float(value["share"]), int(value["count"])
    raise RuntimeError("Evidently report has no DriftedColumnsCount metric")


def titled(html: bytes, title: str) -> bytes:
    """The report's HTML with ``title`` as its page title (it names the two months)."""
    import html as html_lib
    import re

    tag = f"<title>{html_lib.escape(title)}</title>".encode()
    if re.search(rb"<title>.*?</title>", html, flags=re.S):
        return re.sub(rb"<title>.*?</title>", lambda _: tag, html, count=1, flags=re.S)
    head = re.search(rb"<head[^>]*>", html)
    return html[:head.end()] + tag + html[head.end():] if head else tag + html


def measure_drift(reference: pd.DataFrame, current: pd.DataFrame, title: str | None = None) -> DriftResult:
    """Evidently's DataDriftPreset on the model features; the HTML report comes back too
    (titled ``title``: which month against which reference)."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    definition = DataDefinition(
        numerical_columns=list(NUMERIC_FEATURES),
        categorical_columns=list(BOOLEAN_FEATURES + CATEGORICAL_FEATURES),
    )
    ref = Dataset.from_pandas(_as_evidently_frame(reference), data_definition=definition)
    cur = Dataset.from_pandas(_as_evidently_frame(current), data_definition=definition)
    snapshot = Report([DataDriftPreset()]).run(current_data=cur, reference_data=ref, name=title)
    share, count = _drifted_columns(snapshot.dict())
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "report.html"
        snapshot.save_html(str(path))
        html = path.read_bytes()
    if title:
        html = titled(html, title)
    return DriftResult(drift_share=share, drifted_columns=count, columns=len(MODEL_FEATURES), html=html,
                       snapshot=snapshot)
