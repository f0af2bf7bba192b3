"""``make demo``: the whole loop, end to end, on the local stack."""

from __future__ import annotations

import json
import time

from .config import StackConfig
from .deploy import deploy
from .loop import first_user, grep_logs, predict, seed, upload_month, wait_for_execution
from .stack import down, running_pid, up


def _say(message: str = "") -> None:
    print(message, flush=True)


def _run_month(config: StackConfig, folder, label: str) -> tuple[dict, float, str]:
    started = time.monotonic()
    upload = upload_month(config, folder)
    _say(f"  uploaded {upload.month} ({upload.seconds:.1f} s); execution {upload.execution_name}")

    def on_step(state: str) -> None:
        _say(f"  [{time.monotonic() - started:6.1f}s] {label} → {state}")

    description = wait_for_execution(config, upload.execution_arn, on_step=on_step)
    elapsed = time.monotonic() - started
    if description["status"] != "SUCCEEDED":
        raise RuntimeError(f"{label}: execution {description['status']}: {description.get('error')}: "
                           f"{description.get('cause')}")
    return json.loads(description["output"]), elapsed, upload.execution_name


def run_demo(config: StackConfig, users: int = 10_000, keep: bool = False) -> int:
    started_here = running_pid(config) is None
    t0 = time.monotonic()
    try:
        _say("1/6 starting the local stack (moto + local Lambda executor, MLflow server, API gateway)")
        up(config)
        _say(f"    AWS {config.aws_endpoint}   MLflow {config.mlflow_uri}   API {config.api_url}")
        _say("2/6 deploying template.yaml into it")
        description = deploy(config)
        _say(f"    bucket {description['outputs']['DataBucketName']}, "
             f"state machine {description['outputs']['StateMachineArn'].rsplit(':', 1)[-1]}, "
             f"{len(description['functions'])} functions")
        _say(f"3/6 generating months month_000..month_002 ({users:,} users each)")
        folders = seed(config.state_dir / "data", months=3, n_users=users)
        _say("4/6 first champion: month_000 through the pipeline (no champion yet → train → promote)")
        summary0, seconds0, _ = _run_month(config, folders[0], "month_000")
        _say(f"    champion: version {summary0['production_version']} ({seconds0:.1f} s)")
        _say("5/6 month_001 lands: upload → drift → retrain → compare → promote?")
        summary1, seconds1, execution = _run_month(config, folders[1], "month_001")
        _say()
        for record in grep_logs(config, execution=execution):
            _say(record["message"])
        _say()
        _say(f"drift report: s3://{description['outputs']['DataBucketName']}/{summary1['report_key']}")
        _say(f"upload → [SUMMARY]: {seconds1:.1f} s")
        user_id = first_user(folders[1])
        _say(f"6/6 POST {config.api_url}/predict {{\"user_id\": \"{user_id}\"}}")
        status, body = predict(config, user_id)
        _say(f"    HTTP {status} {json.dumps(body)}")
        _say()
        _say(f"demo done in {time.monotonic() - t0:.0f} s; MLflow UI: {config.mlflow_uri}")
        return 0 if status == 200 else 1
    finally:
        if started_here and not keep:
            down(config)
            _say("local stack stopped. Keep it up with `make demo KEEP=1` (or `streamflow demo --keep`, "
                 "`streamflow up --deploy`); stop it with `streamflow down`.")
