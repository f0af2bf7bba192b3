"""``streamflow``: run the churn loop on the local stack (or on a deployed one: `streamflow attach`, STREAMFLOW_ENDPOINT_URL).

Exit codes: 0 success, 1 the operation failed or found nothing (e.g. an execution FAILED,
no drift report for that month), 2 usage or environment error (bad arguments, stack not
running or not deployed). Colours and spinners only when the output is a terminal;
`status --json` and `models --json` print JSON for scripts.

Which local stack: STREAMFLOW_STATE_DIR (its state folder, default .local-stack in the
repository) and its ports STREAMFLOW_AWS_PORT (4566), STREAMFLOW_MLFLOW_PORT (5000),
STREAMFLOW_API_PORT (3000), STREAMFLOW_UI_PORT (8000); every command reads them, so give a
second stack's commands the same ones.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

from .config import StackConfig

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
MIN_USERS = 1  # the fewest users a generated month has (streamflow.generator)


def _say(message: str) -> None:
    print(message, flush=True)


def _console(stderr: bool = False):
    """A rich console on stdout: colours and spinners on a terminal, plain text otherwise
    (rich also honours NO_COLOR); wide when piped so tables are not folded."""
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    tty = stream.isatty()
    return Console(file=stream, highlight=False, width=None if tty else 200, soft_wrap=not tty)


STATUS_STYLE = {"SUCCEEDED": "green", "DONE": "green", "FAILED": "bold red", "TIMED_OUT": "red",
                "ABORTED": "red", "RUNNING": "yellow"}


def _styled(status: str) -> str:
    style = STATUS_STYLE.get(status)
    return f"[{style}]{status}[/]" if style else status


def _table(console, *columns: str, title: str | None = None):
    from rich import box
    from rich.table import Table

    table = Table(*columns, title=title, title_justify="left", box=box.SIMPLE_HEAD if console.is_terminal else None,
                  pad_edge=False, header_style="bold" if console.is_terminal else "")
    return table


def _seconds(value) -> str:
    return "" if value is None else f"{value:.2f}s"


def _progress(prefix: str):
    started = time.monotonic()

    def report(text: str) -> None:
        _say(f"  [{time.monotonic() - started:6.1f}s] {prefix}{text}")

    return report


def cmd_serve(args: argparse.Namespace, config: StackConfig) -> int:
    from .stack import serve

    serve(config)
    return EXIT_OK


def cmd_up(args: argparse.Namespace, config: StackConfig) -> int:
    from .stack import up
    from .ui import where as ui_where

    last: dict[str, bool] = {}
    console = _console()

    def line(state: dict[str, bool]) -> str:
        return "  ".join(f"{k}:{'up' if v else '…'}" for k, v in state.items())

    def show(state: dict[str, bool]) -> None:
        nonlocal last
        if state != last:
            if console.is_terminal:
                spinner.update(f"starting the local stack … {line(state)}")
            else:
                _say("  " + line(state))
            last = state

    _say(f"starting the local stack in {config.state_dir} …")
    spinner = console.status("starting the local stack …")
    if console.is_terminal:
        spinner.start()
    try:
        pid = up(config, progress=show)
    finally:
        if console.is_terminal:
            spinner.stop()
    _say(f"local stack up (pid {pid}): AWS {config.aws_endpoint}  MLflow {config.mlflow_uri}  API {config.api_url}")
    _say(f"monitoring: {ui_where(config)}")
    if args.deploy:
        return cmd_deploy(args, config)
    if _deployed_for_other_ports(config):
        _say("the saved state was deployed for other ports (a snapshot from elsewhere?): re-deploying in place")
        return cmd_deploy(args, config)
    return EXIT_OK


def _deployed_for_other_ports(config: StackConfig) -> bool:
    """Whether the functions' configuration names another MLflow address than this stack's."""
    try:
        recorded = json.loads(config.stack_file.read_text()).get("parameters", {}).get("MlflowTrackingUri")
    except (OSError, ValueError):
        return False
    return recorded is not None and recorded != config.mlflow_uri


def cmd_down(args: argparse.Namespace, config: StackConfig) -> int:
    from .stack import down

    _say("local stack stopped" if down(config) else "no local stack was running")
    return EXIT_OK


def _say_outputs(outputs: dict[str, str]) -> None:
    width = max(map(len, outputs), default=0)
    for key, value in outputs.items():
        _say(f"  {key:{width}} {value}")


def cmd_deploy(args: argparse.Namespace, config: StackConfig) -> int:
    from .deploy import deploy

    overrides = dict(item.split("=", 1) for item in (getattr(args, "parameter", None) or []))
    description = deploy(config, overrides)
    _say(f"deployed {config.template.name} as stack {description['stack']}:")
    _say_outputs(description["outputs"])
    return EXIT_OK


def cmd_attach(args: argparse.Namespace, config: StackConfig) -> int:
    from .attach import attach, localstack_api_url, localstack_endpoint

    if args.localstack or args.localstack_host:
        config = dataclasses.replace(config, aws_endpoint_url=localstack_endpoint(args.localstack_host))
    if not config.aws_endpoint_url:
        print("error: set STREAMFLOW_ENDPOINT_URL to the stack's endpoint, or pass --localstack "
              "(LocalStack's endpoint from AWS_ENDPOINT_URL / LOCALSTACK_HOST, default localhost:4566)",
              file=sys.stderr)
        return EXIT_USAGE
    description = attach(config, args.stack_name)
    _say(f"attached stack {description['stack']} at {config.aws_endpoint} (description in {config.stack_file}):")
    _say_outputs(description["outputs"])
    if not config.api_base_url and description["api"]["rest_api"]:
        _say(f"for predict: export STREAMFLOW_API_URL={localstack_api_url(config, description['api']['rest_api'])}")
    return EXIT_OK


def cmd_seed(args: argparse.Namespace, config: StackConfig) -> int:
    from .stack_client import seed

    folders = seed(Path(args.out), months=args.months, n_users=args.users, seed_value=args.seed, parts=args.parts)
    for folder in folders:
        _say(f"  {folder}")
    return EXIT_OK


def _recorded_result(config: StackConfig, description: dict, wait: bool, timeout: float) -> tuple[int, dict]:
    """An earlier upload of the same data started this execution: say so and show its
    result with its own recorded duration, uploading and timing nothing."""
    from .stack_client import grep_logs, recorded_seconds, wait_for_execution

    started = description["startDate"].astimezone(datetime.timezone.utc)
    from streamflow.reruns import month_of_execution

    month = month_of_execution(description["name"])
    _say(f"{month} was already processed by execution {description['name']} at {started:%Y-%m-%d %H:%M:%S} UTC "
         "(the same data maps to the same execution); showing its result, nothing uploaded")
    if not wait:
        return EXIT_OK, {}
    if description["status"] == "RUNNING":
        _say("  it is still running: waiting for it")
    description = wait_for_execution(config, description["executionArn"], timeout=timeout)
    _say(f"  execution {description['status']}, recorded duration {recorded_seconds(description):.1f} s")
    for record in grep_logs(config, execution=description["name"]):
        _say(record["message"])
    if description["status"] != "SUCCEEDED":
        _say(f"error: {description.get('error', '')}: {description.get('cause', '')}")
        return EXIT_FAILED, {}
    return EXIT_OK, json.loads(description.get("output") or "{}")


def _upload_and_wait(config: StackConfig, folder: Path, wait: bool, timeout: float) -> tuple[int, dict]:
    from .stack_client import grep_logs, recorded_execution, upload_month, wait_for_execution

    recorded = recorded_execution(config, folder)
    if recorded is not None:
        return _recorded_result(config, recorded, wait, timeout)
    console = _console()
    report = _progress("")
    if console.is_terminal:  # a spinner that says what is happening; finished steps stay printed
        spinner = console.status("uploading …")
        spinner.start()
        started = time.monotonic()

        def report(text: str) -> None:
            spinner.update(f"{text}  [dim]{time.monotonic() - started:.1f}s[/]")
            if text.startswith(("→", "manifest", "execution")):
                console.print(f"  [dim]{time.monotonic() - started:6.1f}s[/] {text}")
    try:
        from datetime import datetime, timezone

        from .outcome import CAUSE_PLUMBING
        from .views import ingest_rejection_since

        since = datetime.now(timezone.utc)
        upload = upload_month(config, folder, progress=report)
        report(f"manifest landed; execution {upload.execution_name}")
        if not wait:
            return EXIT_OK, {}
        description = wait_for_execution(config, upload.execution_arn, timeout=timeout,
                                         on_step=lambda step: None if step['state'].endswith(CAUSE_PLUMBING)
                                         else report(f"→ {step['state']}"),
                                         not_started=lambda: ingest_rejection_since(config, upload.month, since))
    finally:
        if console.is_terminal:
            spinner.stop()
    report(f"execution {description['status']}")
    for record in grep_logs(config, execution=upload.execution_name):
        _say(record["message"])
    if description["status"] != "SUCCEEDED":
        from .outcome import readable_cause

        _say(f"error: {description.get('error', '')}: {readable_cause(description.get('cause'))}")
        return EXIT_FAILED, {}
    return EXIT_OK, json.loads(description.get("output") or "{}")


def _upload_problem(folder: Path) -> str | None:
    """Why ``folder`` cannot be uploaded as a month, None if it can."""
    from streamflow.schema import MANIFEST_NAME, MONTH_PATTERN

    if not folder.is_dir():
        return f"{folder} is not a folder (give a month's folder, or a month name found in --data)"
    if not MONTH_PATTERN.match(folder.name):
        return f"{folder}: the folder's name is the month it is uploaded as: name it month_NNN (e.g. month_001)"
    if not (folder / MANIFEST_NAME).is_file():
        return f"{folder} has no {MANIFEST_NAME}: write it with `streamflow manifest {folder}`"
    return None


def cmd_upload(args: argparse.Namespace, config: StackConfig) -> int:
    from .stack_client import month_folder

    folder = Path(args.month)
    if not folder.is_dir() and "/" not in args.month:
        folder = month_folder(Path(args.data), args.month)
    problem = _upload_problem(folder)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return EXIT_USAGE
    code, summary = _upload_and_wait(config, folder, wait=not args.no_wait, timeout=args.timeout)
    if summary:
        _say(json.dumps(summary, indent=2))
    return code


def cmd_manifest(args: argparse.Namespace, config: StackConfig) -> int:
    """Write ``<folder>/_MANIFEST.json`` for a folder of CSVs (sizes and SHA-256, streamed)."""
    from pydantic import ValidationError

    from streamflow.manifest import manifest_for_folder
    from streamflow.schema import MANIFEST_NAME

    folder = Path(args.folder)
    if not folder.is_dir():
        print(f"error: {folder} is not a folder", file=sys.stderr)
        return EXIT_USAGE
    try:
        manifest = manifest_for_folder(folder, args.month)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:5])
        print(f"error: {folder} cannot make a valid manifest ({problems}); "
              "name the folder month_NNN or pass --month", file=sys.stderr)
        return EXIT_USAGE
    text = json.dumps(manifest, indent=2) + "\n"
    if args.stdout:
        sys.stdout.write(text)
    else:
        (folder / MANIFEST_NAME).write_text(text)
        _say(str(folder / MANIFEST_NAME))
    return EXIT_OK


def cmd_status(args: argparse.Namespace, config: StackConfig) -> int:
    from .map_runs import describe
    from .outcome import month_outcomes, status_exit_code
    from .views import executions, rejection_reports

    found = executions(config, args.month)
    rejected = {m: r for m, r in rejection_reports(config, args.month).items() if r.get("stage") == "ingest"}
    outcomes = month_outcomes(found, rejected)
    notes = _status_notes(found, rejected, outcomes)
    code = status_exit_code(outcomes)
    if args.json:
        _say(json.dumps(status_rows(found, rejected, outcomes, notes), indent=2))
        return code
    if not outcomes:
        _say("no executions" + (f" for {args.month}" if args.month else ""))
        return code
    console = _console()
    if found:
        table = _table(console, "execution / step", "status", "duration", "started", "decision")
        for execution in found:
            table.add_row(f"[bold]{execution['name']}[/]", _styled(_shown_status(execution)),
                          _seconds(execution["seconds"]), execution["started"], _decision_cell(execution))
            for step in execution["steps"]:
                shards = f" ({describe(step['shards'], step['state'])})" if step.get("shards") else ""
                table.add_row(f"  {step['state']}{shards}", _styled(step["status"]), _seconds(step["seconds"]), "", "")
        console.print(table)
    from rich.markup import escape

    for month, note in notes.items():
        console.print(f"{month}: {_styled(outcomes[month])}: {escape(note)}", soft_wrap=True)
    return max(code, _interrupted_hint(found))


def status_rows(found: list[dict], rejected: dict[str, dict], outcomes: dict[str, str],
                notes: dict[str, str]) -> list[dict]:
    """``status --json``: every execution, then a row for each month whose latest outcome is
    its rejection at ingest (a month rejected once and then run has its execution only)."""
    return found + [{"name": None, "month": m, "status": "REJECTED", "stage": "ingest", "report": r["report"],
                     "cause": notes[m]} for m, r in rejected.items() if outcomes.get(m) == "REJECTED"]


def _status_notes(found: list[dict], rejected: dict[str, dict], outcomes: dict[str, str]) -> dict[str, str]:
    """One line per month whose latest outcome is a failure: the cause, or the ingest report."""
    from .outcome import FAILED_STATUSES, readable_cause
    from .views import ingest_hint

    latest = {e["month"]: e for e in found}
    notes = {}
    for month, outcome in sorted(outcomes.items()):
        if outcome == "REJECTED":
            report = rejected[month]
            notes[month] = f"{ingest_hint(report['report'])}: {readable_cause(report.get('message', ''))}"
        elif outcome in FAILED_STATUSES:
            notes[month] = latest[month].get("cause") or latest[month].get("error") or outcome
    return notes


def _shown_status(execution: dict) -> str:
    return "interrupted" if execution.get("interrupted") else execution["status"]


def _interrupted_hint(found: list[dict]) -> int:
    """Exit 1 and say how to finish it when a month's newest execution was interrupted by a
    stop or crash of the local stack."""
    from .resume import latest_interrupted

    months = latest_interrupted(found)
    for month in months:
        _say(f"{month}: interrupted by a stop or crash of the local stack; finish it with `streamflow resume {month}`")
    return EXIT_FAILED if months else EXIT_OK


def cmd_resume(args: argparse.Namespace, config: StackConfig) -> int:
    from .stack_client import wait_for_execution
    from .resume import NothingToResume, resume

    try:
        resumed = resume(config, args.month)
    except NothingToResume as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    _say(f"{resumed.month}: {resumed.interrupted} was interrupted; resuming it as {resumed.execution_name}")
    if args.no_wait:
        return EXIT_OK
    description = wait_for_execution(config, resumed.execution_arn, timeout=args.timeout,
                                     on_step=lambda step: _say(f"  → {step['state']}"))
    _say(f"execution {description['status']}")
    if description["status"] != "SUCCEEDED":
        _say(f"error: {description.get('error', '')}: {description.get('cause', '')}")
        return EXIT_FAILED
    _say(json.dumps(json.loads(description.get("output") or "{}"), indent=2))
    return EXIT_OK


def cmd_reset(args: argparse.Namespace, config: StackConfig) -> int:
    from .snapshot import reset

    removed = reset(config, everything=args.all)
    if not removed:
        _say(f"nothing to remove in {config.state_dir}")
        return EXIT_OK
    _say("stopped the stack (if it ran) and removed:")
    for path, size in removed:
        _say(f"  {path}  ({size / 1e6:.1f} MB)")
    if not args.all:
        _say(f"kept {config.state_dir / 'data'} (generated months; `streamflow reset --all` removes it too)")
    return EXIT_OK


def cmd_snapshot(args: argparse.Namespace, config: StackConfig) -> int:
    from .snapshot import SnapshotError, StackRunning, load, save

    started = time.monotonic()
    try:
        if args.action == "save":
            manifest = save(config, Path(args.file))
            total = sum(item["bytes"] for item in manifest["contents"])
            _say(f"saved {len(manifest['contents'])} files ({total / 1e6:.1f} MB of state) to {args.file} "
                 f"({Path(args.file).stat().st_size / 1e6:.1f} MB) in {time.monotonic() - started:.1f} s")
            return EXIT_OK
        loaded = load(config, Path(args.file))
    except StackRunning as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except SnapshotError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    manifest = loaded.manifest
    _say(f"loaded {args.file} (stack {manifest['stack_name']}, made {manifest['created_at']}, moto {manifest['moto']}) "
         f"into {config.state_dir}; replaced: {', '.join(loaded.replaced) or 'nothing (the state was empty)'}")
    _say("start it with `streamflow up`")
    return EXIT_OK


def _decision_cell(execution: dict) -> str:
    """The month's decision, or what a waiting execution waits for."""
    if execution.get("waiting_for"):
        return "waiting for " + ", ".join(execution["waiting_for"]) + " to decide"
    return execution.get("decision") or ""


