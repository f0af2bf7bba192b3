"""The `streamflow` command line without a stack: --help everywhere, exit codes scripts can trust."""

from __future__ import annotations

import io
import json
import sys

import pytest

from streamflow_local import cli

COMMANDS = ["serve", "up", "down", "deploy", "attach", "seed", "upload", "status", "report", "models", "logs", "predict",
            "rollback", "approve", "reject", "demo", "manifest"]


def test_every_command_is_listed_and_has_help(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--help"])
    assert exit_info.value.code == 0
    top = capsys.readouterr().out
    for command in COMMANDS:
        assert command in top
        with pytest.raises(SystemExit) as exit_info:
            cli.main([command, "--help"])
        assert exit_info.value.code == 0, command
        out = capsys.readouterr().out
        assert out.startswith(f"usage: streamflow {command}"), command
        assert "STREAMFLOW_STATE_DIR" in out and "STREAMFLOW_AWS_PORT" in out, command  # which stack it talks to
    assert "STREAMFLOW_STATE_DIR" in top


@pytest.mark.parametrize("argv", [[], ["nonsense"], ["report"], ["reject", "month_001"], ["seed", "--users", "many"],
                                  ["seed", "--users", "0"], ["seed", "--users", "-5"], ["seed", "--months", "0"],
                                  ["seed", "--parts", "0"], ["demo", "--users", "0"]])
def test_usage_errors_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code == 2
    assert "usage:" in capsys.readouterr().err


@pytest.fixture
def nowhere(tmp_path, monkeypatch):
    """A stack that was deployed (stack.json) but is not running: nothing listens on its ports."""
    (tmp_path / "stack.json").write_text(json.dumps({
        "parameters": {}, "outputs": {"DataBucketName": "b",
                                      "StateMachineArn": "arn:aws:states:us-east-1:123456789012:stateMachine:x"}}))
    for key, value in (("STREAMFLOW_STATE_DIR", tmp_path), ("STREAMFLOW_AWS_PORT", 9), ("STREAMFLOW_MLFLOW_PORT", 9),
                       ("AWS_MAX_ATTEMPTS", 1), ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", 0)):
        monkeypatch.setenv(key, str(value))
    return tmp_path


@pytest.mark.parametrize("argv", [["status"], ["status", "--json"], ["report", "month_001"], ["models"]])
def test_a_stack_that_is_not_running_is_exit_2_with_a_hint(nowhere, argv, capsys):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cannot reach") and "streamflow up" in err


@pytest.mark.parametrize(("make", "said"), [
    (lambda root: root / "nowhere" / "m9", "is not a folder"),
    (lambda root: "month_077", "is not a folder"),  # a month name that --data does not hold
    (lambda root: root / "m9", "name it month_NNN"),
    (lambda root: root / "month_044", "has no _MANIFEST.json: write it with `streamflow manifest"),
], ids=["no-folder", "no-such-month", "folder-not-a-month", "no-manifest"])
def test_upload_of_something_not_a_month_folder_is_a_usage_error_before_the_stack_is_asked(nowhere, make, said, capsys):
    """They raised a traceback (exit 1) after the stack was asked (found by hand)."""
    (nowhere / "m9").mkdir()
    (nowhere / "month_044").mkdir()
    (nowhere / "month_044" / "users.csv").write_text("user_id\n")
    assert cli.main(["upload", str(make(nowhere)), "--data", str(nowhere)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and said in err and "Traceback" not in err


def test_report_of_something_not_a_month_is_a_usage_error_before_the_stack_is_asked(nowhere, capsys):
    assert cli.main(["report", "nonsense"]) == 2
    assert "'nonsense' is not a month name" in capsys.readouterr().err


def test_a_stack_that_is_not_deployed_is_exit_2(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("STREAMFLOW_STATE_DIR", str(tmp_path))
    assert cli.main(["models"]) == 2
    assert "not deployed" in capsys.readouterr().err


def test_piped_output_has_no_colour_codes(nowhere, capsys):
    console = cli._console()
    console.print(cli._styled("FAILED"))
    assert capsys.readouterr().out == "FAILED\n"


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_gets_colours_unless_no_color(monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stdout", terminal)
    console = cli._console()
    assert console.is_terminal
    console.print(cli._styled("FAILED"))
    assert "\x1b[" in terminal.getvalue()

    monkeypatch.setenv("NO_COLOR", "1")
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stdout", terminal)
    cli._console().print(cli._styled("SUCCEEDED"))
    assert "\x1b[3" not in terminal.getvalue()  # no colour (bold may stay)


def test_attach_reads_a_deployed_stack_from_cloudformation(tmp_path, monkeypatch, capsys):
    """`streamflow attach` against a CloudFormation endpoint (moto's server plays LocalStack)."""
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        for key, value in (("STREAMFLOW_ENDPOINT_URL", endpoint), ("STREAMFLOW_STATE_DIR", str(tmp_path)),
                           ("AWS_ACCESS_KEY_ID", "test"), ("AWS_SECRET_ACCESS_KEY", "test"),
                           ("AWS_DEFAULT_REGION", "us-east-1"), ("STREAMFLOW_STACK_NAME", "streamflow")):
            monkeypatch.setenv(key, value)
        template = {"Resources": {"DataBucket": {"Type": "AWS::S3::Bucket"}},
                    "Outputs": {"DataBucketName": {"Value": {"Ref": "DataBucket"}}}}
        boto3.client("cloudformation", endpoint_url=endpoint).create_stack(StackName="streamflow",
                                                                           TemplateBody=json.dumps(template))
        assert cli.main(["attach"]) == 0
        described = json.loads((tmp_path / "stack.json").read_text())
        assert described["stack"] == "streamflow" and described["outputs"]["DataBucketName"]
        assert described["attached"]["endpoint"] == endpoint
        capsys.readouterr()
        # the other commands now talk to that endpoint: no report there yet
        assert cli.main(["report", "month_001", "--out", str(tmp_path)]) == 1
        assert "no drift report for month_001" in capsys.readouterr().err
    finally:
        server.stop()


def test_attach_without_an_endpoint_is_exit_2(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("STREAMFLOW_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("STREAMFLOW_STATE_DIR", str(tmp_path))
    assert cli.main(["attach"]) == 2
    assert "STREAMFLOW_ENDPOINT_URL" in capsys.readouterr().err


def test_manifest_writes_a_valid_manifest_for_a_folder_of_csvs(tmp_path, capsys):
    import hashlib

    from streamflow.manifest import parse

    folder = tmp_path / "month_042"
    folder.mkdir()
    (folder / "users.csv").write_bytes(b"user_id\n0001-ABCDE\n")
    (folder / "empty.csv").write_bytes(b"")
    assert cli.main(["manifest", str(folder)]) == 0
    written = (folder / "_MANIFEST.json").read_bytes()
    manifest = parse("k", written, "month_042")
    assert manifest.files["users.csv"].sha256 == hashlib.sha256(b"user_id\n0001-ABCDE\n").hexdigest()
    assert manifest.files["empty.csv"].bytes == 0
    assert cli.main(["manifest", str(folder), "--stdout"]) == 0
    assert json.loads(capsys.readouterr().out.split("\n", 1)[1]) == json.loads(written)


def test_manifest_of_a_folder_not_named_as_a_month_needs_month(tmp_path, capsys):
    folder = tmp_path / "my-data"
    folder.mkdir()
    (folder / "users.csv").write_bytes(b"x\n")
    assert cli.main(["manifest", str(folder)]) == 2
    assert "month_NNN" in capsys.readouterr().err
    assert cli.main(["manifest", str(folder), "--month", "month_009"]) == 0
    assert json.loads((folder / "_MANIFEST.json").read_text())["month"] == "month_009"
