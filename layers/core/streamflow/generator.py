"""Deterministic StreamFlow months: the same seed, size and month give the same bytes.

Users persist across months (same ids, same stable traits); each month re-draws their
behaviour. Churn is driven by the model features so a model reaches a real AUC. Two things
change with time, on purpose:

* covariate drift: from ``month_001`` on, watch hours and sessions fall, rebuffering and
  skips rise and fees go up (what Evidently should flag against ``month_000``);
* concept drift: from ``month_001`` on, churn depends more on rebuffering, skips and
  failed payments and less on tenure, so a champion trained on ``month_000`` loses AUC
  and a challenger trained on the new month beats it. ``month_002`` keeps the concept of
  ``month_001`` and its distributions: its challenger should *not* clearly beat a
  ``month_001`` champion, so the loop retrains on drift but keeps the champion.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .schema import MANIFEST_NAME, MONTH_FILES, TABLE_COLUMNS, month_name

DEFAULT_USERS = 10_000
DEFAULT_SEED = 42
FIRST_MONTH = dt.date(2026, 1, 1)
_LETTERS = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZ"))


@dataclass(frozen=True)
class Concept:
    """Weights of the churn logit; one per regime of the generated world."""

    intercept: float
    tenure: float
    fee: float
    fiber: float
    paperless: float
    watch: float
    session: float
    skips: float
    rebuffer: float
    failed_payments: float
    tickets: float
    resolution: float
    month_to_month: float


CONCEPT_STABLE = Concept(
    intercept=-1.2, tenure=-0.045, fee=0.025, fiber=0.6, paperless=0.35, watch=-0.04,
    session=-0.02, skips=0.02, rebuffer=0.15, failed_payments=0.7, tickets=0.45,
    resolution=0.01, month_to_month=0.5,
)
CONCEPT_DRIFTED = Concept(
    intercept=-1.9, tenure=-0.01, fee=0.01, fiber=0.1, paperless=0.1, watch=-0.015,
    session=-0.005, skips=0.12, rebuffer=0.45, failed_payments=1.4, tickets=0.15,
    resolution=0.03, month_to_month=0.3,
)


def concept_for(month: int) -> Concept:
    return CONCEPT_STABLE if month == 0 else CONCEPT_DRIFTED


def _user_ids(rng: np.random.Generator, n: int) -> np.ndarray:
    """Ids shaped like ``7590-VHVEG``, unique, in a stable order."""
    ids: list[str] = []
    seen: set[str] = set()
    while len(ids) < n:
        k = int((n - len(ids)) * 1.05) + 16
        digits = rng.integers(0, 10_000, size=k)
        letters = rng.integers(0, 26, size=(k, 5))
        tails = ["".join(row) for row in _LETTERS[letters]]
        for d, t in zip(digits, tails):
            uid = f"{d:04d}-{t}"
            if uid not in seen:
                seen.add(uid)
                ids.append(uid)
                if len(ids) == n:
                    break
    return np.array(ids, dtype=object)


def _bool_text(values: np.ndarray) -> np.ndarray:
    return np.where(values, "True", "False").astype(object)


def generate_month(month: int, n_users: int = DEFAULT_USERS, seed: int = DEFAULT_SEED) -> dict[str, pd.DataFrame]:
    """The six tables of one month, as DataFrames of text-ready values."""
    if n_users < 1:
        raise ValueError("n_users must be at least 1")
    stable = np.random.default_rng([seed, 0])  # traits shared by every month
    rng = np.random.default_rng([seed, month + 1])  # this month's behaviour
    return _month_tables(month, _user_ids(stable, n_users), stable, rng)


def _month_tables(month: int, user_id: np.ndarray, stable: np.random.Generator,
                  rng: np.random.Generator) -> dict[str, pd.DataFrame]:
    """The six tables for the users ``user_id``: stable traits drawn from ``stable``, this
    month's behaviour from ``rng``."""
    n = len(user_id)
    gender = stable.choice(["Male", "Female"], size=n)
    senior = stable.random(n) < 0.16
    family = stable.random(n) < 0.48
    dependents = family & (stable.random(n) < 0.6)
    tenure_at_start = stable.integers(1, 61, size=n)
    contract = stable.choice(["Month-to-month", "One year", "Two year"], size=n, p=[0.55, 0.21, 0.24])
    net = stable.choice(["DSL", "Fiber optic", "No"], size=n, p=[0.34, 0.44, 0.22])
    paperless = stable.random(n) < 0.59

    has_net = net != "No"
    drift = min(month, 1)  # covariate drift switches on at month_001 and then holds
    fiber = net == "Fiber optic"
    months_active = tenure_at_start + month
    month_start = FIRST_MONTH + dt.timedelta(days=31 * month)
    signup = pd.to_datetime(month_start) - pd.to_timedelta(months_active * 30, unit="D")

    tv = has_net & (rng.random(n) < 0.45)
    movies = has_net & (rng.random(n) < 0.45)
    add_ons = {
        name: np.where(has_net, _bool_text(rng.random(n) < p), "")
        for name, p in (
            ("add_on_security", 0.35),
            ("add_on_backup", 0.4),
            ("add_on_device_protect", 0.4),
            ("add_on_support", 0.35),
        )
    }
    n_add_ons = sum((v == "True").astype(int) for v in add_ons.values())
    fee = (
        20.0 + 25.0 * fiber + 10.0 * (net == "DSL") + 10.0 * tv + 10.0 * movies
        + 5.0 * n_add_ons + rng.normal(0, 3, n) + 3.0 * drift
    ).clip(18.0, None).round(2)
    total_paid = (fee * months_active * rng.uniform(0.9, 1.05, n)).round(2)

    watch = (rng.gamma(4.0, 10.0, n) * (1 + 0.4 * tv + 0.4 * movies) * (1 - 0.25 * drift)).round(1)
    session = rng.normal(38 - 3.0 * drift, 9, n).clip(1, None).round(1)
    devices = rng.poisson(1.4, n) + 1
    skips = rng.poisson(6 + 2.0 * drift, n)
    rebuffer = rng.poisson(np.where(fiber, 1.0, 2.0) + 1.2 * drift)
    failed = rng.poisson(0.35, n)
    tickets = rng.poisson(0.6, n)
    resolution = np.where(tickets > 0, rng.gamma(2.0, 12.0, n), 0.0).round(1)

    c = concept_for(month)
    logit = 1.3 * (
        c.intercept
        + c.tenure * (months_active - 30)
        + c.fee * (fee - 65)
        + c.fiber * fiber
        + c.paperless * paperless
        + c.watch * (watch - 40)
        + c.session * (session - 38)
        + c.skips * (skips - 6)
        + c.rebuffer * (rebuffer - 1.5)
        + c.failed_payments * failed
        + c.tickets * tickets
        + c.resolution * (resolution - 12)
        + c.month_to_month * (contract == "Month-to-month")
    )
    churn = rng.random(n) < 1.0 / (1.0 + np.exp(-logit))

    users = pd.DataFrame(
        {
            "user_id": user_id,
            "signup_date": signup.strftime("%Y-%m-%d"),
            "user_gender": gender,
            "user_is_senior": _bool_text(senior),
            "has_family": _bool_text(family),
            "has_dependents": _bool_text(dependents),
        }
    )
    subscriptions = pd.DataFrame(
        {
            "user_id": user_id,
            "months_active": months_active,
            "plan_stream_tv": _bool_text(tv),
            "plan_stream_movies": _bool_text(movies),
            "contract_type": contract,
            "paperless_billing": _bool_text(paperless),
            "monthly_fee": fee,
            "total_paid": total_paid,
            "net_service": net,
            **add_ons,
        }
    )
    usage = pd.DataFrame(
        {
            "user_id": user_id,
            "watch_hours_30d": watch,
            "avg_session_mins_7d": session,
            "unique_devices_30d": devices,
            "skips_7d": skips,
            "rebuffer_events_7d": rebuffer,
        }
    )
    payments = pd.DataFrame({"user_id": user_id, "failed_payments_90d": failed})
    support = pd.DataFrame(
        {"user_id": user_id, "support_tickets_90d": tickets, "ticket_avg_resolution_hrs_90d": resolution}
    )
    labels = pd.DataFrame({"user_id": user_id, "churn_label": _bool_text(churn)})
    tables = {
        "users.csv": users,
        "subscriptions.csv": subscriptions,
        "usage_agg_30d.csv": usage,
        "payments_agg_90d.csv": payments,
        "support_agg_90d.csv": support,
        "labels.csv": labels,
    }
    for name, frame in tables.items():
        assert list(frame.columns) == TABLE_COLUMNS[name], name
    return tables