def cmd_report(args: argparse.Namespace, config: StackConfig) -> int:
    from streamflow.schema import MONTH_PATTERN

    from .views import NothingFound, download_report

    if not MONTH_PATTERN.match(args.month):
        print(f"error: {args.month!r} is not a month name (month_NNN, e.g. month_001)", file=sys.stderr)
        return EXIT_USAGE
    try:
        with _console(stderr=True).status(f"downloading the drift report for {args.month} …"):
            path = download_report(config, args.month, Path(args.out))
    except NothingFound as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    _say(str(path))
    return EXIT_OK


def cmd_models(args: argparse.Namespace, config: StackConfig) -> int:
    from .sparkline import spark
    from .views import model_versions

    with _console(stderr=True).status("reading the MLflow registry …"):
        name, rows = model_versions(config)
    if args.json:
        _say(json.dumps({"model": name, "versions": [row.as_dict() for row in rows]}, indent=2))
        return EXIT_OK
    if not rows:
        _say(f"no versions of {name} yet (upload a month: streamflow upload month_000)")
        return EXIT_OK
    console = _console()
    alias_style = {"Production": "bold green", "Previous": "cyan", "Staging": "yellow"}
    table = _table(console, "version", "aliases", "month", "val_auc", "decision", "created (UTC)",
                   title=f"{name} — MLflow registry {config.mlflow_uri}")
    for row in rows:
        aliases = ", ".join(f"[{alias_style.get(a, 'magenta')}]{a}[/]" for a in row.aliases)
        auc = "" if row.val_auc is None else f"{row.val_auc:.4f}"
        table.add_row(row.version, aliases, row.month, auc, row.decision, row.created)
    console.print(table)
    history = _table(console, "version", "AUC by month (held-out users)", "trend", title="AUC history per version")
    for row in rows:
        points = "  ".join(f"{month or '?'} {auc:.4f}" + ("" if how == "trained" else f" ({how})")
                           for month, auc, how in row.history)
        history.add_row(row.version, points or "—", spark([auc for _, auc, _ in row.history]))
    console.print(history)
    return EXIT_OK


