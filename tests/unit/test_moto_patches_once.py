"""moto_patches.install() is called by the stack and by several tests in one process; a
second call must not wrap the patched methods around themselves (each request would then
verify checksums twice, page histories twice, ...)."""

from __future__ import annotations

from streamflow_local import moto_patches


def test_installing_twice_leaves_the_patched_methods_as_they_were():
    from moto.dynamodb.responses import DynamoHandler
    from moto.s3.responses import S3Response
    from moto.stepfunctions.responses import StepFunctionResponse

    moto_patches.install()
    patched = (S3Response._get_checksum, StepFunctionResponse.send_task_failure,
               StepFunctionResponse.get_execution_history, DynamoHandler.batch_get_item)
    moto_patches.install()
    assert (S3Response._get_checksum, StepFunctionResponse.send_task_failure,
            StepFunctionResponse.get_execution_history, DynamoHandler.batch_get_item) == patched
