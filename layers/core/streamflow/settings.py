"""Configuration from the environment that ``template.yaml`` sets, read once per process.

The same code runs on the local emulator, LocalStack and AWS: only these values change.
The loop's policy (drift threshold, promotion delta, reference month) has one source: the
template's parameters (``DriftThreshold``, ``PromotionDelta``, ``ReferenceMonth``), which the
deploy writes into every function's environment. Nothing here or in the command line
carries a default of its own: a function deployed without them refuses to start a month
(``PolicyNotConfigured``), and the CLI reads them from a deployed function's configuration.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from .sharding import SHARD_USERS

# Environment variable → the template parameter that sets it (named in errors).
POLICY_VARIABLES = {"DRIFT_THRESHOLD": "DriftThreshold", "PROMOTION_DELTA": "PromotionDelta",
                    "REFERENCE_MONTH": "ReferenceMonth"}


class PolicyNotConfigured(RuntimeError):
    """A policy value the template sets is missing from this function's environment."""


def _number(env: Mapping[str, str], key: str) -> float | None:
    value = env.get(key, "").strip()
    return float(value) if value else None


@dataclass(frozen=True)
class Settings:
    data_bucket: str
    feature_table: str
    model_name: str
    mlflow_tracking_uri: str
    reference_month: str | None
    drift_threshold: float | None
    promotion_delta: float | None
    state_machine_arn: str
    api_function_name: str
    require_approval: bool = False
    approval_timeout_seconds: int = 86_400
    max_file_bytes: int = 512 * 1024 * 1024
    lease_table: str = ""
    allow_manifest_overrides: bool = False
    order_table: str = ""
    allow_backfill_promotion: bool = False
    serving_prefix: str = ""  # s3://<data bucket>/serving/<model>/: the champion's scorer copies
    users_per_shard: int = SHARD_USERS  # template parameter UsersPerShard: a bigger month is sharded
    drift_sample_size: int = 50_000  # template parameter DriftSampleSize: drift of a bigger month is sampled
    train_sample_size: int = 200_000  # template parameter TrainSampleSize: training of a bigger month too

    def require_policy(self) -> "Settings":
        """Self, when the template's policy values are all set (else a readable error)."""
        values = {"DRIFT_THRESHOLD": self.drift_threshold, "PROMOTION_DELTA": self.promotion_delta,
                  "REFERENCE_MONTH": self.reference_month}
        missing = [f"{key} (template parameter {POLICY_VARIABLES[key]})" for key, value in values.items()
                   if value is None or value == ""]
        if missing:
            raise PolicyNotConfigured("not set in this function's environment: " + ", ".join(missing)
                                      + "; deploy template.yaml, which sets them")
        return self

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Settings":
        env = os.environ if env is None else env
        return cls(
            data_bucket=env.get("DATA_BUCKET", ""),
            feature_table=env.get("FEATURE_TABLE", ""),
            model_name=env.get("MODEL_NAME", "streamflow_churn"),
            mlflow_tracking_uri=env.get("MLFLOW_TRACKING_URI", ""),
            reference_month=env.get("REFERENCE_MONTH", "").strip() or None,
            drift_threshold=_number(env, "DRIFT_THRESHOLD"),
            promotion_delta=_number(env, "PROMOTION_DELTA"),
            state_machine_arn=env.get("STATE_MACHINE_ARN", ""),
            api_function_name=env.get("API_FUNCTION_NAME", ""),
            require_approval=env.get("REQUIRE_APPROVAL", "false").strip().lower() == "true",
            approval_timeout_seconds=int(env.get("APPROVAL_TIMEOUT_SECONDS", "86400")),
            max_file_bytes=int(env.get("MAX_FILE_BYTES", str(512 * 1024 * 1024))),
            lease_table=env.get("LEASE_TABLE", ""),
            allow_manifest_overrides=env.get("ALLOW_MANIFEST_OVERRIDES", "false").strip().lower() == "true",
            order_table=env.get("MONTH_ORDER_TABLE", ""),
            allow_backfill_promotion=env.get("ALLOW_BACKFILL_PROMOTION", "false").strip().lower() == "true",
            serving_prefix=env.get("SERVING_PREFIX", "").strip(),
            users_per_shard=int(env.get("USERS_PER_SHARD", SHARD_USERS)),
            drift_sample_size=int(env.get("DRIFT_SAMPLE_SIZE", "50000")),
            train_sample_size=int(env.get("TRAIN_SAMPLE_SIZE", "200000")),
        )