def cmd_ui(args: argparse.Namespace, config: StackConfig) -> int:
    from .ui import prepare, serve, where

    with _console(stderr=True).status("writing the dashboard, adding rejected months …"):
        workspace, added = prepare(config)
    if added:
        _say("rejected months added to the timeline: " + ", ".join(added))
    _say(f"workspace {workspace}")
    _say(where(config) + "  — Ctrl-C stops the Evidently UI")
    serve(config, workspace)
    return EXIT_OK


def cmd_logs(args: argparse.Namespace, config: StackConfig) -> int:
    from .stack_client import grep_logs

    if args.grep:
        for record in grep_logs(config):
            _say(record["message"])
        return EXIT_OK
    path = config.logs_dir / f"{config.stack_name}-{args.function}.log"
    if not path.exists():
        path = config.logs_dir / f"{args.function}.log"
    if not path.exists():
        _say(f"no log for {args.function} in {config.logs_dir}")
        return EXIT_USAGE
    lines = path.read_text(errors="replace").splitlines()
    _say("\n".join(lines[-args.lines:]))
    return EXIT_OK


def cmd_predict(args: argparse.Namespace, config: StackConfig) -> int:
    from .stack_client import predict

    status, body = predict(config, args.user_id)
    _say(json.dumps(body))
    return EXIT_OK if status == 200 else EXIT_FAILED


