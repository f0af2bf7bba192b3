"""The stack driven by the AWS CLI (awscli 1.x in .venv-awscli: `make awscli`), a client this
project did not write, as README.md tells a user to drive it: a month's CSVs copied with
``aws s3 cp --recursive``, then its manifest; a folder holding an empty file copied the same
way; the data bucket's lifecycle rules read back; the API reached at the deploy's ``ApiUrl``
with the key ``aws apigateway get-api-key`` gives. Each command runs with one attempt and a
20 s read timeout, so a request the emulator answers wrongly fails the command instead of
being retried into success (the 60 s wait on the PUT after an empty one was found this way).
"""

from __future__ import annotations

import json
import os
import subprocess

import requests

from streamflow.generator import write_month
from streamflow.ingest import execution_name
from streamflow.schema import MANIFEST_NAME
from streamflow_local.stack_client import data_bucket, execution_arn_for, stack_description, wait_for_execution

from clients import aws
from tests.dev_tools import AWSCLI_BIN, tool


def run_aws(stack, *args: str) -> str:
    env = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp"),
           "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_DEFAULT_REGION": stack.region, "AWS_MAX_ATTEMPTS": "1", "AWS_CONFIG_FILE": "/dev/null",
           "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"}
    aws_cli = tool("aws", AWSCLI_BIN, "awscli")  # skipped without `make awscli`, failed under `make test`
    done = subprocess.run([str(aws_cli), "--endpoint-url", stack.aws_endpoint, "--cli-read-timeout", "20", *args],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, f"aws {' '.join(args)} exited {done.returncode}: {done.stderr[-2000:]}"
    return done.stdout


def test_a_month_uploaded_with_the_aws_cli_runs_the_loop(stack, tmp_path):
    folder = write_month(tmp_path, 13, n_users=3000)
    bucket = data_bucket(stack)
    run_aws(stack, "s3", "cp", "--recursive", "--quiet", f"{folder}/", f"s3://{bucket}/months/{folder.name}/",
            "--exclude", MANIFEST_NAME)
    run_aws(stack, "s3", "cp", "--quiet", str(folder / MANIFEST_NAME),
            f"s3://{bucket}/months/{folder.name}/{MANIFEST_NAME}")
    name = execution_name(folder.name, (folder / MANIFEST_NAME).read_bytes())
    description = wait_for_execution(stack, execution_arn_for(stack, name), timeout=300)
    assert description["status"] == "SUCCEEDED", description.get("cause")
    summary = json.loads(description["output"])
    assert summary["month"] == folder.name and "drift_share" in summary


def test_a_folder_with_an_empty_file_copies_whole_in_one_attempt_each(stack, tmp_path):
    folder = tmp_path / "with-empty"
    folder.mkdir()
    (folder / "a-empty.csv").write_bytes(b"")
    bodies = {f"b{i}.csv": f"user_id\nu{i}\n".encode() * (i + 1) for i in range(4)}
    for name, body in bodies.items():
        (folder / name).write_bytes(body)
    bucket = data_bucket(stack)
    run_aws(stack, "s3", "cp", "--recursive", "--quiet", f"{folder}/", f"s3://{bucket}/scratch/cli/")
    listed = aws(stack, "s3").list_objects_v2(Bucket=bucket, Prefix="scratch/cli/")["Contents"]
    assert {o["Key"].rsplit("/", 1)[-1]: o["Size"] for o in listed} == {
        "a-empty.csv": 0, **{name: len(body) for name, body in bodies.items()}}


def test_the_aws_cli_reads_the_data_buckets_lifecycle_rules(stack):
    """The emulator expires nothing, but the rules ``sam deploy`` gives the data bucket are on
    the local one too (the local deploy translates them to the S3 API)."""
    rules = {rule["ID"]: rule for rule in json.loads(run_aws(
        stack, "s3api", "get-bucket-lifecycle-configuration", "--bucket", data_bucket(stack)))["Rules"]}
    assert rules["CheckedTables"]["Filter"] == {"Prefix": "checked/"}
    assert rules["CheckedTables"]["Expiration"] == {"Days": 7}
    assert rules["CheckedTables"]["NoncurrentVersionExpiration"]["NoncurrentDays"] == 1
    assert rules["AbortIncompleteUploads"]["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 7}


def test_the_api_is_reached_as_the_deploys_outputs_say(stack):
    """README: the API is at the ``ApiUrl`` output, its key's value is read with ``aws apigateway
    get-api-key --include-value --api-key <ApiKeyId>``. The local deploy printed AWS's address
    (``https://local-ChurnApi.execute-api…``) and a key id the emulator did not know."""
    outputs = stack_description(stack)["outputs"]
    key = json.loads(run_aws(stack, "apigateway", "get-api-key", "--include-value", "--api-key", outputs["ApiKeyId"]))
    assert key["id"] == outputs["ApiKeyId"] and key["enabled"] is True
    health = outputs["ApiUrl"] + "health"
    assert health.startswith(stack.api_url + "/Prod/")  # the stage in the path, as on AWS
    answered = requests.get(health, headers={"x-api-key": key["value"]}, timeout=60)
    assert answered.status_code == 200 and answered.json()["model_name"], answered.text
    assert requests.get(health, headers={"x-api-key": key["value"] + "x"}, timeout=60).status_code == 403
