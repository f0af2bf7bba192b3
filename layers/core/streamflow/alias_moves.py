"""Alias moves that change who serves: crown a new champion, roll back to the previous one.

Every move is recorded on the versions it touches (``alias_history.record_alias_move``) and the
API function is pinned to the serving version, so it follows without a restart. Before any
alias moves, the serving version's tree scorer is copied to the stack's serving prefix in S3
(``champion_pin``): the API cold-starts from that copy without calling the registry, and a
failed copy leaves the aliases where they were.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from . import alias_history, champion_pin, lease, registry, served_model
from .alias_history import AliasMove
from .logs import logger
from .promotion import rollback_target
from .registry import PREVIOUS, PRODUCTION, STAGING
from .settings import Settings


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class AliasChange:
    production: str
    replaced: str | None


def _copy_scorer(settings: Settings, version: str) -> champion_pin.ScorerCopy | None:
    """The version's scorer copied where the API reads it; None (the API then asks the
    registry) when the stack has no serving prefix or the version no scorer."""
    if not (settings.api_function_name and settings.serving_prefix):
        return None
    body = registry.scorer_json(settings.mlflow_tracking_uri, settings.model_name, version)
    if body is None:
        logger.warning("version has no tree scorer: the API will load it from the registry",
                       extra={"version": version})
        return None
    from .scorer import TreeScorer

    TreeScorer.from_json(body)  # never pin a copy the API could not read
    return champion_pin.publish_scorer(settings.serving_prefix, version, body)


def _pin(settings: Settings, version: str, scorer: champion_pin.ScorerCopy | None) -> None:
    if settings.api_function_name:
        served_model.pin_api_version(settings.api_function_name, version, scorer)


def crown(settings: Settings, version: str, by: str, reason: str, **details: Any) -> AliasChange:
    """``Production`` → ``version``; ``Previous`` → the version it replaces."""
    uri, name, at = settings.mlflow_tracking_uri, settings.model_name, _now()
    scorer = _copy_scorer(settings, version)
    current = registry.alias_version(uri, name, PRODUCTION)
    if current and current != version:
        registry.move_alias(uri, name, PREVIOUS, current)
        alias_history.record_alias_moves(uri, name, current, [
            AliasMove(PRODUCTION, "removed", by, reason, at, {"replaced_by": version}),
            AliasMove(PREVIOUS, "set", by, reason, at)])
    registry.move_alias(uri, name, PRODUCTION, version)
    alias_history.record_alias_move(uri, name, version, PRODUCTION, "set", by, reason, at, replaced=current, **details)
    if registry.alias_version(uri, name, STAGING) == version:
        registry.delete_alias(uri, name, STAGING)
    _pin(settings, version, scorer)
    return AliasChange(production=version, replaced=current)


def rollback(settings: Settings, by: str, reason: str) -> AliasChange:
    """``Production`` back to ``Previous`` (which is then cleared, so a second rollback
    refuses instead of flipping back). Raises NothingToRollBack when there is none."""
    if settings.lease_table:
        with lease.hold(settings.lease_table, owner=f"rollback-{by}"):
            return _rollback(settings, by, reason)
    return _rollback(settings, by, reason)


def _rollback(settings: Settings, by: str, reason: str) -> AliasChange:
    uri, name, at = settings.mlflow_tracking_uri, settings.model_name, _now()
    current = registry.alias_version(uri, name, PRODUCTION)
    target = rollback_target(current, registry.alias_version(uri, name, PREVIOUS))
    scorer = _copy_scorer(settings, target)
    registry.move_alias(uri, name, PRODUCTION, target)
    registry.delete_alias(uri, name, PREVIOUS)
    alias_history.record_alias_moves(uri, name, target, [
        AliasMove(PREVIOUS, "removed", by, reason, at),
        AliasMove(PRODUCTION, "set", by, f"rollback: {reason}", at, {"rolled_back_from": current})])
    if current:
        alias_history.record_alias_move(uri, name, current, PRODUCTION, "removed", by, f"rollback: {reason}", at,
                                   rolled_back_to=target)
    _pin(settings, target, scorer)
    return AliasChange(production=target, replaced=current)


def stage(settings: Settings, version: str, by: str, reason: str, **details: Any) -> None:
    """``Staging`` → a challenger awaiting a human decision."""
    uri, name = settings.mlflow_tracking_uri, settings.model_name
    registry.move_alias(uri, name, STAGING, version)
    alias_history.record_alias_move(uri, name, version, STAGING, "set", by, reason, _now(), **details)


def unstage(settings: Settings, version: str, by: str, reason: str) -> None:
    uri, name = settings.mlflow_tracking_uri, settings.model_name
    if registry.alias_version(uri, name, STAGING) == version:
        registry.delete_alias(uri, name, STAGING)
    alias_history.record_alias_move(uri, name, version, STAGING, "removed", by, reason, _now())