def _actor() -> str:
    import getpass

    try:
        return getpass.getuser()
    except Exception:
        return "unknown"


def cmd_rollback(args: argparse.Namespace, config: StackConfig) -> int:
    from streamflow.alias_moves import rollback
    from streamflow.promotion import NothingToRollBack

    from .stack_client import stack_settings

    settings = stack_settings(config)
    try:
        change = rollback(settings, by=_actor(), reason=args.reason)
    except NothingToRollBack as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    _say(f"Production: version {change.replaced} → {change.production} (the API follows on its next request)")
    from .ui import month_of_version, note_decision

    note_decision(config, month_of_version(settings, change.replaced), "rolled_back", production_version=change.production)
    return EXIT_OK


def cmd_approve(args: argparse.Namespace, config: StackConfig) -> int:
    from streamflow.approvals import NoPendingApproval, approve

    from .stack_client import stack_settings

    try:
        record = approve(stack_settings(config), args.month, by=_actor())
    except NoPendingApproval as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    _say(f"approved {args.month}: version {record['challenger_version']} will be promoted by {record['execution']}")
    return EXIT_OK


def cmd_reject(args: argparse.Namespace, config: StackConfig) -> int:
    from streamflow.approvals import NoPendingApproval, reject

    from .stack_client import stack_settings

    try:
        record = reject(stack_settings(config), args.month, by=_actor(), reason=args.reason)
    except NoPendingApproval as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    _say(f"rejected {args.month}: version {record['challenger_version']} stays out of Production")
    from .ui import note_decision

    note_decision(config, args.month, "rejected", rejected_reason=args.reason)
    return EXIT_OK


