"""Where the local stack listens and keeps its state; every value can be set by env.

Ports are configurable so the test suite can run its own stack beside a demo.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[3]
ACCOUNT_ID = "123456789012"


def free_port() -> int:
    """A local port nobody listens on now: how tests and benchmarks put a stack beside a demo."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def _env_float(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


def _env_optional_int(name: str) -> int | None:
    value = os.environ.get(name, "").strip()
    return int(value) if value else None


@dataclass(frozen=True)
class StackConfig:
    host: str = "127.0.0.1"
    aws_port: int = field(default_factory=lambda: _env_int("STREAMFLOW_AWS_PORT", 4566))
    mlflow_port: int = field(default_factory=lambda: _env_int("STREAMFLOW_MLFLOW_PORT", 5000))
    api_port: int = field(default_factory=lambda: _env_int("STREAMFLOW_API_PORT", 3000))
    ui_port: int = field(default_factory=lambda: _env_int("STREAMFLOW_UI_PORT", 8000))  # `streamflow ui` (Evidently)
    state_dir: Path = field(
        default_factory=lambda: Path(os.environ.get("STREAMFLOW_STATE_DIR", PROJECT_ROOT / ".local-stack")).resolve()
    )
    stack_name: str = field(default_factory=lambda: os.environ.get("STREAMFLOW_STACK_NAME", "streamflow"))
    region: str = field(default_factory=lambda: os.environ.get("AWS_DEFAULT_REGION", "us-east-1"))
    template: Path = PROJECT_ROOT / "template.yaml"
    # A stack elsewhere (LocalStack, AWS; see `streamflow attach`) instead of the local one:
    # full URLs that replace host:port. None (the default): the local stack.
    aws_endpoint_url: str | None = field(default_factory=lambda: os.environ.get("STREAMFLOW_ENDPOINT_URL") or None)
    mlflow_url: str | None = field(default_factory=lambda: os.environ.get("STREAMFLOW_MLFLOW_URL") or None)
    api_base_url: str | None = field(default_factory=lambda: os.environ.get("STREAMFLOW_API_URL") or None)
    # The local executor's warm workers (executor.py, reaper.py). One idle for longer than
    # worker_idle_s is stopped, as Lambda reclaims an idle environment (0: never). 300 s: AWS
    # publishes no figure (environments are commonly reported reused after 5–15 idle minutes);
    # five minutes keeps warm what the loop reuses (months uploaded one after another, the
    # rounds of a /predict benchmark) while a finished month's shard workers are gone minutes
    # after it. And idle workers are stopped, largest first, while the machine's
    # MemAvailable is under memory_floor_mb (None: the larger of 2 GiB and 10 % of MemTotal;
    # 0: never): what keeps a big month's idle shard workers from crowding out its next step.
    worker_idle_s: float = field(default_factory=lambda: _env_float("STREAMFLOW_WORKER_IDLE_S", 300.0))
    memory_floor_mb: int | None = field(default_factory=lambda: _env_optional_int("STREAMFLOW_MEMORY_FLOOR_MB"))

    @classmethod
    def on_spare_ports(cls, state_dir: Path, stack_name: str) -> "StackConfig":
        """A stack of its own (ports nobody uses, its own state) beside any other."""
        return cls(aws_port=free_port(), mlflow_port=free_port(), api_port=free_port(), ui_port=free_port(),
                   state_dir=state_dir, stack_name=stack_name)

    @property
    def aws_endpoint(self) -> str:
        return self.aws_endpoint_url or f"http://{self.host}:{self.aws_port}"

    @property
    def mlflow_uri(self) -> str:
        return self.mlflow_url or f"http://{self.host}:{self.mlflow_port}"

    @property
    def api_url(self) -> str:
        return (self.api_base_url or f"http://{self.host}:{self.api_port}").rstrip("/")

    @property
    def ui_url(self) -> str:
        return f"http://{self.host}:{self.ui_port}"

    @property
    def logs_dir(self) -> Path:
        return self.state_dir / "logs"

    @property
    def stack_file(self) -> Path:
        """What the deploy step created: names, ARNs, API routes (read by the gateway and CLI)."""
        return self.state_dir / "stack.json"

    @property
    def pid_file(self) -> Path:
        return self.state_dir / "stack.pid"

    @property
    def artifact_bucket(self) -> str:
        return f"{self.stack_name}-mlflow-artifacts"

    def client_env(self) -> dict[str, str]:
        """Environment that points boto3 and MLflow clients at this stack. The registry URI
        too: ``mlflow.set_registry_uri`` exports ``MLFLOW_REGISTRY_URI`` into the process, and
        a child that inherits one from an earlier stack resolves ``models:/…`` there while
        fetching artifacts here."""
        return {
            "AWS_ENDPOINT_URL": self.aws_endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": self.region,
            "MLFLOW_TRACKING_URI": self.mlflow_uri,
            "MLFLOW_REGISTRY_URI": self.mlflow_uri,
            "MLFLOW_DISABLE_TELEMETRY": "true",
        }

    def apply_client_env(self) -> None:
        os.environ.update(self.client_env())
