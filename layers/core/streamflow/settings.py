"""Configuration from the environment that ``template.yaml`` sets, read once per process.

The same code runs on the local emulator, LocalStack and AWS: only these values change.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from .promotion import DEFAULT_DELTA, DEFAULT_DRIFT_THRESHOLD


@dataclass(frozen=True)
class Settings:
    data_bucket: str
    feature_table: str
    model_name: str
    mlflow_tracking_uri: str
    reference_month: str
    drift_threshold: float
    promotion_delta: float
    state_machine_arn: str
    api_function_name: str
    require_approval: bool = False
    approval_timeout_seconds: int = 86_400
    max_file_bytes: int = 512 * 1024 * 1024
    lease_table: str = ""
    allow_manifest_overrides: bool = False
    order_table: str = ""
    allow_backfill_promotion: bool = False

    @classmethod
    def from_env(cls) -> "Settings":
        env = os.environ
        return cls(
            data_bucket=env.get("DATA_BUCKET", ""),
            feature_table=env.get("FEATURE_TABLE", ""),
            model_name=env.get("MODEL_NAME", "streamflow_churn"),
            mlflow_tracking_uri=env.get("MLFLOW_TRACKING_URI", ""),
            reference_month=env.get("REFERENCE_MONTH", "champion"),
            drift_threshold=float(env.get("DRIFT_THRESHOLD", DEFAULT_DRIFT_THRESHOLD)),
            promotion_delta=float(env.get("PROMOTION_DELTA", DEFAULT_DELTA)),
            state_machine_arn=env.get("STATE_MACHINE_ARN", ""),
            api_function_name=env.get("API_FUNCTION_NAME", ""),
            require_approval=env.get("REQUIRE_APPROVAL", "false").strip().lower() == "true",
            approval_timeout_seconds=int(env.get("APPROVAL_TIMEOUT_SECONDS", "86400")),
            max_file_bytes=int(env.get("MAX_FILE_BYTES", str(512 * 1024 * 1024))),
            lease_table=env.get("LEASE_TABLE", ""),
            allow_manifest_overrides=env.get("ALLOW_MANIFEST_OVERRIDES", "false").strip().lower() == "true",
            order_table=env.get("MONTH_ORDER_TABLE", ""),
            allow_backfill_promotion=env.get("ALLOW_BACKFILL_PROMOTION", "false").strip().lower() == "true",
        )