def cmd_demo(args: argparse.Namespace, config: StackConfig) -> int:
    from .demo import run_demo

    return run_demo(config, users=args.users, keep=args.keep)


STACK_ENVIRONMENT = ("the local stack: STREAMFLOW_STATE_DIR (state folder, default .local-stack), "
                     "STREAMFLOW_AWS_PORT (4566), STREAMFLOW_MLFLOW_PORT (5000), STREAMFLOW_API_PORT (3000), "
                     "STREAMFLOW_UI_PORT (8000)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="streamflow", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, handler, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text, epilog=STACK_ENVIRONMENT)
        p.set_defaults(handler=handler)
        return p

    command("serve", cmd_serve, "run the local stack in the foreground (what `up` starts)")
    p = command("up", cmd_up, "start the local stack in the background and wait until it answers")
    p.add_argument("--deploy", action="store_true", help="deploy template.yaml once it is up")
    p.add_argument("--parameter", action="append", metavar="KEY=VALUE", help="template parameter override")
    command("down", cmd_down, "stop the local stack")
    p = command("deploy", cmd_deploy, "create template.yaml's resources in the local stack")
    p.add_argument("--parameter", action="append", metavar="KEY=VALUE", help="template parameter override")
    p = command("attach", cmd_attach, "use a stack deployed by `sam deploy`/`samlocal deploy` at "
                "STREAMFLOW_ENDPOINT_URL (registry: STREAMFLOW_MLFLOW_URL, API: STREAMFLOW_API_URL)")
    p.add_argument("--stack-name", help="CloudFormation stack name (default: STREAMFLOW_STACK_NAME or streamflow)")
    p.add_argument("--localstack", action="store_true",
                   help="the stack is in LocalStack: find its endpoint as localstack-client does "
                        "(AWS_ENDPOINT_URL, else LOCALSTACK_HOST, default localhost:4566; USE_SSL for https)")
    p.add_argument("--localstack-host", metavar="HOST:PORT", help="LocalStack's host:port (implies --localstack)")
    p = command("seed", cmd_seed, "generate StreamFlow months (deterministic)")
    p.add_argument("--out", default=str(StackConfig().state_dir / "data"), help="output folder (default: %(default)s)")
    p.add_argument("--months", type=_at_least(1), default=3, help="how many months, from month_000 (default: %(default)s)")
    p.add_argument("--users", type=_at_least(MIN_USERS), default=10_000, help="users per month (default: %(default)s)")
    p.add_argument("--seed", type=int, default=42, help="random seed (default: %(default)s)")
    p.add_argument("--parts", type=_at_least(1), help="write each table as this many parts (<table>/part-00000.csv …), "
                   "a block of users at a time: months of any size in bounded memory")
    p = command("upload", cmd_upload, "upload a month (CSVs, then the manifest) and wait for its execution")
    p.add_argument("month", help="a month name (month_001) or a folder holding the month's files")
    p.add_argument("--data", default=str(StackConfig().state_dir / "data"), help="where month names are looked up")
    p.add_argument("--no-wait", action="store_true", help="return once the manifest is uploaded")
    p.add_argument("--timeout", type=float, default=600, help="seconds to wait for the execution")
    p = command("manifest", cmd_manifest, "write _MANIFEST.json (each file's size and SHA-256) for a folder of "
                "a month's CSVs, so any data can be uploaded (schema: docs/manifest.schema.json)")
    p.add_argument("folder", help="the month's folder, e.g. my-data/month_004")
    p.add_argument("--month", help="the month name when the folder is not named month_NNN")
    p.add_argument("--stdout", action="store_true", help="print the manifest instead of writing it")
    p = command("status", cmd_status, "executions in month order with each step, duration, outcome and the month's decision; exit 1 when "
                "the month's last execution FAILED/TIMED_OUT/ABORTED, it was rejected at ingest, or nothing is found")
    p.add_argument("month", nargs="?", help="only this month's executions")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p = command("report", cmd_report, "download a month's newest Evidently drift report and print its path")
    p.add_argument("month", help="e.g. month_001")
    p.add_argument("--out", default=str(StackConfig().state_dir / "reports"),
                   help="folder to download into (default: %(default)s)")
    p = command("models", cmd_models, "model versions: aliases, month, val AUC, decision; AUC history per version")
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")
    command("ui", cmd_ui, "Evidently's monitoring UI (drift, AUC, decisions per month) on the stack's UI port "
            "(STREAMFLOW_UI_PORT, default 8000), in the foreground; prints the MLflow UI's address too")
    p = command("logs", cmd_logs, "show a function's log (e.g. `streamflow logs train`)")
    p.add_argument("function", nargs="?", default="summary", help="function name, e.g. train, api")
    p.add_argument("-n", "--lines", type=int, default=50, help="how many last lines (default: %(default)s)")
    p.add_argument("--grep", action="store_true", help="only the RETRAINING_TRIGGERED/[COMPARE]/[SUMMARY] lines")
    p = command("predict", cmd_predict, "POST /predict through the local API gateway")
    p.add_argument("user_id", help="a user_id of an uploaded month (e.g. from users.csv)")
    p = command("rollback", cmd_rollback, "move Production back to the version under alias Previous")
    p.add_argument("--reason", default="manual rollback", help="recorded on the versions' tags")
    p = command("approve", cmd_approve, "approve the challenger a month's execution is waiting on")
    p.add_argument("month", help="the month whose execution waits, e.g. month_001")
    p = command("reject", cmd_reject, "reject the challenger a month's execution is waiting on")
    p.add_argument("month", help="the month whose execution waits, e.g. month_001")
    p.add_argument("--reason", required=True, help="why (recorded on the version's tags)")
    p = command("resume", cmd_resume, "finish a month whose execution a stop or crash interrupted (one new run)")
    p.add_argument("month", help="e.g. month_001")
    p.add_argument("--no-wait", action="store_true", help="return once the execution has started")
    p.add_argument("--timeout", type=float, default=600, help="seconds to wait for the execution")
    p = command("reset", cmd_reset, "stop the local stack and delete its state (the only command that wipes it)")
    p.add_argument("--all", action="store_true", help="also delete the generated months (the whole state folder)")
    p = command("snapshot", cmd_snapshot, "save the local stack's state to one file, or load it from one")
    p.add_argument("action", choices=("save", "load"))
    p.add_argument("file", help="the snapshot file (.tar, or .tar.gz for gzip)")
    p = command("demo", cmd_demo, "the whole loop end to end: up, deploy, seed, champion, month_001, predict")
    p.add_argument("--users", type=_at_least(MIN_USERS), default=10_000, help="users per month (default: %(default)s)")
    p.add_argument("--keep", action="store_true", help="leave the stack running afterwards")
    return parser


def _at_least(low: int) -> Callable[[str], int]:
    """An argparse type: an integer of at least ``low`` (a usage error, exit 2, otherwise)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, not {value}")
        return value

    return parse


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    config = StackConfig()
    try:
        return args.handler(args, config)
    except KeyboardInterrupt:
        return EXIT_FAILED
    except Exception as exc:
        from .stack_client import NotDeployed

        if isinstance(exc, NotDeployed):
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_USAGE
        unreachable = _unreachable(exc)
        if unreachable:
            print(f"error: cannot reach {unreachable}: is the stack up? (`streamflow up`)", file=sys.stderr)
            return EXIT_USAGE
        raise


def _unreachable(exc: BaseException) -> str | None:
    """The service a connection failure was about, or None when ``exc`` is something else."""
    from botocore.exceptions import EndpointConnectionError
    from requests.exceptions import ConnectionError as HTTPConnectionError

    if isinstance(exc, EndpointConnectionError):
        return f"AWS at {exc.kwargs.get('endpoint_url', '?')}"
    if isinstance(exc, HTTPConnectionError):
        return "an HTTP endpoint (" + str(exc).split("(Caused")[0][:120] + ")"
    if type(exc).__name__ == "MlflowException" and ("Max retries" in str(exc) or "Connection" in str(exc)):
        return "the MLflow server"
    return None


if __name__ == "__main__":
    sys.exit(main())