def month_csv_bytes(tables: dict[str, pd.DataFrame]) -> dict[str, bytes]:
    """Tables → the CSV bytes that get uploaded (no index, UTF-8, ``\\n`` line ends)."""
    return {name: tables[name].to_csv(index=False, lineterminator="\n").encode("utf-8") for name in MONTH_FILES}


def build_manifest(month: str, files: dict[str, bytes], extra: dict | None = None) -> dict:
    """The manifest uploaded last: it names each file with its size and SHA-256."""
    manifest = {
        "month": month,
        "files": {
            name: {"bytes": len(body), "sha256": hashlib.sha256(body).hexdigest()}
            for name, body in sorted(files.items())
        },
    }
    if extra:
        manifest.update(extra)
    return manifest


def write_month(out_dir: Path, month: int, n_users: int = DEFAULT_USERS, seed: int = DEFAULT_SEED) -> Path:
    """Write ``<out_dir>/month_NNN/*.csv`` and its manifest; return that folder."""
    name = month_name(month)
    folder = Path(out_dir) / name
    folder.mkdir(parents=True, exist_ok=True)
    files = month_csv_bytes(generate_month(month, n_users=n_users, seed=seed))
    for file_name, body in files.items():
        (folder / file_name).write_bytes(body)
    manifest = build_manifest(name, files, {"generator": {"seed": seed, "n_users": n_users}})
    (folder / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n")
    return folder
