"""One function per state of the pipeline: event in, small JSON-able dict out.

Handlers call these; each reads what earlier states returned (the state machine keeps
them under ``validation``, ``features``, ``drift``, ``challenger``, ``compare``,
``promotion``) and does its I/O through ``storage``, ``online_store``, ``month_order``,
``registry``, ``alias_moves`` and ``lease``. Decisions are delegated to the pure
``promotion`` and ``ordering`` modules.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from typing import Any

from . import alias_moves, checked_tables, lease, month_order, monitoring, online_store, registry, storage
from .checksums import changed_since_ingest, read_verified
from .logs import logger
from .ordering import resolve_reference
from .promotion import STALE_MONTH, is_stale_month, promotion_decision, should_retrain
from .quarantine import quarantine_month
from .schema import TARGET, month_index
from .settings import Settings
from .violations import ContractError, check_sizes

# pandas, pandera (``contract``, ``features``, ``split``) and scikit-learn (``training``) are
# imported by the steps that use them, not here: Approval, Rejection and Summary import this
# module too, and ship as zip functions without them (see template.yaml, bench/package.py).


class RegistryUnavailable(RuntimeError):
    """The MLflow registry did not answer; the state machine retries this with backoff."""


class ReferenceMissing(RuntimeError):
    """The month drift should be measured against has no features (never uploaded)."""


def unreachable(exc: BaseException | None) -> bool:
    """True when a connection error or a timeout is in ``exc``'s chain: MLflow raises its own
    ``MlflowException`` inside ``except`` (the requests error is its ``__context__``)."""
    import requests

    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, (requests.exceptions.ConnectionError, requests.exceptions.Timeout,
                            ConnectionError, TimeoutError)):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def registry_call(fn, *args, **kwargs):
    """``fn`` with an unreachable registry raised as ``RegistryUnavailable`` (the ASL retries it)."""
    try:
        return fn(*args, **kwargs)
    except Exception as exc:
        if unreachable(exc):
            raise RegistryUnavailable(f"MLflow registry unreachable: {exc}") from exc
        raise


def _load_checked_month(settings: Settings, month: str):
    from .contract import check_month

    result = check_month(storage.read_month_files(settings.data_bucket, month))
    if not result.ok:
        raise ContractError(month, result.violations)
    return result.tables


def validate(settings: Settings, event: dict[str, Any]) -> dict[str, Any]:
    """Check the month's data contract; a bad month stops here with a named rule, its files
    moved to ``quarantine/<month>/<attempt>/`` beside a ``_REJECTION.json`` report."""
    from .contract import check_month

    month = event["month"]
    month_index(month)
    sizes = storage.month_file_sizes(settings.data_bucket, month)
    violations = check_sizes(sizes, settings.max_file_bytes)
    result = None
    if not violations:
        files = storage.read_month_files(settings.data_bucket, month, sizes)
        # replaced after ingest checked it (the digests ingest verified, from S3)
        violations = changed_since_ingest(files, read_verified(settings.data_bucket, event))
        if not violations:
            result = check_month(files)
            violations = result.violations
    if violations:
        report = quarantine_month(settings.data_bucket, month, "validate", violations, event.get("execution"))
        logger.error(f"MONTH_REJECTED month={month} quarantine=s3://{settings.data_bucket}/{report}",
                     extra={"violations": [str(v) for v in violations[:20]]})
        raise ContractError(month, violations)
    rows = {name: int(len(frame)) for name, frame in result.tables.items()}
    checked = None
    if event.get("execution"):  # BuildFeatures builds from these tables (checked_tables)
        checked = checked_tables.write(settings.data_bucket, month, event["execution"], result.tables)
    logger.info("month valid", extra={"rows": rows, "checked_tables": checked})
    return {"valid": True, "users": rows["users.csv"], "rows": rows, "checked_tables": checked}


def build_month_features(settings: Settings, event: dict[str, Any]) -> dict[str, Any]:
    """Features for every user, to S3: what drift, training and the online table read."""
    from .features import build_features
    from .month_reads import drift_sample_key

    month, execution = event["month"], event.get("execution")
    month_index(month)  # raises on a name that is not month_NNN
    tables = checked_tables.read(settings.data_bucket, month, execution) if execution else None
    if tables is None:
        if execution:
            logger.info("no tables checked by Validate for this execution: checking the month's files again",
                        extra={"execution": execution})
        tables = _load_checked_month(settings, month)
    frame = build_features(tables)
    key = storage.write_features(settings.data_bucket, month, frame)
    if execution:
        checked_tables.delete(settings.data_bucket, month, execution)
    # A sample MergeShards left from a sharded run of this month would outlive these features.
    storage.delete(settings.data_bucket, drift_sample_key(month))
    logger.info("features built", extra={"features_key": key, "users": int(len(frame))})
    return {"features_key": key, "users": int(len(frame)),
            "churn_rate": round(float(frame[TARGET].mean()), 4) if TARGET in frame else None}


def publish_online_features(settings: Settings, event: dict[str, Any]) -> dict[str, Any]:
    """The month's features into the online table the API reads. The state machine runs
    this beside drift → train → compare (one item per user: at 1M users it is the longest
    write of the loop) and joins both before anything is promoted."""
    month = event["month"]
    publish, newest = month_order.may_publish(settings, month)
    if not publish:
        logger.info(f"online features not published: month={month} is older than {newest}, already online")
        return {"table": settings.feature_table, "online_items": 0, "skipped": True, "newest_online_month": newest}
    frame = storage.read_features(settings.data_bucket, month)
    written = online_store.write_online_features(settings.feature_table, month, frame)
    month_order.mark_published(settings, month)
    logger.info("online features published", extra={"table": settings.feature_table, "online_items": written})
    return {"table": settings.feature_table, "online_items": written}


def champion_and_month(settings: Settings) -> tuple[str | None, str | None]:
    """(Production's version, the month it was trained on) — (None, None) before any."""
    version, tags = registry_call(registry.alias_version_tags, settings.mlflow_tracking_uri, settings.model_name)
    return version, (tags.get("month") or None) if version else None


def detect_drift(settings: Settings, event: dict[str, Any]) -> dict[str, Any]:
    """Evidently drift of this month against its reference month (``ReferenceMonth``: the
    champion's month by default, the previous month, or a fixed one), report kept in S3.
    With no reference (no champion yet, or no month before) nothing is measured."""
    from .drift import measure_drift

    month = event["month"]
    mode = event.get("reference_month") or settings.require_policy().reference_month
    threshold = float(event["threshold"] if "threshold" in event else settings.require_policy().drift_threshold)
    champion_version, champion_month = champion_and_month(settings)
    reference_month = resolve_reference(mode, month, champion_month)
    share, drifted, columns, key, run, measured = 0.0, 0, None, None, None, None
    if reference_month is not None:
        from botocore.exceptions import ClientError

        from .month_reads import drift_frame

        k = settings.drift_sample_size
        current = drift_frame(settings.data_bucket, month, k, event.get("features") or {})
        try:
            reference = drift_frame(settings.data_bucket, reference_month, k)
        except ClientError as exc:
            if not storage.is_missing(exc):
                raise
            raise ReferenceMissing(f"reference month {reference_month} (ReferenceMonth={mode}) has no features "
                                   f"in s3://{settings.data_bucket}: was it uploaded? ({exc})") from exc
        result = measure_drift(reference, current, title=f"StreamFlow drift: {month} against {reference_month}")
        timestamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        key = storage.report_key(month, timestamp)
        storage.put_bytes(settings.data_bucket, key, result.html, content_type="text/html")
        share, drifted, columns, run = round(result.drift_share, 4), result.drifted_columns, result.columns, result.snapshot
        measured = {"reference": int(len(reference)), "current": int(len(current)), "sample_size": k}
    retrain = should_retrain(share, threshold, has_champion=champion_version is not None)
    reference = reference_month or "none"
    if retrain:
        logger.info(f"RETRAINING_TRIGGERED month={month} drift_share={share} threshold={threshold}"
                    + ("" if champion_version else " reason=no_champion") + f" reference={reference}")
    else:
        logger.info(f"no retraining: month={month} drift_share={share} threshold={threshold} reference={reference}")
    outcome = {
        "drift_share": share,
        "drifted_columns": drifted,
        "columns": columns,
        "threshold": threshold,
        "report_key": key,
        "has_champion": champion_version is not None,
        "champion_version": champion_version,
        "champion_month": champion_month,
        "reference_month": reference_month,
        "reference_mode": mode,
        "measured_users": measured,  # rows Evidently compared: a month over DriftSampleSize is sampled
        "stale": is_stale_month(month, champion_month),
        "retrain": retrain,
    }
    monitoring.record_safely(settings.data_bucket, monitoring.drift_facts(event, outcome), run, replace=True)
    return outcome


class UnservableModel(RuntimeError):
    """The trained model has no tree scorer that agrees with it: the API (no scikit-learn)
    could not serve it, so it is not registered."""


def servable_scorer(model, example):
    """The model's checked ``TreeScorer``, or ``UnservableModel`` saying why there is none."""
    from .scorer_export import ScorerRefused, checked

    try:
        return checked(model, rows=example.head(256).to_dict("index"))
    except ScorerRefused as exc:
        raise UnservableModel(f"the challenger cannot be served without scikit-learn ({exc}); "
                              "not registered") from exc


def train_challenger(settings: Settings, event: dict[str, Any]) -> dict[str, Any]:
    """Fit a challenger on the month's training users; register it as a new version."""
    from .month_reads import holdout_aucs, training_rows as month_training_rows
    from .training import evaluate_auc, model_input, train

    month = event["month"]
    features = event.get("features") or {}
    training_rows, training_users, holdout = month_training_rows(settings.data_bucket, month,
                                                                 settings.train_sample_size, features)
    model = train(training_rows)
    val_auc = (evaluate_auc(model, holdout) if holdout is not None
               else holdout_aucs(settings.data_bucket, month, features, {"challenger": model})["challenger"])
    scorer = servable_scorer(model, model_input(training_rows))
    tags = {
        "month": month,
        "val_auc": round(val_auc, 6),
        "execution": event.get("execution", ""),
        "drift_share": event.get("drift", {}).get("drift_share", ""),
        "reference_month": event.get("drift", {}).get("reference_month") or "none",
    }
    registered = registry_call(
        registry.log_challenger,
        settings.mlflow_tracking_uri,
        settings.model_name,
        model,
        model_input(training_rows),
        params={"train_rows": len(training_rows), "training_users": training_users, "month": month,
                "sampled": len(training_rows) < training_users},
        metrics={"val_auc": val_auc},
        tags=tags,
        scorer=scorer,
    )
    logger.info("challenger registered", extra={"version": registered.version, "val_auc": val_auc})
    return {"version": registered.version, "run_id": registered.run_id, "val_auc": round(val_auc, 6)}


def _holdout_aucs(settings: Settings, event: dict[str, Any], challenger: str,
                  champion: str | None, pairs: bool = False) -> tuple[float, float | None]:
    """(challenger's AUC, champion's AUC or None) on the month's holdout users: one features
    file, or shard by shard for a sharded month (with ``pairs``, Compare after the ScoreShards
    Map: its pairs, ``compare_shards``; else ``month_reads.holdout_aucs``: exact either way)."""
    from .month_reads import holdout_aucs

    shards = int((event.get("sharding") or {}).get("shards") or 1)
    if pairs and shards > 1:  # ScoreShards' pairs (a sharded month), when scored by these versions
        from .compare_shards import merged_aucs

        merged = merged_aucs(settings.data_bucket, event["month"], shards, event.get("execution"), challenger,
                             champion)
        if merged is not None:
            logger.info("holdout AUCs from the shards' pairs", extra={"shards": shards})
            return merged
        logger.info("the shards were scored by other versions: scoring the holdout here")
    uri, name = settings.mlflow_tracking_uri, settings.model_name
    # One after the other, not in threads: a cold worker's first skops load imports parts of
    # scikit-learn, and a second thread importing them at once met a partly initialised module
    # ("cannot import name 'BaseLibSVM' … circular import", seen with the AWS CLI's check).
    models = {"challenger": registry_call(registry.load_version, uri, name, challenger)}
    if champion:
        models["champion"] = registry_call(registry.load_version, uri, name, champion)
    aucs = holdout_aucs(settings.data_bucket, event["month"], event.get("features") or {}, models)
    return aucs["challenger"], aucs.get("champion")


def _round(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else round(value, 4)


def compare(settings: Settings, event: dict[str, Any]) -> dict[str, Any]:
    """Challenger and champion on the same held-out users; the pure rule decides."""
    month = event["month"]
    delta = float(event["delta"] if "delta" in event else settings.require_policy().promotion_delta)
    challenger = event["challenger"]["version"]
    prod_version, champion_month = champion_and_month(settings)
    new_auc, prod_auc = _holdout_aucs(settings, event, challenger, prod_version, pairs=True)
    decision = promotion_decision(new_auc, prod_auc, delta, month, champion_month, settings.allow_backfill_promotion)
    promote = decision == "promote"
    if decision == STALE_MONTH:
        logger.info(f"stale month: {month} is older than the champion's month {champion_month}; not promoted "
                    "(AllowBackfillPromotion=false)")
    logger.info(f"[COMPARE] new_auc={_round(new_auc)} prod_auc={_round(prod_auc)} delta={delta} promote={promote}",
                extra={"challenger_version": challenger, "production_version": prod_version})
    outcome = {"new_auc": _round(new_auc), "prod_auc": _round(prod_auc), "prod_version": prod_version,
               "delta": delta, "promote": promote, "decision": decision, "champion_month": champion_month}
    # The execution is on the version already: TrainChallenger's ``execution`` tag.
    registry_call(registry.tag_version, settings.mlflow_tracking_uri, settings.model_name, challenger, {
        "decision": decision,
        "decision_champion_month": champion_month or "none",
        "decision_new_auc": _round(new_auc),
        "decision_prod_auc": _round(prod_auc),
        "decision_prod_version": prod_version or "none",
        "decision_delta": delta,
    })
    # After the tags, in this thread: the record imports Evidently on a cold worker, and
    # imports racing in two threads are what broke the model loads above.
    monitoring.record_safely(settings.data_bucket,
                             monitoring.compare_facts(event, outcome, bool(event.get("require_approval"))))
    return outcome


def promote(settings: Settings, event: dict[str, Any]) -> dict[str, Any]:
    """Move ``Production`` to the challenger (``Previous`` to the old champion).

    Compare-and-set under a lease: if ``Production`` moved since the comparison, the
    decision is taken again against the new champion rather than applied blindly, and no
    other execution moves the alias between that check and the move.
    """
    if not settings.lease_table:
        outcome = _promote(settings, event)
    else:
        with lease.hold(settings.lease_table, owner=event.get("execution")):
            outcome = _promote(settings, event)
    if outcome["redecided"] or "approval" in event:  # otherwise Compare recorded this decision
        monitoring.record_safely(settings.data_bucket, monitoring.promote_facts(event, outcome))
    return outcome


def _promote(settings: Settings, event: dict[str, Any]) -> dict[str, Any]:
    month = event["month"]
    decision = event["compare"]
    challenger = event["challenger"]["version"]
    uri, name = settings.mlflow_tracking_uri, settings.model_name
    current, champion_month = champion_and_month(settings)
    redecided = current != decision.get("prod_version")
    promote_it = bool(decision["promote"])
    new_auc, prod_auc = decision.get("new_auc"), decision.get("prod_auc")
    if redecided:
        new_exact, prod_exact = _holdout_aucs(settings, event, challenger, current)
        new_auc, prod_auc = _round(new_exact), _round(prod_exact)
        verdict = promotion_decision(new_auc, prod_auc, float(decision["delta"]), month, champion_month,
                                     settings.allow_backfill_promotion)
        promote_it = verdict == "promote"
        logger.info(f"[COMPARE] new_auc={new_auc} prod_auc={prod_auc} "
                    f"delta={decision['delta']} promote={promote_it} (re-decided: Production moved)")
        if verdict != decision.get("decision"):
            registry_call(registry.tag_version, uri, name, challenger, {
                "decision": verdict, "decision_prod_version": current or "none",
                "decision_champion_month": champion_month or "none"})
    if not promote_it:
        return {"promoted": False, "production_version": current, "previous_version": None, "redecided": redecided,
                "stale": is_stale_month(month, champion_month)}
    approval = event.get("approval") or {}
    reason = (f"month {month}: challenger {challenger} AUC {new_auc} vs champion "
              f"{current or 'none'} AUC {prod_auc}, delta {decision.get('delta')}")
    change = registry_call(
        alias_moves.crown, settings, challenger, by=event.get("execution") or "streamflow", reason=reason,
        execution=event.get("execution"), approved_by=approval.get("by"),
    )
    logger.info("alias moved", extra={"alias": registry.PRODUCTION, "version": challenger, "previous": change.replaced})
    return {"promoted": True, "production_version": challenger, "previous_version": change.replaced,
            "redecided": redecided}


def request_approval(settings: Settings, event: dict[str, Any]) -> dict[str, Any]:
    """Stage the challenger and keep the task token where ``streamflow approve`` finds it."""
    month, version = event["month"], event["challenger"]["version"]
    record = {
        "month": month,
        "execution": event.get("execution"),
        "challenger_version": version,
        "compare": event.get("compare"),
        "task_token": event["task_token"],
        "requested_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "timeout_seconds": event.get("timeout_seconds"),
    }
    registry_call(alias_moves.stage, settings, version, by=event.get("execution") or "streamflow",
                   reason=f"month {month}: awaiting approval", execution=event.get("execution"))
    # Written last: once a person can see the pending approval, the challenger is staged.
    storage.put_json(settings.data_bucket, storage.approval_key(month), record)
    logger.info(f"APPROVAL_REQUESTED month={month} version={version}: run `streamflow approve {month}` "
                f"or `streamflow reject {month} --reason ...`")
    return {"requested": True, "version": version}


def record_rejection(settings: Settings, event: dict[str, Any]) -> dict[str, Any]:
    """A human said no (or nobody answered in time): note why, unstage the challenger."""
    month, version = event["month"], event["challenger"]["version"]
    error = event.get("approval_error") or {}
    timed_out = error.get("Error") == "States.Timeout"
    try:
        cause = json.loads(error.get("Cause") or "{}")
    except ValueError:
        cause = {"reason": error.get("Cause")}
    if not isinstance(cause, dict):
        cause = {"reason": str(cause)}
    reason = "approval timed out" if timed_out else str(cause.get("reason") or "rejected")
    by = "timeout" if timed_out else str(cause.get("by") or "unknown")
    registry_call(alias_moves.unstage, settings, version, by=by, reason=f"rejected: {reason}")
    word = "rejected_timeout" if timed_out else "rejected"
    registry_call(registry.tag_version, settings.mlflow_tracking_uri, settings.model_name, version, {
        "decision": word, "rejected_by": by, "rejected_reason": reason,
    })
    decision = {"month": month, "decision": word, "by": by,
                "reason": reason, "challenger_version": version, "execution": event.get("execution"),
                "rejected_at": dt.datetime.now(dt.timezone.utc).isoformat()}
    storage.put_json(settings.data_bucket, storage.approval_decision_key(month), decision)
    storage.delete(settings.data_bucket, storage.approval_key(month))
    logger.info(f"APPROVAL_REJECTED month={month} version={version} by={by} reason={reason}")
    return {"approved": False, "timed_out": timed_out, "by": by, "reason": reason}


def _approval_outcome(event: dict[str, Any]) -> str | None:
    if "rejection" in event:
        return "timed_out" if event["rejection"].get("timed_out") else "rejected"
    if "approval" in event:
        return "approved"
    return None


def summarize(settings: Settings, event: dict[str, Any]) -> dict[str, Any]:
    """The one line that tells what this month did."""
    month = event["month"]
    drift = event.get("drift", {})
    promotion = event.get("promotion") or {}
    retrained = "challenger" in event
    production_version = (promotion.get("production_version") or event.get("compare", {}).get("prod_version")
                          or drift.get("champion_version"))
    summary = {
        "month": month,
        "drift_share": drift.get("drift_share"),
        "retrained": retrained,
        "promoted": bool(promotion.get("promoted")),
        "production_version": production_version,
        "challenger_version": event.get("challenger", {}).get("version"),
        "report_key": drift.get("report_key"),
        "execution": event.get("execution"),
        "approval": _approval_outcome(event),
        "reference_month": drift.get("reference_month"),
        "decision": _decision(event),
    }
    stale = " decision=stale_month" if summary["decision"] == STALE_MONTH else ""
    logger.info(f"[SUMMARY] month={month} drift_share={summary['drift_share']} retrained={retrained} "
                f"promoted={summary['promoted']} production_version={production_version}{stale} "
                f"reference={drift.get('reference_month') or 'none'}")
    return summary


def _decision(event: dict[str, Any]) -> str:
    """What the month decided, in one word (``streamflow status`` lists it per month)."""
    promotion, compare = event.get("promotion") or {}, event.get("compare") or {}
    if promotion.get("promoted"):
        return "promote"
    if promotion.get("stale") or compare.get("decision") == STALE_MONTH:
        return STALE_MONTH
    if "rejection" in event:
        return "rejected_timeout" if event["rejection"].get("timed_out") else "rejected"
    if compare:
        return "keep_champion"
    return STALE_MONTH if (event.get("drift") or {}).get("stale") else "no_retraining"
