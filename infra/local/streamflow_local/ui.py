"""``streamflow ui``: Evidently's monitoring UI over the workspace in the stack's data bucket.

Before serving, the dashboard is written from code (``streamflow.monitoring.dashboard``) and
months quarantined since the last look are added to the timeline from their
``_REJECTION.json``. Evidently reads an S3 workspace once, when it starts (it watches only
local folders): restart ``streamflow ui`` to see months processed meanwhile.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .config import StackConfig

if TYPE_CHECKING:  # the CLI imports this module; Settings is imported where it is used
    from streamflow.settings import Settings

MLFLOW_UI_NOTE = "runs, versions and aliases"


def prepare(config: StackConfig) -> tuple[str, list[str]]:
    """(the workspace URI, months added from quarantine) for the deployed stack's bucket."""
    from streamflow import monitoring

    from .stack_client import data_bucket

    config.apply_client_env()
    bucket = data_bucket(config)
    uri = monitoring.workspace_uri(bucket)
    monitoring.ensure_project(uri, write_dashboard=True)
    return uri, monitoring.sync_rejections(uri, bucket)


def where(config: StackConfig) -> str:
    """Both UIs' addresses, as `streamflow up` and `streamflow ui` print them."""
    return (f"Evidently UI {config.ui_url} (`streamflow ui`; project \"StreamFlow churn\")  "
            f"MLflow UI {config.mlflow_uri} ({MLFLOW_UI_NOTE})")


def serve(config: StackConfig, workspace: str) -> None:
    """Evidently's own UI service on the stack's UI port, in the foreground (Ctrl-C stops it)."""
    from evidently.ui.service.app import get_config, run

    config.apply_client_env()
    run(get_config(host=config.host, port=config.ui_port, workspace=workspace))


def note_decision(config: StackConfig, month: str | None, decision: str, **facts: str | None) -> None:
    """A decision a person made from the command line (reject, rollback) onto the month's
    entry; the state machine's zip functions cannot write Evidently snapshots."""
    if not month:
        return
    from streamflow import monitoring

    from .stack_client import data_bucket

    config.apply_client_env()
    monitoring.record_safely(data_bucket(config), {"month": month, "decision": decision, **facts})


def month_of_version(settings: Settings, version: str | None) -> str | None:
    """The month a registered version was trained on (its ``month`` tag), read with the
    settings the caller already holds (reading them costs a Lambda call)."""
    if not version:
        return None
    from streamflow import registry

    tags = registry.client(settings.mlflow_tracking_uri).get_model_version(settings.model_name, version).tags
    return tags.get("month") or None
