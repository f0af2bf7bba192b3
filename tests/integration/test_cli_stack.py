"""The `streamflow` command line against the real local stack: upload, status, report, models.

Runs after the other integration modules on the shared stack (see conftest.MODULE_ORDER);
run alone, it crowns a first champion itself with `streamflow upload month_000`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from streamflow_local import cli

pytestmark = pytest.mark.integration


@pytest.fixture
def streamflow(stack, monkeypatch, capsys):
    """Run `streamflow …` against the test stack; returns (exit code, stdout, stderr)."""
    for key, value in (("STREAMFLOW_AWS_PORT", stack.aws_port), ("STREAMFLOW_MLFLOW_PORT", stack.mlflow_port),
                       ("STREAMFLOW_API_PORT", stack.api_port), ("STREAMFLOW_STATE_DIR", stack.state_dir),
                       ("STREAMFLOW_STACK_NAME", stack.stack_name)):
        monkeypatch.setenv(key, str(value))
    for attribute, key in (("aws_endpoint_url", "STREAMFLOW_ENDPOINT_URL"), ("mlflow_url", "STREAMFLOW_MLFLOW_URL"),
                           ("api_base_url", "STREAMFLOW_API_URL")):
        if getattr(stack, attribute):  # external mode (tests/integration/external.py)
            monkeypatch.setenv(key, getattr(stack, attribute))

    def run(*argv: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = cli.main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture
def champion(streamflow, months):
    """month_000 has run (by test_loop or here, through the command line)."""
    code, out, _ = streamflow("status", "month_000", "--json")
    if code == 0 and any(e["status"] == "SUCCEEDED" for e in json.loads(out)):
        return
    code, out, _ = streamflow("upload", str(months[0]))
    assert code == 0, out
    assert "[SUMMARY] month=month_000" in out


def test_status_is_a_table_of_executions_and_steps(streamflow, champion):
    code, out, _ = streamflow("status", "month_000")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:4] == ["execution", "/", "step", "status"]
    assert any(line.startswith("month_000-") and "SUCCEEDED" in line for line in lines)
    steps = [line.split() for line in lines if line.startswith("  ")]
    assert [s[:2] for s in steps[:4]] == [[state, "DONE"] for state in ("RegisterMonth", "ShardMonth", "ShardCount",
                                                                          "Validate")]  # one shard: one-shot path
    assert any(s[0] == "DetectDrift" for s in steps)
    row = next(line for line in lines if line.startswith("month_000-"))
    assert row.split()[-1] == "promote"  # the month's decision
    assert all(s[-1].endswith("s") for s in steps)  # each step's duration
    assert "\x1b[" not in out  # no colour codes when piped

    code, out, _ = streamflow("status", "month_000", "--json")
    executions = json.loads(out)
    assert code == 0 and executions[0]["month"] == "month_000"
    assert [s["state"] for s in executions[0]["steps"][:4]] == ["RegisterMonth", "ShardMonth", "ShardCount", "Validate"]
    assert executions[0]["decision"] == "promote" and executions[0]["waiting_for"] == []

    assert streamflow("status", "month_077")[:2] == (1, "no executions for month_077\n")


def _readable(line: str) -> None:
    assert len(line) <= 400 and "Traceback" not in line and 'File "' not in line and "/site-packages/" not in line


def test_status_exit_codes_and_causes_of_a_failed_and_a_rejected_month(streamflow, champion, stack, tmp_path):
    from streamflow.generator import build_manifest, generate_month, month_csv_bytes
    from streamflow_local.stack_client import data_bucket

    from clients import aws, wait_for_rejection

    files = month_csv_bytes(generate_month(1, n_users=200, seed=5))
    usage = files["usage_agg_30d.csv"].decode().splitlines()
    cells = usage[1].split(",")
    cells[1] = "lots"
    usage[1] = ",".join(cells)
    bad = dict(files, **{"usage_agg_30d.csv": ("\n".join(usage) + "\n").encode()})
    folder = tmp_path / "month_150"
    folder.mkdir()
    for name, body in bad.items():
        (folder / name).write_bytes(body)
    assert streamflow("manifest", str(folder))[0] == 0
    code, out, _ = streamflow("upload", str(folder))
    expected = ("Validate failed: month_150 breaks the data contract: usage_agg_30d.csv:watch_hours_30d: "
                "must be a number (e.g. row 2 value 'lots')")
    assert code == 1 and f"error: ContractError: {expected}" in out

    code, out, _ = streamflow("status", "month_150")
    assert code == 1
    assert "RUNNING" not in out and "  ValidateFailed" in out and "ValidateCaught" not in out
    (cause,) = [line for line in out.splitlines() if line.startswith("month_150: ")]
    assert cause == f"month_150: FAILED: {expected}"
    _readable(cause)
    code, out, _ = streamflow("status", "month_150", "--json")
    (execution,) = json.loads(out)
    assert code == 1 and execution["cause"] == expected and execution["error"] == "ContractError"

    # rejected at ingest (a file changed after its manifest): no execution, a hint where to look
    month, bucket = "month_151", data_bucket(stack)
    s3 = aws(stack, "s3")
    manifest = build_manifest(month, files)
    for name, body in files.items():
        s3.put_object(Bucket=bucket, Key=f"months/{month}/{name}", Body=body.replace(b"Male", b"Mal3", 1))
    s3.put_object(Bucket=bucket, Key=f"months/{month}/_MANIFEST.json", Body=json.dumps(manifest).encode())
    report_key, _ = wait_for_rejection(stack, month)
    code, out, _ = streamflow("status", month)
    assert code == 1
    (line,) = out.splitlines()
    assert line.startswith(f"{month}: REJECTED: rejected at ingest, see s3://{bucket}/{report_key}: ")
    assert "users.csv: sha256 differs from the manifest" in line
    _readable(line)


def test_status_lists_months_in_month_order_with_their_decision(streamflow, champion, months):
    code, out, _ = streamflow("upload", str(months[1]))  # runs it, or says it already ran
    code, out, _ = streamflow("status", "--json")
    rows = json.loads(out)
    executions = [e for e in rows if e["name"]]  # then one row per month rejected at ingest
    numbers = [int(e["month"].split("_")[1]) for e in executions if e["month"].startswith("month_")]
    assert numbers == sorted(numbers) and {0, 1} <= set(numbers)
    # every month listed: exit 1 exactly when some month's latest outcome is not a success
    latest = {e["month"]: e["status"] for e in rows}
    assert code == (1 if set(latest.values()) - {"SUCCEEDED", "RUNNING"} else 0), latest
    first = next(e for e in executions if e["month"] == "month_001" and e["status"] == "SUCCEEDED")
    assert first["decision"] in ("promote", "keep_champion", "no_retraining", "stale_month")


def test_report_downloads_the_newest_drift_report(streamflow, champion, months, tmp_path):
    streamflow("upload", str(months[1]))  # month_000 had no reference: month_001 has a report
    code, out, _ = streamflow("report", "month_001", "--out", str(tmp_path))
    assert code == 0
    path = Path(out.strip())
    assert path.parent == tmp_path and path.name.startswith("drift_month_001_") and path.suffix == ".html"
    html = path.read_text(errors="replace")
    assert html.lstrip().lower().startswith("<!doctype html") and "Drifted Columns" in html
    assert re.search(r"<title>StreamFlow drift: month_001 against month_\d{3}</title>", html)  # names the reference

    code, out, err = streamflow("report", "month_077", "--out", str(tmp_path))
    assert (code, out) == (1, "") and err.startswith("error: no drift report for month_077")


def test_models_lists_versions_aliases_and_auc_history(streamflow, champion):
    code, out, _ = streamflow("models", "--json")
    assert code == 0
    listing = json.loads(out)
    assert listing["model"] == "streamflow_churn" and listing["versions"]
    production = [v for v in listing["versions"] if "Production" in v["aliases"]]
    assert len(production) == 1
    first = listing["versions"][0]
    assert first["month"] == "month_000" and 0.5 < first["val_auc"] <= 1.0
    assert first["decision"] == "promote"
    assert first["auc_history"][0] == {"month": "month_000", "auc": first["val_auc"], "as": "trained"}
    # every later Compare that scored a version as champion adds to its history
    for version in listing["versions"]:
        assert all(0.0 <= point["auc"] <= 1.0 for point in version["auc_history"])

    code, out, _ = streamflow("models")
    assert code == 0
    assert "AUC history per version" in out and "Production" in out
    row = next(line for line in out.splitlines() if line.split()[:1] == [production[0]["version"]])
    assert "Production" in row and f"{production[0]['val_auc']:.4f}" in row
